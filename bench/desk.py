"""Desk benchmark: a large centre's data, the app under gunicorn, latency of the desk's pages.

    .venv/bin/python bench/desk.py --db both --tickets 200000 --entries 1000000 --requests 200

Builds the data with bulk inserts (SQLAlchemy Core executemany) into a temporary SQLite file
and a fresh PostgreSQL database (on MADOGUCHI_BENCH_POSTGRES_URL or MADOGUCHI_TEST_POSTGRES_URL,
default postgresql://postgres@127.0.0.1:5432/test; the database is created and dropped here),
after running the migrations. Then it starts gunicorn, logs in over HTTP and times each page.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    DB_CHOICES,
    add_reuse_arguments,
    build_app,
    built,
    free_port,
    kinds,
    log,
    measure,
    print_table,
    sign_in,
    start_gunicorn,
    stop,
)
from consult.extensions import db  # noqa: E402
from consult.models import (  # noqa: E402
    Channel,
    Citizen,
    CitizenPhone,
    EntryKind,
    NumberSequence,
    Priority,
    Status,
    Ticket,
    TimelineEntry,
)
from consult.services import search  # noqa: E402
from consult.services import staff as staff_service  # noqa: E402
from consult.services.normalize import name_key  # noqa: E402
from consult.services.tickets import Cursor  # noqa: E402
from consult.timeutil import fiscal_year, tokyo_today  # noqa: E402

PASSWORD = "bench-password-123"
LOGIN = "bench"
CHUNK = 20_000
PAGE_SIZE = 50

SUBJECTS = [
    "住民票の写しの請求方法について",
    "転入届に必要な書類を知りたい",
    "マイナンバーカードの更新手続き",
    "国民健康保険料の減免について",
    "介護保険の要介護認定の申請",
    "児童手当の申請期限について",
    "ごみの分別方法がわからない",
    "粗大ごみの収集日について",
    "道路の陥没を見つけた",
    "公園の遊具が壊れている",
    "街灯が切れている",
    "空き家の草木が伸びて困っている",
    "訪問販売で高額な契約をしてしまった",
    "ネット通販の定期購入を解約したい",
    "架空請求のはがきが届いた",
    "近所の騒音について相談したい",
    "生活費が足りず家計の見直しをしたい",
    "事業資金の融資制度について",
    "市営住宅の入居申込について",
    "保育所の入所申込について",
    "高齢の親の一人暮らしが心配",
    "相続した土地の固定資産税について",
    "印鑑登録証明書を代理人が取りたい",
    "戸籍の附票の取得方法",
    "防災行政無線が聞き取りにくい",
]
NOTES = [
    "担当課に確認し、必要な書類を案内した。",
    "相談者に電話で折り返し、手続きの流れを説明した。",
    "関係課へ引き継いだ。回答待ち。",
    "窓口で申請書の書き方を案内した。",
    "消費生活相談員が契約書を確認した。",
    "現地を確認し、担当課で補修を手配した。",
    "来庁の予約を受け付けた。",
    "国保の保険料の減免について保険年金課を案内した。",
    "市県民税の納付書の再発行を税務課に依頼した。",
    "介護保険の認定調査の日程を長寿支援課と調整した。",
    "児童扶養手当の現況届の提出期限を伝えた。",
    "粗大ごみの申込方法を説明し、シールの購入先を案内した。",
    "住民票の写しの郵送請求に必要な書類を伝えた。",
    "契約の解除について消費生活センターにつないだ。",
    "道路の陥没箇所の写真をメールで受け取った。",
    "生活福祉資金の貸付について社会福祉協議会を紹介した。",
    "空き家の所有者を調べる手順を説明した。",
    "マイナンバーカードの暗証番号の再設定を案内した。",
]
SURNAMES = [
    ("山田", "やまだ"),
    ("佐藤", "さとう"),
    ("田中", "たなか"),
    ("鈴木", "すずき"),
    ("高橋", "たかはし"),
    ("伊藤", "いとう"),
    ("渡辺", "わたなべ"),
    ("中村", "なかむら"),
    ("小林", "こばやし"),
    ("加藤", "かとう"),
]
GIVEN = [
    ("太郎", "たろう"),
    ("花子", "はなこ"),
    ("健一", "けんいち"),
    ("美咲", "みさき"),
    ("翔太", "しょうた"),
    ("陽子", "ようこ"),
    ("誠", "まこと"),
    ("恵子", "けいこ"),
]
CHANNELS = [Channel.COUNTER, Channel.PHONE, Channel.EMAIL, Channel.LINE, Channel.BOOKING]
CHANNEL_WEIGHTS = [35, 40, 12, 8, 5]
OPEN_STATUSES = [Status.RECEIVED, Status.IN_PROGRESS, Status.HANDED_OFF, Status.AWAITING_REPLY]
ENTRY_KINDS = [EntryKind.NOTE, EntryKind.MESSAGE_IN, EntryKind.ASSIGNMENT, EntryKind.SESSION]


# --- data ------------------------------------------------------------------------------------


def insert_chunks(conn, table, rows_iter) -> int:
    count = 0
    chunk = []
    for row in rows_iter:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(table.insert(), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(table.insert(), chunk)
        count += len(chunk)
    return count


def populate(url: str, tmp: Path, n_tickets: int, n_entries: int) -> dict:
    from flask_migrate import upgrade

    rng = random.Random(2026)
    app = build_app(url, tmp)
    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        log(f"migrated in {time.perf_counter() - t0:.1f}s")
        categories = [
            staff_service.save_category(None, name=name, code=code).id
            for code, name in staff_service.DEFAULT_CATEGORIES
        ]
        consultant = staff_service.create_staff(
            None,
            login=LOGIN,
            full_name="計測 太郎",
            display_name="けいそく / Keisoku",
            role="consultant",
            password=PASSWORD,
        )
        desk = [consultant.id]
        for index, (surname, kana) in enumerate(SURNAMES[:5]):
            desk.append(
                staff_service.create_staff(
                    None,
                    login=f"desk{index}",
                    full_name=f"{surname} 相談員",
                    display_name=f"{kana} / Desk",
                    role="consultant",
                    password=PASSWORD,
                ).id
            )
        db.session.commit()

        t0 = time.perf_counter()
        n_citizens = max(n_tickets // 4, 1)
        now = datetime.now(UTC).replace(microsecond=0)
        with db.engine.begin() as conn:
            citizen_rows = []
            for cid in range(1, n_citizens + 1):
                surname, skana = SURNAMES[cid % len(SURNAMES)]
                given, gkana = GIVEN[(cid // len(SURNAMES)) % len(GIVEN)]
                name, kana = f"{surname} {given}", f"{skana} {gkana}"
                citizen_rows.append(
                    {
                        "id": cid,
                        "name": name,
                        "kana": kana,
                        "name_key": name_key(name),
                        "kana_key": name_key(kana),
                        "address": f"高松市番町{cid % 9 + 1}丁目{cid % 30 + 1}-{cid % 20 + 1}",
                        "created_at": now - timedelta(days=1200),
                    }
                )
            insert_chunks(conn, Citizen.__table__, citizen_rows)
            insert_chunks(
                conn,
                CitizenPhone.__table__,
                (
                    {"citizen_id": cid, "number": f"090{cid // 10000 % 10000:04d}{cid % 10000:04d}"}
                    for cid in range(1, n_citizens + 1)
                ),
            )
        log(f"{n_citizens:,} citizens in {time.perf_counter() - t0:.1f}s")

        # Tickets over three fiscal years, numbered per fiscal year in order of creation.
        t0 = time.perf_counter()
        span = timedelta(days=3 * 365)
        created = sorted(
            now - timedelta(seconds=rng.uniform(0, span.total_seconds())) for _ in range(n_tickets)
        )
        per_ticket = [n_entries // n_tickets] * n_tickets
        for index in range(n_entries - sum(per_ticket)):
            per_ticket[index % n_tickets] += 1
        open_ids = set(rng.sample(range(1, n_tickets + 1), n_tickets // 10))
        sequences: dict[int, int] = {}
        ticket_rows = []
        for tid, at in enumerate(created, start=1):
            year = fiscal_year(tokyo_today(at))
            sequences[year] = sequences.get(year, 0) + 1
            is_open = tid in open_ids
            channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
            entries = per_ticket[tid - 1]
            times = [at + timedelta(minutes=15 * k + rng.randint(0, 10)) for k in range(entries)]
            last = times[-1] if times else at
            if last > now:
                last = now
            author = rng.choice(desk)
            ticket_rows.append(
                {
                    "id": tid,
                    "number": f"{year}-{sequences[year]:06d}",
                    "fiscal_year": year,
                    "sequence": sequences[year],
                    "channel": channel,
                    "category_id": rng.choice(categories),
                    "subject": rng.choice(SUBJECTS),
                    "status": rng.choice(OPEN_STATUSES) if is_open else Status.CLOSED,
                    "is_open": is_open,
                    "priority": rng.choices(list(Priority), [5, 80, 12, 3])[0],
                    "assignee_id": author if rng.random() < 0.7 else None,
                    "citizen_id": rng.randint(1, n_citizens) if rng.random() < 0.8 else None,
                    "created_by_id": author,
                    "created_at": at,
                    "last_activity_at": last,
                    "session_started_at": at
                    if channel in (Channel.COUNTER, Channel.PHONE)
                    else None,
                    "session_ended_at": None,
                    "duration_seconds": None,
                    "resolution_summary": None if is_open else rng.choice(NOTES),
                    "closed_at": None if is_open else last,
                }
            )
            ticket_rows[-1]["_times"] = times

        def entry_rows():
            entry_id = 0
            for row in ticket_rows:
                times = row.pop("_times")
                for k, moment in enumerate(times):
                    entry_id += 1
                    closing = not row["is_open"] and k == len(times) - 1
                    yield {
                        "id": entry_id,
                        "ticket_id": row["id"],
                        "kind": EntryKind.STATUS_CHANGE if closing else rng.choice(ENTRY_KINDS),
                        "author_id": row["created_by_id"],
                        "created_at": min(moment, now),
                        "body": rng.choice(NOTES),
                        "data": {"from": "in_progress", "to": "closed", "label": "対応中 → 完了"}
                        if closing
                        else {},
                    }

        log(f"generated rows in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            insert_chunks(conn, Ticket.__table__, ticket_rows)
            log(f"{len(ticket_rows):,} tickets in {time.perf_counter() - t0:.1f}s")
            t1 = time.perf_counter()
            n_written = insert_chunks(conn, TimelineEntry.__table__, entry_rows())
            log(f"{n_written:,} timeline entries in {time.perf_counter() - t1:.1f}s")
            for year, last_value in sequences.items():
                conn.execute(
                    NumberSequence.__table__.insert(),
                    {"name": "ticket", "key": str(year), "last_value": last_value},
                )
        # The search index, as `madoguchi ticket reindex` builds it (the migration ran on an
        # empty database).
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            indexed = search.rebuild(
                conn,
                batch=5000,
                progress=lambda done: (
                    done % 100_000 < 5000
                    and log(f"  indexed {done:,} in {time.perf_counter() - t0:.0f}s")
                ),
            )
        log(f"search index: {indexed:,} documents in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                for table in ("citizen", "citizen_phone", "ticket", "timeline_entry"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
            conn.exec_driver_sql("ANALYZE")
        log(f"analyzed in {time.perf_counter() - t0:.1f}s")

        # What the requests will ask for.
        open_order = sorted(
            (r for r in ticket_rows if r["is_open"]),
            key=lambda r: (r["last_activity_at"], r["id"]),
            reverse=True,
        )
        page = max(2, min(400, -(-len(open_order) // PAGE_SIZE)))
        index = (page - 1) * PAGE_SIZE - 1
        deep = open_order[index]
        phone_rows = [r for r in ticket_rows if r["channel"] == Channel.PHONE and r["is_open"]]
        sample = rng.sample(ticket_rows, 500)
        phones = [
            f"090{cid // 10000 % 10000:04d}{cid % 10000:04d}"
            for cid in rng.sample(range(1, n_citizens + 1), min(200, n_citizens))
        ]
        targets = {
            "deep_cursor": Cursor(deep["last_activity_at"], deep["id"]).encode(),
            "deep_page": page,
            "deep_page_rows": min(len(open_order) - index - 1, PAGE_SIZE),
            "filter_category": phone_rows[0]["category_id"] if phone_rows else categories[0],
            "numbers": [r["number"] for r in sample],
            # Parts of phones (the last 4 digits) and of ticket numbers (the 6 digits).
            "phone_parts": [p[-4:] for p in phones],
            "number_parts": [r["number"][-6:] for r in sample],
        }
        db.session.remove()
        db.engine.dispose()
    return targets


# --- HTTP ------------------------------------------------------------------------------------


def login(base: str) -> tuple[requests.Session, str]:
    return sign_in(base, LOGIN, PASSWORD, "/tickets")


def run_requests(base: str, targets: dict, n: int) -> list[dict]:
    session, token = login(base)
    numbers = targets["numbers"]
    deep_url = f"{base}/tickets?after={targets['deep_cursor']}"
    deep = session.get(deep_url, timeout=30)
    rows = deep.text.count('class="queue-table__subject"')
    if rows != targets["deep_page_rows"] or rows == 0:
        raise RuntimeError(
            f"page {targets['deep_page']} shows {rows} rows, expected {targets['deep_page_rows']}"
        )
    filtered = f"{base}/tickets?channel=phone&category={targets['filter_category']}"
    return [
        measure(session, "queue, first page", lambda i: session.get(f"{base}/tickets"), n, 200),
        measure(
            session, f"queue, page {targets['deep_page']}", lambda i: session.get(deep_url), n, 200
        ),
        measure(session, "queue, channel+category", lambda i: session.get(filtered), n, 200),
        measure(
            session,
            "ticket page",
            lambda i: session.get(f"{base}/tickets/{numbers[i % len(numbers)]}"),
            n,
            200,
        ),
        measure(
            session,
            "search by ticket number",
            lambda i: session.post(
                f"{base}/tickets/search",
                data={"q": numbers[i % len(numbers)], "csrf_token": token},
                allow_redirects=False,
            ),
            n,
            302,
        ),
        *[
            measure(
                session,
                f"search {label}",
                lambda i, q=q: session.post(
                    f"{base}/tickets/search",
                    data={"q": q(i) if callable(q) else q, "csrf_token": token},
                ),
                n,
                200,
            )
            for label, q in searches(targets)
        ],
    ]


def searches(targets: dict) -> list[tuple[str, object]]:
    """The search kinds of issue 16: each a label and a query (or a query per request)."""
    phones, parts = targets["phone_parts"], targets["number_parts"]
    return [
        ("name 山田", "山田"),
        ("kana やまだ", "やまだ"),
        ("part of a phone (4 digits)", lambda i: phones[i % len(phones)]),
        ("part of a number (6 digits)", lambda i: parts[i % len(parts)]),
        ("word, 1 character 税", "税"),
        ("word, 2 characters 国保", "国保"),
        ("word, 4 characters 介護保険", "介護保険"),
        ("words 住民票 郵送", "住民票 郵送"),
        ("kana typed unconverted こくほ", "こくほ"),
    ]


# --- main ------------------------------------------------------------------------------------


def bench_one(kind: str, args) -> list[dict]:
    with built(kind, args, populate) as (tmp, url, targets):
        port = free_port()
        server = start_gunicorn(url, tmp, port)
        try:
            log(f"{kind}: gunicorn on port {port}; {args.requests} requests per page")
            return run_requests(f"http://127.0.0.1:{port}", targets, args.requests)
        finally:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--entries", type=int, default=None, help="default: 5 per ticket")
    parser.add_argument("--db", choices=DB_CHOICES, default="both")
    parser.add_argument("--requests", type=int, default=200)
    add_reuse_arguments(parser)
    args = parser.parse_args()
    if args.entries is None:
        args.entries = 5 * args.tickets
    results = {kind: bench_one(kind, args) for kind in kinds(args.db)}
    print()
    print(f"{args.tickets:,} tickets, {args.entries:,} timeline entries, {args.requests} requests")
    print_table(results)


if __name__ == "__main__":
    main()
