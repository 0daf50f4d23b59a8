"""Logging a call: caller, number, announcement, callback, duration, first note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from channels.phone.models import PhoneCall
from consult.extensions import db
from consult.models import Channel, Ticket
from consult.services import callbacks, citizens, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import ValidationFailed
from consult.timeutil import utcnow

MAX_CALL_MINUTES = 600


@dataclass
class Call:
    category_id: int | None
    first_note: str
    duration_minutes: int
    recording_announced: bool
    callback_needed: bool
    callback_due_at: datetime | None = None
    subject: str | None = None
    anonymous: bool = False
    name: str | None = None
    kana: str | None = None
    phone: str | None = None
    citizen_id: int | None = None
    birth_date: str | None = None
    # "new" once the consultant has seen the candidates and chosen a new person.
    citizen_choice: str | None = None


def log_call(actor: Actor, call: Call) -> Ticket:
    """The ticket of a call; whoever took the call is its 担当 (and makes the callback)."""
    actor.require(*DESK_ROLES)
    if not 0 <= call.duration_minutes <= MAX_CALL_MINUTES:
        raise ValidationFailed(f"通話時間は0〜{MAX_CALL_MINUTES}分で入力してください。")
    now = utcnow()
    if call.callback_needed:
        if call.callback_due_at is None:
            raise ValidationFailed("折り返しが必要な場合は、折り返しの期限を入力してください。")
        if call.callback_due_at < now - timedelta(minutes=5):
            raise ValidationFailed("折り返しの期限が過去の日時になっています。")
    citizen = None
    if call.citizen_id or not call.anonymous:
        citizen = citizens.citizen_for_intake(
            actor,
            citizens.CitizenInput(
                name=call.name, kana=call.kana, phone=call.phone, birth_date=call.birth_date
            ),
            choice=call.citizen_id or call.citizen_choice,
        )
    started = now - timedelta(minutes=call.duration_minutes)
    note = (call.first_note or "").strip()
    first_line = note.splitlines()[0] if note else ""
    ticket = tickets.create_ticket(
        actor,
        channel=Channel.PHONE,
        subject=(call.subject or "").strip() or first_line[:40] or "電話相談",
        category_id=call.category_id,
        citizen=citizen,
        first_note=note,
        assignee=actor.staff,
        session_started_at=started,
        at=now,
    )
    tickets.end_session(actor, ticket, at=now)
    db.session.add(
        PhoneCall(
            ticket=ticket,
            recording_announced=call.recording_announced,
            callback_needed=call.callback_needed,
            callback_due_at=call.callback_due_at if call.callback_needed else None,
        )
    )
    if call.callback_needed:
        callbacks.schedule(actor, ticket, call.callback_due_at)
    db.session.flush()
    return ticket


def ticket_panel(ticket: Ticket):
    if ticket.channel != Channel.PHONE:
        return None
    call = db.session.scalar(sa.select(PhoneCall).where(PhoneCall.ticket_id == ticket.id))
    if call is None:
        return None
    return "phone/_panel.html", {"call": call}
