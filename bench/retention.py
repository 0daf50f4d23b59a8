"""Disposal of expired tickets on PostgreSQL, and what it does to the desk meanwhile.

Builds N tickets (bench.desk.populate: citizens, phones, timeline entries, the search index),
dates the oldest K closed ones back so their retention has run out, draws up and approves the
month's 廃棄予定一覧, then runs `madoguchi records dispose --approved` in its own process while a
signed-in consultant keeps loading the desk (the queue's first page and ticket pages) through
gunicorn. Prints how long building took, how long disposal took (tickets per second), and the
desk's p50/p95/max before and during disposal.

The issue asks for 100,000 expired of 1,000,000 tickets:

    python bench/retention.py --tickets 1000000 --expired 100000

The default (--tickets 200000 --expired 100000) finishes in a few minutes on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    SECRET,
    add_reuse_arguments,
    build_app,
    free_port,
    log,
    percentiles,
    sign_in,
    start_gunicorn,
    stop,
)
from bench.common import built as built_data  # noqa: E402
from bench.desk import LOGIN, PASSWORD, populate  # noqa: E402


def expire(url: str, tmp: Path, expired: int) -> int:
    """Date the oldest `expired` closed tickets back to 2015 and approve this month's list."""
    import sqlalchemy as sa

    from consult.extensions import db
    from consult.models import Status, Ticket
    from consult.services import retention
    from consult.services.actor import SYSTEM

    app = build_app(url, tmp)
    with app.app_context():
        ids = sa.select(Ticket.id).where(Ticket.status == Status.CLOSED).order_by(Ticket.id)
        chosen = list(db.session.scalars(ids.limit(expired)))
        for start in range(0, len(chosen), 20_000):
            db.session.execute(
                sa.update(Ticket)
                .where(Ticket.id.in_(chosen[start : start + 20_000]))
                .values(closed_at=datetime(2015, 5, 1, tzinfo=UTC))
            )
        db.session.commit()
        t0 = time.perf_counter()
        listing = retention.prepare_list(SYSTEM)
        retention.approve(SYSTEM, listing)
        db.session.commit()
        log(f"list of {len(chosen):,} drawn up and approved in {time.perf_counter() - t0:.1f}s")
        db.session.remove()
        db.engine.dispose()
    return len(chosen)


def desk_load(base: str, numbers: list[str], stop_event: threading.Event, times: list[float]):
    session, _token = sign_in(base, LOGIN, PASSWORD, "/tickets")
    i = 0
    while not stop_event.is_set():
        url = f"{base}/tickets" if i % 2 == 0 else f"{base}/tickets/{numbers[i % len(numbers)]}"
        start = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"desk: HTTP {response.status_code} for {url}")
        i += 1


def measure_desk(base: str, numbers: list[str], seconds: float) -> list[float]:
    times: list[float] = []
    done = threading.Event()
    worker = threading.Thread(target=desk_load, args=(base, numbers, done, times))
    worker.start()
    time.sleep(seconds)
    done.set()
    worker.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000, help="N tickets in all")
    parser.add_argument("--expired", type=int, default=100_000, help="of which disposed")
    parser.add_argument("--entries", type=int, default=None, help="default: 3 per ticket")
    parser.add_argument("--batch", type=int, default=200, help="tickets per transaction")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    # A kept database (bench/desk.py --keep-db) is used up: its expired tickets are disposed of.
    add_reuse_arguments(parser)
    args = parser.parse_args()
    if args.entries is None:
        args.entries = 3 * args.tickets
    t0 = time.perf_counter()
    with built_data("postgresql", args, populate) as (tmp, url, targets):
        entries = args.entries
        took_to_build = time.perf_counter() - t0
        log(f"ready in {took_to_build:.1f}s")
        expired = expire(url, tmp, args.expired)
        port = free_port()
        server = start_gunicorn(url, tmp, port)
        base = f"http://127.0.0.1:{port}"
        try:
            numbers = targets["numbers"]
            log(f"desk alone for {args.baseline_seconds:.0f}s")
            before = measure_desk(base, numbers, args.baseline_seconds)
            environment = dict(os.environ)
            environment.update(
                {
                    "MADOGUCHI_DATABASE_URL": url,
                    "MADOGUCHI_SECRET_KEY": SECRET,
                    "MADOGUCHI_DATA_DIR": str(tmp / "data"),
                    "PYTHONPATH": str(ROOT),
                }
            )
            command = [
                str(Path(sys.executable).parent / "madoguchi"),
                "records",
                "dispose",
                "--approved",
                "--json",
                "--batch",
                str(args.batch),
            ]
            log(f"disposing of {expired:,} tickets while the desk keeps working")
            times: list[float] = []
            done = threading.Event()
            load = threading.Thread(target=desk_load, args=(base, numbers, done, times))
            load.start()
            t0 = time.perf_counter()
            result = subprocess.run(
                command, env=environment, capture_output=True, text=True, cwd=str(tmp), check=False
            )
            took = time.perf_counter() - t0
            done.set()
            load.join()
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-2000:])
            outcome = json.loads(result.stdout)
        finally:
            stop(server)
    print()
    print(f"data: {args.tickets:,} tickets, {entries:,} entries, ready in {took_to_build:.1f}s")
    print(
        f"disposal: {outcome['tickets']:,} tickets in {took:.1f}s "
        f"({outcome['tickets'] / took:,.0f} tickets/s, batches of {args.batch})"
    )
    print("removed: " + ", ".join(f"{k} {v:,}" for k, v in outcome["removed"].items()))
    print(f"{'desk':<22} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, sample in (("before disposal", before), ("during disposal", times)):
        figures = percentiles(sample)
        print(
            f"{label:<22} {len(sample):>8} {figures['p50']:>8.1f} {figures['p95']:>8.1f}"
            f" {figures['max']:>8.1f}"
        )


if __name__ == "__main__":
    main()
