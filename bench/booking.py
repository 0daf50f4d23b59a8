"""Booking benchmark: free-slot computation with many bookings, and booking under concurrency.

    .venv/bin/python bench/booking.py --db both --bookings 20000 --clients 50

Builds a migrated database (temporary SQLite file, fresh PostgreSQL database as in desk.py)
with `--bookings` existing bookings spread over the past year and the coming 8 weeks, then:
1. times `free_slots()` for 8 weeks × 3 modes in-process (`--rounds` times; p50/p95/max);
2. starts gunicorn and lets `--clients` concurrent clients book seats on one popular day over
   HTTP (each client loads the form for its CSRF token, then posts), and reports bookings per
   second and whether any slot holds more bookings than its capacity.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

# The repository first: bench/faq.py and bench/handoff.py must not shadow the packages.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import desk

from bench import common
from channels.booking import services
from channels.booking.models import Booking, BookingSlot, Mode
from consult.extensions import db
from consult.timeutil import TOKYO, tokyo_today, utcnow


def populate(url: str, tmp: Path, n_bookings: int):
    from flask_migrate import upgrade

    rng = random.Random(2026)
    app = common.build_app(url, tmp)
    with app.app_context():
        upgrade()
        today = tokyo_today()
        seats: dict[tuple[str, datetime], int] = {}
        capacity = services.DEFAULT_CAPACITY
        # Every slot of the past year and the coming 8 weeks; fill up to capacity at random.
        candidates = []
        for offset in range(-365, 57):
            day = today + timedelta(days=offset)
            hours = services.calendar.centre_hours(day)
            if hours is None:
                continue
            kind = services.calendar.day_type(day).value
            for begin, _end in services.slot_times(day, hours, 30):
                for mode in Mode:
                    for seat in range(1, capacity[mode][kind] + 1):
                        candidates.append((mode.value, begin.astimezone(UTC), seat))
        db.session.remove()  # the hour lookups opened a transaction (a write lock on SQLite)
        chosen = rng.sample(candidates, min(n_bookings, len(candidates)))
        slot_ids: dict[tuple[str, datetime], int] = {}
        slot_rows = []
        for mode, begin, _seat in chosen:
            seats[(mode, begin)] = seats.get((mode, begin), 0) + 1
        for n, ((mode, begin), count) in enumerate(seats.items(), start=1):
            slot_ids[(mode, begin)] = n
            slot_rows.append({"id": n, "mode": mode, "starts_at": begin, "booked": count})
        with db.engine.begin() as conn:
            desk.insert_chunks(conn, BookingSlot.__table__, iter(slot_rows))
            rows = (
                {
                    "reference": f"B{i:07d}",
                    "uid": f"{uuid.uuid4()}@bench",
                    "sequence": 0,
                    "slot_id": slot_ids[(mode, begin)],
                    "seat_no": seat,
                    "mode": mode,
                    "starts_at": begin,
                    "ends_at": begin + timedelta(minutes=30),
                    "status": "booked",
                    "name": "予約 太郎",
                    "kana": "よやく たろう",
                    "email": f"b{i}@example.jp",
                    "phone": None,
                    "content": "相談内容",
                    "language": "ja",
                    "created_at": utcnow(),
                }
                for i, (mode, begin, seat) in enumerate(chosen)
            )
            desk.insert_chunks(conn, Booking.__table__, rows)
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.exec_driver_sql(
                    "SELECT setval('booking_slot_id_seq', (SELECT max(id) FROM booking_slot))"
                )
                conn.exec_driver_sql("ANALYZE")
        db.engine.dispose()
    return app, len(chosen)


def time_free_slots(app, rounds: int) -> dict:
    timings = []
    with app.app_context():
        for _ in range(rounds):
            started = time.perf_counter()
            result = services.free_slots(list(Mode))
            timings.append((time.perf_counter() - started) * 1000)
            db.session.remove()
        slots = sum(len(v) for v in result.values())
    return {**common.percentiles(timings), "slots": slots}


def popular_day() -> datetime:
    """A weekday 3 to 9 days ahead (counter 3 + phone 2 + video 1 seats per half hour)."""
    day = tokyo_today() + timedelta(days=3)
    while services.calendar.day_type(day).value != "weekday":
        day += timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), TOKYO)


def hammer(base: str, clients: int, attempts: int, day: datetime) -> dict:
    starts = [day + timedelta(hours=8, minutes=30 + 30 * n) for n in range(16)]
    results = {"ok": 0, "full": 0, "other": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        page = session.get(
            f"{base}/booking/details",
            params={"mode": "counter", "start": f"{starts[0]:%Y-%m-%dT%H:%M}"},
            timeout=60,
        )
        token = common.csrf_from(page.text)
        barrier.wait()
        for i in range(attempts):
            start = rng.choice(starts)
            data = {
                "csrf_token": token,
                "mode": rng.choice(["counter", "phone", "video"]),
                "start": f"{start:%Y-%m-%dT%H:%M}",
                "category": "",
                "name": "混雑 花子",
                "kana": "こんざつ はなこ",
                "email": f"c{n}-{i}@example.jp",
                "phone": "087-839-2111",
                "content": "ベンチマーク",
                "consent": "y",
            }
            response = session.post(
                f"{base}/booking/details", data=data, allow_redirects=False, timeout=120
            )
            key = {303: "ok", 409: "full"}.get(response.status_code, "other")
            with lock:
                results[key] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results["seconds"] = time.perf_counter() - started
    return results


def overbooked(app) -> int:
    import sqlalchemy as sa

    with app.app_context():
        over = 0
        table = services.capacities()
        for slot in db.session.scalars(sa.select(BookingSlot)):
            live = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Booking)
                .where(Booking.slot_id == slot.id, Booking.seat_no.is_not(None))
            )
            cap = table[slot.mode][
                services.calendar.day_type(slot.starts_at.astimezone(TOKYO).date()).value
            ]
            if slot.starts_at > utcnow() and (live > cap or slot.booked != live):
                over += 1
        db.session.remove()
        db.engine.dispose()
    return over


def bench_one(kind: str, args) -> dict:
    with common.scratch(kind, "booking") as (tmp, url):
        common.log(f"{kind}: building {args.bookings:,} bookings")
        app, made = populate(url, tmp, args.bookings)
        figures = time_free_slots(app, args.rounds)
        figures["bookings"] = made
        os.environ["MADOGUCHI_BOOKING_RATE_LIMIT"] = "100000 per minute"
        port = common.free_port()
        server = common.start_gunicorn(url, tmp, port)
        try:
            common.log(f"{kind}: {args.clients} clients × {args.attempts} bookings on one day")
            figures.update(
                hammer(f"http://127.0.0.1:{port}", args.clients, args.attempts, popular_day())
            )
        finally:
            common.stop(server)
        figures["overbooked"] = overbooked(app)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=20_000)
    parser.add_argument("--db", choices=common.DB_CHOICES, default="both")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=4, help="bookings tried per client")
    args = parser.parse_args()
    results = {kind: bench_one(kind, args) for kind in common.kinds(args.db)}
    print()
    print(
        f"{args.clients} clients × {args.attempts} attempts; free slots over {args.rounds} rounds"
    )
    print(
        f"{'database':<11} {'bookings':>9} {'slots p50':>10} {'p95 ms':>8} {'max ms':>8}"
        f" {'booked':>7} {'full':>5} {'other':>6} {'per s':>7} {'overbooked':>10}"
    )
    for kind, r in results.items():
        print(
            f"{kind:<11} {r['bookings']:>9,} {r['p50']:>10.1f} {r['p95']:>8.1f} {r['max']:>8.1f}"
            f" {r['ok']:>7} {r['full']:>5} {r['other']:>6} {r['ok'] / r['seconds']:>7.1f}"
            f" {r['overbooked']:>10}"
            f"  ({(r['ok'] + r['full'] + r['other']) / r['seconds']:.1f} answers/s)"
        )


if __name__ == "__main__":
    main()
