"""Handoff benchmark: the officer's inbox, the supervisor's overview, the live update's delay.

    .venv/bin/python bench/handoff.py --db both --tickets 200000 --handoffs 100000

Builds the desk's data with bench/desk.py's builder (one timeline entry per ticket), adds 50
departments with an officer each and the handoffs (states spread as a real centre's would be),
starts gunicorn on 127.0.0.1 and times the pages over HTTP. The live delay: a consultant's
session polls the ticket's handoff state once a second, as the ticket page's script does, while
the officer accepts; the delay is from the officer's answer to the poll that shows it.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

# The repository first: bench/faq.py and bench/handoff.py must not shadow the packages.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import desk as base

from bench import common
from consult.extensions import db
from consult.models import Department, Staff
from consult.services import auth
from handoff import rollup
from handoff.models import Handoff, HandoffState, Response, Urgency

N_DEPARTMENTS = 50
INTERVAL = 0.5  # handoff.js polls twice a second
STATES = [
    (HandoffState.DONE, 0.80),
    (HandoffState.DECLINED, 0.05),
    (HandoffState.CANCELLED, 0.02),
    (HandoffState.REQUESTED, 0.05),
    (HandoffState.ACCEPTED, 0.05),
    (HandoffState.ON_THE_WAY, 0.03),
]


def add_handoffs(url: str, tmp: Path, n_tickets: int, n_handoffs: int) -> dict:
    rng = random.Random(7)
    app = common.build_app(url, tmp)
    with app.app_context():
        hashed = auth.hash_password(base.PASSWORD)
        now = datetime.now(UTC).replace(microsecond=0)
        with db.engine.begin() as conn:
            conn.execute(
                Department.__table__.insert(),
                [
                    {
                        "id": 1000 + i,
                        "code": f"bench{i}",
                        "name": f"計測課{i}",
                        "is_external": False,
                        "active": True,
                        "sort_order": i,
                    }
                    for i in range(N_DEPARTMENTS)
                ],
            )
            conn.execute(
                Staff.__table__.insert(),
                [
                    {
                        "login": f"officer{i}",
                        "full_name": f"計測 担当{i}",
                        "display_name": "けいそく / Keisoku",
                        "role": "officer",
                        "department_id": 1000 + i,
                        "password_hash": hashed,
                        "active": True,
                        "created_at": now,
                        "password_changed_at": now,
                    }
                    for i in range(N_DEPARTMENTS)
                ]
                + [
                    {
                        "login": "boss",
                        "full_name": "計測 責任者",
                        "display_name": "けいそく / Keisoku",
                        "role": "supervisor",
                        "department_id": None,
                        "password_hash": hashed,
                        "active": True,
                        "created_at": now,
                        "password_changed_at": now,
                    }
                ],
            )
            tickets = rng.sample(range(1, n_tickets + 1), n_handoffs)
            created = sorted(
                now - timedelta(seconds=rng.uniform(0, 3 * 365 * 86400)) for _ in tickets
            )
            weights = [w for _, w in STATES]
            rows = []
            for ticket_id, at in zip(tickets, created, strict=True):
                state = rng.choices([s for s, _ in STATES], weights)[0]
                accepted = at + timedelta(minutes=rng.uniform(1, 60))
                arrived = accepted + timedelta(minutes=rng.uniform(3, 20))
                started = state not in (HandoffState.REQUESTED, HandoffState.CANCELLED)
                rows.append(
                    {
                        "ticket_id": ticket_id,
                        "department_id": 1000 + rng.randrange(N_DEPARTMENTS),
                        "summary": "計測用の伝達事項です。窓口で確認をお願いします。",
                        "response": rng.choice(list(Response)).value,
                        "urgency": Urgency.NORMAL.value,
                        "share_contact": False,
                        "state": state.value,
                        "created_at": at,
                        "updated_at": at,
                        "due_at": at + timedelta(hours=rng.uniform(1, 72)),
                        "accept_by": at + timedelta(minutes=30),
                        "offered_as_duty": False,
                        "accepted_at": accepted if started else None,
                        "accepted_by_name": "計測 担当" if started else None,
                        "arrived_at": arrived if state == HandoffState.DONE else None,
                        "done_at": arrived if state == HandoffState.DONE else None,
                        "escalated_at": at if state == HandoffState.REQUESTED else None,
                    }
                )
            base.insert_chunks(conn, Handoff.__table__, rows)
        # Fresh requests to the first department, for the live-update trials.
        with db.engine.begin() as conn:
            trial_tickets = rng.sample(range(1, n_tickets + 1), 12)
            for ticket_id in trial_tickets:
                conn.execute(
                    Handoff.__table__.insert(),
                    {
                        "ticket_id": ticket_id,
                        "department_id": 1000,
                        "summary": "ライブ更新の計測",
                        "response": "visit",
                        "urgency": "urgent",
                        "share_contact": False,
                        "state": "requested",
                        "created_at": now,
                        "updated_at": now,
                        "due_at": now + timedelta(days=1),
                        "accept_by": now + timedelta(days=1),
                        "offered_as_duty": False,
                    },
                )
            trials = conn.execute(
                Handoff.__table__.select()
                .with_only_columns(Handoff.__table__.c.id, Handoff.__table__.c.ticket_id)
                .where(Handoff.__table__.c.summary == "ライブ更新の計測")
            ).all()
            numbers = dict(
                conn.exec_driver_sql(
                    "SELECT id, number FROM ticket WHERE id IN ("
                    + ",".join(str(t) for _, t in trials)
                    + ")"
                ).all()
            )
        # The rows went in around the ORM: fill the overview's rollup as migration 0010 does.
        began = time.perf_counter()
        counted = rollup.rebuild()
        db.session.commit()
        common.log(f"handoff rollup: {counted:,} handoffs in {time.perf_counter() - began:.1f} s")
        db.engine.dispose()
    return {"trials": [(hid, numbers[tid]) for hid, tid in trials]}


def sign_in(base_url: str, login: str) -> tuple[requests.Session, str]:
    return common.sign_in(base_url, login, base.PASSWORD, "/handoffs")


def live_delay(base_url: str, trials: list[tuple[int, str]]) -> list[float]:
    """Officer accepts; a half-second poller (like handoff.js) sees it. Seconds per trial."""
    officer, token = sign_in(base_url, "officer0")
    desk, _ = sign_in(base_url, base.LOGIN)
    delays = []
    for handoff_id, number in trials:
        url = f"{base_url}/tickets/{number}/handoffs.json"
        first = desk.get(url, timeout=10).json()["version"]
        since = f"{url}?since={requests.utils.quote(first)}"
        seen = threading.Event()
        acted_at = [0.0]
        seen_at = [0.0]

        def poll(since=since, seen=seen, seen_at=seen_at):
            # Start at a random phase, as a page opened at any time would.
            time.sleep(random.uniform(0, INTERVAL))
            while not seen.is_set():
                if desk.get(since, timeout=10).status_code == 200:
                    seen_at[0] = time.perf_counter()
                    seen.set()
                    return
                time.sleep(INTERVAL)

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(1.5)
        response = officer.post(
            f"{base_url}/handoffs/{handoff_id}/accept",
            data={"csrf_token": token},
            allow_redirects=False,
            timeout=10,
        )
        acted_at[0] = time.perf_counter()
        if response.status_code != 302:
            raise RuntimeError(f"accept failed: {response.status_code}")
        seen.wait(10)
        thread.join(10)
        delays.append(max(seen_at[0] - acted_at[0], 0.0))
    return delays


def run(base_url: str, trials, n: int) -> list[dict]:
    officer, _ = sign_in(base_url, "officer7")
    boss, _ = sign_in(base_url, "boss")
    today = datetime.now(UTC).date()
    year_ago = (today - timedelta(days=365)).isoformat()
    results = [
        common.measure(
            officer,
            f"officer inbox: {tab}",
            lambda i, tab=tab: officer.get(f"{base_url}/handoffs?tab={tab}"),
            n,
            200,
        )
        for tab in ("new", "accepted", "overdue", "done")
    ]
    results.append(
        common.measure(
            boss,
            "overview: last 30 days",
            lambda i: boss.get(f"{base_url}/handoffs/overview"),
            n,
            200,
        )
    )
    results.append(
        common.measure(
            boss,
            "overview: last 365 days",
            lambda i: boss.get(f"{base_url}/handoffs/overview?start={year_ago}&end={today}"),
            n,
            200,
        )
    )
    delays = live_delay(base_url, trials)
    results.append(common.summary(f"live delay ({len(delays)} trials)", [d * 1000 for d in delays]))
    return results


def bench_one(kind: str, args) -> list[dict]:
    with common.scratch(kind, "handoff") as (tmp, url):
        common.log(f"{kind}: building {args.tickets:,} tickets and {args.handoffs:,} handoffs")
        base.populate(url, tmp, args.tickets, args.tickets)
        built = add_handoffs(url, tmp, args.tickets, args.handoffs)
        if kind == "postgresql":
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        port = common.free_port()
        server = common.start_gunicorn(url, tmp, port)
        try:
            return run(f"http://127.0.0.1:{port}", built["trials"], args.requests)
        finally:
            common.stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--db", choices=common.DB_CHOICES, default="both")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    results = {kind: bench_one(kind, args) for kind in common.kinds(args.db)}
    print()
    print(f"{args.tickets:,} tickets, {args.handoffs:,} handoffs, {N_DEPARTMENTS} departments")
    print(f"{'':34} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for kind, rows in results.items():
        print(kind)
        for row in rows:
            print(f"  {row['name']:32} {row['p50']:9.1f} {row['p95']:9.1f} {row['max']:9.1f}")


if __name__ == "__main__":
    main()
