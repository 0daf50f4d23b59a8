"""Ticket numbers stay gapless and unique when several processes create tickets at once."""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Ticket

# Several processes at once: seconds (make test-fast leaves it out).
pytestmark = pytest.mark.slow

SECRET = "test-secret-key-that-is-long-enough-1234567890"


def _create_tickets(url: str, count: int, start, results) -> None:
    """Runs in a spawned process: its own app, engine and session."""
    from consult import create_app
    from consult.models import Channel
    from consult.services import tickets
    from consult.services.actor import SYSTEM

    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-numbering-"))
    app = create_app(
        {
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": SECRET,
            "ENV": "testing",
            "PASSWORD_HASH_COST": "fast",
        },
        instance_path=str(tmp / "instance"),
    )
    numbers = []
    with app.app_context():
        start.wait(timeout=60)
        for n in range(count):
            ticket = tickets.create_ticket(SYSTEM, channel=Channel.PHONE, subject=f"同時受付{n}")
            db.session.commit()
            numbers.append(ticket.number)
        db.session.remove()
        db.engine.dispose()
    results.put(numbers)


def _run(url: str, processes: int, per_process: int) -> list[str]:
    # Forked from a server process that has only imported the code (no app, no connection, no
    # thread): each one then builds its own app and engine as a spawned process would, without
    # two seconds of imports each (eight of them on two cores).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "consult.app", "channels", "faq", "handoff", "api"])
    start = ctx.Event()
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_create_tickets, args=(url, per_process, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.set()
    collected: list[str] = []
    for _ in workers:
        collected.extend(results.get(timeout=300))
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return collected


@pytest.mark.parametrize(
    ("backend", "processes", "per_process"),
    [("postgresql", 8, 50), ("sqlite", 4, 25)],
    indirect=["backend"],
)
def test_concurrent_processes_get_consecutive_numbers(app, processes, per_process):
    url = app.config["MADOGUCHI"]["DATABASE_URL"]
    total = processes * per_process

    numbers = _run(url, processes, per_process)

    assert len(numbers) == total
    assert len(set(numbers)) == total
    years = {number.split("-")[0] for number in numbers}
    assert len(years) == 1
    sequences = sorted(int(number.split("-")[1]) for number in numbers)
    assert sequences == list(range(1, total + 1))
    rows = db.session.execute(sa.select(Ticket.number, Ticket.sequence)).all()
    assert len(rows) == total
    assert sorted(r.sequence for r in rows) == list(range(1, total + 1))
    assert {r.number for r in rows} == set(numbers)
    # Every one of them added to the same row of the reports' rollup (today, phone, no
    # category) with an UPSERT: none lost, none counted twice.
    from consult.services import report_rollup

    stored = report_rollup.stored()
    assert stored == report_rollup.recount()
    day_rows = [counts for key, counts in stored["daily"].items() if key[0] == "day"]
    assert sum(tickets for tickets, _, _ in day_rows) == total
