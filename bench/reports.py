"""Reports benchmark: the supervisor's dashboard for one fiscal year over five years of tickets.

    .venv/bin/python bench/reports.py --db both --tickets 1000000 --requests 30

Builds the data itself after running the migrations: SQLite with SQLAlchemy Core executemany,
PostgreSQL with COPY (on MADOGUCHI_BENCH_POSTGRES_URL or MADOGUCHI_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test; a database is created and dropped here). Tickets are
spread evenly over fiscal years 2021–2025 (so one year holds a fifth), over five channels and
twenty categories, with session durations on counter and phone tickets, and the reports' per-day
rollup is rebuilt from them (as after an import). Then it signs in
through the real login form and times GET /reports?fy=2024 (and the quarterly summary) in
process with Flask's test client: SQL and rendering, without a network hop.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import Category, Ticket  # noqa: E402
from consult.services import report_rollup  # noqa: E402
from consult.services import staff as staff_service  # noqa: E402

PASSWORD = "bench-password-123"
CHUNK = 20_000
CHANNELS = ["counter"] * 4 + ["phone"] * 3 + ["email"] * 2 + ["line", "booking"]
START = datetime(2021, 3, 31, 15, tzinfo=UTC)  # 2021-04-01 00:00 Tokyo
SPAN = datetime(2026, 3, 31, 15, tzinfo=UTC) - START
COLUMNS = [
    "id", "number", "fiscal_year", "sequence", "channel", "category_id", "subject", "status",
    "is_open", "priority", "created_at", "last_activity_at", "duration_seconds",
]  # fmt: skip


def build_app(url: str, tmp: Path):
    # The test client posts forms without a token; the login is still the real one.
    app = common.build_app(url, tmp)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def rows(n: int, categories: list[int]):
    rng = random.Random(2026)
    step = SPAN / n
    for i in range(n):
        at = START + step * i + timedelta(seconds=rng.random() * step.total_seconds())
        channel = rng.choice(CHANNELS)
        duration = rng.randint(60, 90 * 60) if channel in ("counter", "phone") else None
        closed = rng.random() > 0.01
        yield {
            "id": i + 1,
            "number": f"B-{i + 1:08d}",
            "fiscal_year": 2000,
            "sequence": i + 1,
            "channel": channel,
            "category_id": rng.choice(categories),
            "subject": "住民票の写しの請求方法について",
            "status": "closed" if closed else "in_progress",
            "is_open": not closed,
            "priority": "normal",
            "created_at": at,
            "last_activity_at": at,
            "duration_seconds": duration,
        }


def populate(app, url: str, n: int) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        staff_service.create_staff(
            None,
            login="boss",
            full_name="責任 花子",
            display_name="せきにん / Sekinin",
            role="supervisor",
            password=PASSWORD,
        )
        for k in range(20):
            staff_service.save_category(None, name=f"分類{k:02d}", code=f"c{k:02d}")
        db.session.commit()
        categories = list(db.session.scalars(db.select(Category.id)))
        db.session.commit()  # SQLite: release the write lock (BEGIN IMMEDIATE) first
        t0 = time.perf_counter()
        if db.engine.dialect.name == "postgresql":
            with psycopg.connect(url) as conn, conn.cursor() as cursor:
                with cursor.copy(f"COPY ticket ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows(n, categories):
                        copy.write_row([row[c] for c in COLUMNS])
                cursor.execute("SELECT setval(pg_get_serial_sequence('ticket', 'id'), %s)", (n,))
                conn.commit()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE ticket")
        else:
            chunk = []
            with db.engine.begin() as conn:
                for row in rows(n, categories):
                    chunk.append(row)
                    if len(chunk) >= CHUNK:
                        conn.execute(Ticket.__table__.insert(), chunk)
                        chunk = []
                if chunk:
                    conn.execute(Ticket.__table__.insert(), chunk)
                conn.exec_driver_sql("ANALYZE")
        common.log(f"inserted {n:,} tickets in {time.perf_counter() - t0:.1f}s")
        # Bulk-inserted around the ticket services, as an import would be: fill the reports'
        # rollup with the same service as `madoguchi reports rebuild`.
        t0 = time.perf_counter()
        counted, day_rows = report_rollup.rebuild()
        db.session.commit()
        common.log(f"rebuilt the rollup ({counted:,} tickets, {day_rows:,} day rows) in "
            f"{time.perf_counter() - t0:.1f}s")  # fmt: skip
        if db.engine.dialect.name == "postgresql":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE report_daily")
                conn.execute("VACUUM ANALYZE report_session_daily")
        else:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        db.session.remove()


def measure(app, paths: dict[str, str], n: int) -> list[dict]:
    client = app.test_client()
    with app.app_context():
        response = client.post("/login", data={"login": "boss", "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        results = []
        for name, path in paths.items():
            first = client.get(path)
            assert first.status_code == 200, (path, first.status_code)
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            results.append(common.summary(name, times))
        db.session.remove()
    return results


def bench_one(kind: str, args) -> list[dict]:
    with common.scratch(kind, "reports") as (tmp, url):
        common.log(f"{kind}: building {args.tickets:,} tickets")
        app = build_app(url, tmp)
        populate(app, url, args.tickets)
        paths = {
            "dashboard FY2024": "/reports?fy=2024",
            "dashboard FY2024 by day": "/reports?fy=2024&by=day",
            "quarterly FY2024 Q3": "/reports/quarterly?fy=2024&q=3",
        }
        results = measure(app, paths, args.requests)
        with app.app_context():
            db.engine.dispose()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", choices=common.DB_CHOICES, default="both")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    results = {kind: bench_one(kind, args) for kind in common.kinds(args.db)}
    print()
    print(f"{args.tickets:,} tickets over FY2021–FY2025, {args.requests} requests per page")
    common.print_table(results)


if __name__ == "__main__":
    main()
