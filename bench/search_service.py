"""The desk's search timed in-process, without HTTP or the page: where a search's time goes.

    .venv/bin/python bench/search_service.py --url postgresql+psycopg://…/madoguchi_bench_N

Runs on a database that bench/desk.py kept (`--keep-db`). For each search kind of
bench/desk.py: p50/p95 of wall time and of this process's CPU time for `search_results` (the
page's service call: ranking, 100 tickets loaded, passages), and for the index lookup alone
(`search.matches`). CPU time shows the cost when other work loads the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import build_app  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.services import search, tickets  # noqa: E402
from consult.services.actor import Actor  # noqa: E402

KINDS = [
    ("name 山田", "山田"),
    ("kana やまだ", "やまだ"),
    ("part of a phone", "0123"),
    ("part of a number", "000303"),
    ("word, 1 character 税", "税"),
    ("word, 2 characters 国保", "国保"),
    ("word, 4 characters 介護保険", "介護保険"),
    ("words 住民票 郵送", "住民票 郵送"),
    ("kana unconverted こくほ", "こくほ"),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    app = build_app(args.url, Path(tempfile.mkdtemp()))
    with app.app_context():
        actor = Actor.command_line()
        print(
            f"{'kind':28} {'found':>5} {'service p50/p95 ms':>20} {'cpu p50/p95':>14} "
            f"{'index p50/p95':>14}"
        )
        for label, query in KINDS:
            wall, cpu, lookup = [], [], []
            found = 0
            for _ in range(args.runs):
                t0, c0 = time.perf_counter(), time.process_time()
                found = len(tickets.search_results(actor, query, limit=50).tickets)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                db.session.rollback()
                parsed = search.Query.parse(query)
                t0 = time.perf_counter()
                search.matches(parsed)
                lookup.append((time.perf_counter() - t0) * 1000)
                db.session.rollback()
            print(
                f"{label:28} {found:5} {statistics.median(wall):9.1f}/{percentile(wall, 0.95):6.1f}"
                f"   {statistics.median(cpu):6.1f}/{percentile(cpu, 0.95):6.1f}"
                f"   {statistics.median(lookup):6.1f}/{percentile(lookup, 0.95):6.1f}"
            )


if __name__ == "__main__":
    main()
