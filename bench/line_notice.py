"""LINE notice benchmark: one notice to 100,000 opted-in LINE users, through the outbox.

Builds 100,000 following LINE contacts who consented to consumer alerts (bulk inserts, after the
migrations), then times what a supervisor's 「送信する」 and the worker do: `queue_notice` (the
segment query and one outbox row per batch of 500 contact ids, LINE's multicast maximum) and
the outbox's delivery of every batch by multicast with the real line-bot-sdk client to the fake
Messaging API on 127.0.0.1 (tests/channels/line/fake_line.py, which counts ids, keeps no bodies).
It prints the time of each step and the peak memory: Python allocations (tracemalloc) and the
process's resident set (getrusage).

With `--method narrowcast` the same notice goes the way a large segment goes
(MADOGUCHI_LINE_NARROWCAST_THRESHOLD): one outbox row that reads the segment again, uploads
the user ids as an audience (10,000 per request), sends one narrowcast, and a second row that
asks LINE's progress; the fake answers `succeeded` at once, so "deliver" is madoguchi's part.

    .venv/bin/python bench/line_notice.py --db both [--method both] [--users 100000]
        [--no-tracemalloc]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import SECRET, kinds, log, scratch  # noqa: E402
from bench.line import migrate  # noqa: E402


def build(url: str, tmp: Path, api_host: str, threshold: int):
    from consult import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": SECRET,
            "ENV": "testing",
            "PASSWORD_HASH_COST": "fast",
            "TOTP_REQUIRED": "none",
            "LINE_CHANNEL_SECRET": "bench-channel-secret",
            "LINE_CHANNEL_ACCESS_TOKEN": "test-access-token",
            "LINE_API_HOST": api_host,
            # 0: every batch by multicast; 50: anything LINE takes as an audience by narrowcast.
            "LINE_NARROWCAST_THRESHOLD": str(threshold),
        },
        instance_path=str(tmp / "instance"),
    )


def populate(users: int) -> None:
    from channels.line.models import LineContact, LineSubscription
    from consult.extensions import db
    from consult.timeutil import utcnow

    now = utcnow()
    chunk = 10_000
    for start in range(0, users, chunk):
        count = min(chunk, users - start)
        db.session.execute(
            sa.insert(LineContact.__table__),
            [
                {"user_id": f"U{start + i:032x}", "following": True, "created_at": now}
                for i in range(count)
            ],
        )
    ids = db.session.scalars(sa.select(LineContact.id).order_by(LineContact.id)).all()
    for start in range(0, len(ids), chunk):
        db.session.execute(
            sa.insert(LineSubscription.__table__),
            [
                {"contact_id": i, "topic": "interest", "value": "consumer", "consented_at": now}
                for i in ids[start : start + chunk]
            ],
        )
    db.session.commit()


def run(kind: str, users: int, trace: bool, method: str = "multicast") -> dict:
    from tests.channels.line.fake_line import start_fake_line

    fake, fake_server = start_fake_line()
    fake.record_multicast = False  # count ids only: 100,000 ids of bodies are not kept
    fake.quota_limit = None
    try:
        with scratch(kind, "notice") as (tmp, url):
            migrate(url, tmp)
            app = build(url, tmp, fake.url, 50 if method == "narrowcast" else 0)
            with app.app_context():
                from channels.line import notices
                from consult.extensions import db
                from consult.models import OutboxMessage, OutboxStatus
                from consult.services import outbox
                from consult.services.actor import SYSTEM

                log(f"{kind}: {users:,} opted-in contacts")
                populate(users)
                db.session.remove()
                # The SDK's import (seconds, under tracemalloc minutes) and its first client are
                # a process's start-up, not the notice's cost: done before the clock starts.
                notices.current_quota()
                rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                if trace:
                    tracemalloc.start()
                started = time.perf_counter()
                notice = notices.queue_notice(
                    SYSTEM,
                    "【注意喚起】市役所職員を名乗る還付金詐欺の電話が増えています。",
                    notices.Segment("consumer"),
                    quota=None,
                )
                batches = notice.batch_count
                db.session.commit()
                queued = time.perf_counter()
                delivered = 0
                while True:
                    report = outbox.run_once(batch=10)
                    delivered += report.delivered
                    if not (report.delivered or report.retried):
                        break
                done = time.perf_counter()
                peak = tracemalloc.get_traced_memory()[1] if trace else None
                if trace:
                    tracemalloc.stop()
                rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                left = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status != OutboxStatus.DELIVERED)
                )
                db.session.remove()
                db.engine.dispose()
            if method == "narrowcast":
                assert fake.narrowcast_users == users, (fake.narrowcast_users, users)
                assert fake.multicast_calls == 0 and batches == 1
                assert delivered == 2 and left == 0  # the send, then the progress
                # uploads, the audience's status, the narrowcast, its progress, the deletion
                requests = 3 + len(fake.deleted_audiences) + (users + 9_999) // 10_000
            else:
                assert fake.multicast_users == users, (fake.multicast_users, users)
                assert fake.multicast_calls == batches == delivered and left == 0
                requests = batches
            return {
                "db": kind,
                "method": method,
                "requests": requests,
                "users": users,
                "batches": batches,
                "queue_s": queued - started,
                "deliver_s": done - queued,
                "total_s": done - started,
                "peak_traced_mb": None if peak is None else peak / 2**20,
                "max_rss_mb": rss_after / 1024,
                "rss_growth_mb": (rss_after - rss_before) / 1024,
            }
    finally:
        fake_server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--method", choices=("multicast", "narrowcast", "both"), default="both")
    parser.add_argument("--no-tracemalloc", action="store_true")
    args = parser.parse_args()
    rows = []
    methods = ("multicast", "narrowcast") if args.method == "both" else (args.method,)
    for kind in kinds(args.db):
        for method in methods:
            rows.append(run(kind, args.users, not args.no_tracemalloc, method))
            log(f"{kind} {method}: {rows[-1]}")
    print()
    print("| database | method | users | outbox rows | LINE requests | queue (s) | deliver (s) "
          "| total (s) | peak traced (MB) | max RSS (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        traced = "-" if r["peak_traced_mb"] is None else f"{r['peak_traced_mb']:.1f}"
        rows_out = r["batches"] + (1 if r["method"] == "narrowcast" else 0)
        print(
            f"| {r['db']} | {r['method']} | {r['users']:,} | {rows_out} | {r['requests']} "
            f"| {r['queue_s']:.2f} | {r['deliver_s']:.2f} | {r['total_s']:.2f} | {traced} "
            f"| {r['max_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
