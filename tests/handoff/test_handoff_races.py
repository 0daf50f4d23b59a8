"""Two desks handing one case to two departments at the same moment (issue 14, second pass).

Each handoff moves the case to 引継中 as an internal step. Both requests read 受付 before either
committed, so both wrote the status change (two 受付 → 引継中 entries on the timeline). The step
is now one conditional UPDATE: the second finds the case already 引継中, leaves it alone, and its
handoff is still made (a handoff never fails because another one moved the status first).

Threads with sessions of their own on PostgreSQL, where the race appeared (SQLite serialises
whole transactions with BEGIN IMMEDIATE); no HTTP is involved in the step.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, Status, Ticket, TimelineEntry
from consult.services.actor import Actor
from handoff import services
from handoff.models import Handoff, Response


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_handoffs_made_at_once_move_the_case_once_and_both_are_made(
    app, make_staff, make_department, make_ticket
):
    departments = [make_department(name=name) for name in ("市民課", "税務課")]
    desks = [make_staff("consultant") for _ in departments]
    ticket = make_ticket(subject="転入の手続きと住民税について")
    db.session.commit()
    ticket_id = ticket.id
    pairs = [(desk.id, department.id) for desk, department in zip(desks, departments, strict=True)]
    db.session.remove()
    barrier = threading.Barrier(len(pairs))
    errors: list[BaseException] = []

    def hand(staff_id: int, department_id: int) -> None:
        try:
            with app.app_context():
                from consult.models import Staff

                staff = db.session.get(Staff, staff_id)
                case = db.session.get(Ticket, ticket_id)
                assert case.status is Status.RECEIVED  # read before the other one commits
                barrier.wait(timeout=30)
                services.create(
                    Actor(staff, "127.0.0.1"),
                    case,
                    [services.Request(department_id, "窓口で確認が必要です。", Response.VISIT)],
                )
                db.session.commit()
                db.session.remove()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=hand, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert db.session.get(Ticket, ticket_id).status is Status.HANDED_OFF
    made = db.session.scalar(
        sa.select(sa.func.count(Handoff.id)).where(Handoff.ticket_id == ticket_id)
    )
    assert made == 2
    changes = db.session.scalars(
        sa.select(TimelineEntry).where(
            TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.STATUS_CHANGE
        )
    ).all()
    assert [(e.data["from"], e.data["to"]) for e in changes] == [("received", "handed_off")]
