"""The one automatic-answer policy: whether a citizen may be answered without a consultant.

Before, LINE's out-of-hours answer, email's acknowledgement and the FAQ's automatic answer each
scanned the timeline's JSON for their own keys, and could disagree. Every channel now asks
`may_answer_automatically` and records what it sent through tickets.record_outgoing (whose
typed MESSAGE_OUT data, consult.timeline.MessageOut, is what this reads back). The rules:

- never answer an automatic reply (a citizen's out-of-office mail), nor a closed ticket;
- ACK: only the first message is acknowledged (the channel says what "first" is: LINE's first
  message of a contact, email's new ticket), and a ticket is acknowledged once;
- OUT_OF_HOURS: while the centre is closed, one answer per closed spell (the spell is named by
  the opening it ends at: a message in the same night is not answered again, one after the
  next opening and closing is);
- FAQ: while the centre is closed, once per ticket.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, Ticket, TimelineEntry
from consult.services import calendar
from consult.timeline import Automatic, MessageOut, load


def sent_automatically(ticket: Ticket) -> list[MessageOut]:
    """The ticket's automatic answers so far, oldest first (its outgoing entries only)."""
    if ticket.id is None:
        return []
    rows = db.session.scalars(
        sa.select(TimelineEntry.data)
        .where(TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.MESSAGE_OUT)
        .order_by(TimelineEntry.id)
    )
    found = (load(EntryKind.MESSAGE_OUT, data) for data in rows)
    return [m for m in found if m.automatic is not None]


def spell_end(at: datetime) -> datetime:
    """The opening that ends the closed spell `at` falls in (`at` itself when open)."""
    return calendar.next_centre_opening(at)


def may_answer_automatically(
    ticket: Ticket,
    kind: Automatic,
    at: datetime,
    *,
    first_message: bool = False,
    automatic_reply: bool = False,
) -> bool:
    """Whether `kind` may be sent now for the citizen's message received `at`.

    `first_message`: the channel's own notion of a first contact (ACK only).
    `automatic_reply`: the message being answered was itself sent by a machine."""
    if automatic_reply or not ticket.is_open:
        return False
    if ticket.citizen is not None and ticket.citizen.use_stopped:
        return False  # 利用停止: the person's messages are answered by staff only
    if kind == Automatic.ACK:
        if not first_message:
            return False
        return not any(m.automatic == Automatic.ACK for m in sent_automatically(ticket))
    if calendar.centre_is_open(at):
        return False
    if kind == Automatic.OUT_OF_HOURS:
        until = spell_end(at)
        return not any(
            m.automatic == Automatic.OUT_OF_HOURS and m.auto_until == until
            for m in sent_automatically(ticket)
        )
    if kind == Automatic.FAQ:
        return not any(m.automatic == Automatic.FAQ for m in sent_automatically(ticket))
    return False
