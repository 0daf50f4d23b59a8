"""API benchmark: list, read and create through /api/v1/ with a large centre's data, p50/p95.

    .venv/bin/python bench/api.py --db postgresql --tickets 1000000 --entries 1000000 --requests 200

Builds the data as bench/desk.py does (bulk inserts after the migrations), makes an integration
with every scope, starts gunicorn (two workers) and times, over HTTP with the bearer token: the
first page of the list, a deep page by cursor, a filtered list, reading a case (with its
citizen, audited) and creating a case (POST). The target is the desk pages': under 50 ms p95.
"""

from __future__ import annotations

import argparse
import sys
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
    start_gunicorn,
    stop,
)
from bench.desk import populate  # noqa: E402


def make_token(url: str, tmp: Path) -> str:
    from api import services
    from consult.extensions import db
    from consult.services.actor import SYSTEM

    app = build_app(url, tmp)
    with app.app_context():
        created = services.create_integration(
            SYSTEM,
            name="計測",
            scopes=["tickets:read", "tickets:write", "personal", "reports", "faq"],
        )
        db.session.commit()
        token = created.token
        db.session.remove()
        db.engine.dispose()
    return token


def run_requests(base: str, token: str, targets: dict, n: int) -> list[dict]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    numbers = targets["numbers"]
    deep = f"{base}/api/v1/tickets?limit=50&cursor={targets['deep_cursor']}"
    if not session.get(deep, timeout=30).json()["items"]:
        raise RuntimeError("the deep page is empty")
    filtered = f"{base}/api/v1/tickets?channel=phone&category_id={targets['filter_category']}"
    return [
        measure(
            session, "list, first page", lambda i: session.get(f"{base}/api/v1/tickets"), n, 200
        ),
        measure(session, f"list, page {targets['deep_page']}", lambda i: session.get(deep), n, 200),
        measure(session, "list, channel+category", lambda i: session.get(filtered), n, 200),
        measure(
            session,
            "read (with citizen, audited)",
            lambda i: session.get(f"{base}/api/v1/tickets/{numbers[i % len(numbers)]}"),
            n,
            200,
        ),
        measure(
            session,
            "create",
            lambda i: session.post(
                f"{base}/api/v1/tickets",
                json={"subject": f"計測の相談 {i}", "message": "フォームの本文"},
            ),
            n,
            201,
        ),
    ]


def bench_one(kind: str, args) -> list[dict]:
    with built(kind, args, populate) as (tmp, url, targets):
        token = make_token(url, tmp)
        port = free_port()
        server = start_gunicorn(
            url, tmp, port, env={"MADOGUCHI_API_RATE_LIMIT": "100000 per minute"}
        )
        try:
            log(f"{kind}: gunicorn on port {port}; {args.requests} requests per operation")
            return run_requests(f"http://127.0.0.1:{port}", token, targets, args.requests)
        finally:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", choices=DB_CHOICES, default="postgresql")
    parser.add_argument("--requests", type=int, default=200)
    add_reuse_arguments(parser)
    args = parser.parse_args()
    results = {kind: bench_one(kind, args) for kind in kinds(args.db)}
    print()
    print(f"{args.tickets:,} tickets, {args.entries:,} timeline entries, {args.requests} requests")
    print_table(results)


if __name__ == "__main__":
    main()
