"""折り返し (callbacks): promised by a time, listed by due time, reminded once per step, done.

A consultant who promises to call back keeps the promise only if something reminds them: the
due time used to be stored on the phone log and shown nowhere. Now each promise is a row that
the queue lists (due today and overdue, in red), that the ticket page shows with its 「折り返し
済みにする」 button, and that the worker reminds the person responsible of, through the live
channel: once ten minutes before, once when it is overdue.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from consult.extensions import db
from consult.models import Callback, EntryKind, Ticket
from consult.services import audit
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, NotFound
from consult.timeutil import TOKYO, format_tokyo, tokyo_today, utcnow

SOON = timedelta(minutes=10)


def schedule(
    actor: Actor, ticket: Ticket, due_at: datetime, *, staff_id: int | None = None
) -> Callback:
    """A promise to call back by `due_at`; made by `staff_id`, else by whoever promised it."""
    actor.require(*DESK_ROLES)
    callback = Callback(
        ticket=ticket,
        due_at=due_at,
        staff_id=staff_id if staff_id is not None else actor.staff_id,
        created_at=utcnow(),
    )
    db.session.add(callback)
    db.session.flush()
    return callback


def for_ticket(ticket: Ticket) -> list[Callback]:
    return list(
        db.session.scalars(
            sa.select(Callback).where(Callback.ticket_id == ticket.id).order_by(Callback.due_at)
        )
    )


def due(
    actor: Actor, *, staff_id: int | None = None, now: datetime | None = None
) -> list[Callback]:
    """Callbacks not yet made that are due by the end of today (Tokyo) or overdue, by due time.

    `staff_id` keeps those that person is responsible for (their own, or on their cases when
    nobody was named); None lists everyone's.
    """
    actor.require(*DESK_ROLES)
    now = now or utcnow()
    end_of_day = datetime.combine(tokyo_today(now) + timedelta(days=1), time(0), TOKYO)
    query = (
        sa.select(Callback)
        .join(Ticket, Callback.ticket_id == Ticket.id)
        .where(Callback.done_at.is_(None), Callback.due_at < end_of_day)
        .options(
            selectinload(Callback.staff),
            selectinload(Callback.ticket).selectinload(Ticket.citizen),
            selectinload(Callback.ticket).selectinload(Ticket.assignee),
        )
        .order_by(Callback.due_at, Callback.id)
    )
    if staff_id is not None:
        query = query.where(
            sa.or_(
                Callback.staff_id == staff_id,
                sa.and_(Callback.staff_id.is_(None), Ticket.assignee_id == staff_id),
            )
        )
    return list(db.session.scalars(query.limit(200)))


def mark_done(actor: Actor, ticket: Ticket, callback_id: int) -> Callback:
    """The call was made: taken with one conditional UPDATE, so a double click records it once."""
    actor.require(*DESK_ROLES)
    callback = db.session.get(Callback, callback_id)
    if callback is None or callback.ticket_id != ticket.id:
        raise NotFound("折り返しの予定が見つかりません。")
    now = utcnow()
    taken = db.session.execute(
        sa.update(Callback)
        .where(Callback.id == callback.id, Callback.done_at.is_(None))
        .values(done_at=now, done_by_id=actor.staff_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(callback)
    if taken != 1:
        raise InvalidTransition("この折り返しはすでに済みになっています。")
    from consult.services import tickets

    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=actor.staff,
        body=f"折り返しの電話をしました（期限 {format_tokyo(callback.due_at)}）。",
        data={"callback_id": callback.id, "callback_done": True},
        at=now,
    )
    audit.record(actor, "callback_done", "ticket", ticket.number)
    return callback


def remind(now: datetime | None = None) -> int:
    """Worker task (alerts lane): tell the person responsible, once each, that a callback is due
    in ten minutes and that it is overdue. Several workers may run this at once: each step is
    taken with a conditional UPDATE and only the taker publishes."""
    from consult.live import services as live

    now = now or utcnow()
    steps = (
        ("soon", Callback.reminded_soon_at, Callback.due_at > now, Callback.due_at <= now + SOON),
        ("overdue", Callback.reminded_overdue_at, Callback.due_at <= now, sa.true()),
    )
    sent = 0
    for state, column, *window in steps:
        pending = list(
            db.session.scalars(
                sa.select(Callback)
                .where(Callback.done_at.is_(None), column.is_(None), *window)
                .options(selectinload(Callback.ticket))
                .order_by(Callback.due_at)
                .limit(500)
            )
        )
        for callback in pending:
            values = {column.key: now}
            if state == "overdue":
                values["reminded_soon_at"] = sa.func.coalesce(Callback.reminded_soon_at, now)
            taken = db.session.execute(
                sa.update(Callback)
                .where(Callback.id == callback.id, column.is_(None), Callback.done_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            responsible = callback.responsible_id
            if taken != 1 or responsible is None:
                continue
            # Ids, the number and times only: live events are kept a day, out of disposal.
            live.publish(
                "callback.due",
                [f"staff:{responsible}"],
                {
                    "callback_id": callback.id,
                    "ticket_id": callback.ticket_id,
                    "number": callback.ticket.number,
                    "state": state,
                    "due_at": callback.due_at.isoformat(),
                    "due_label": format_tokyo(callback.due_at),
                },
            )
            sent += 1
    db.session.flush()
    return sent


def ticket_panel(ticket: Ticket):
    """The ticket page's 折り返し panel: each promise, its due time (red when overdue), done."""
    items = for_ticket(ticket)
    if not items:
        return None
    return "consult/_callbacks_panel.html", {"callbacks": items, "now": utcnow()}
