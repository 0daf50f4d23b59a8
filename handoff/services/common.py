"""What every step of a handoff shares: the state machine, the timeline entry, the row lock, the
business-time rules, and the case's return to the centre once no handoff is open."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, Staff, Status
from consult.services import calendar, tickets
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition
from handoff.models import ACTIVE_STATES, Handoff, HandoffState, Response, Urgency

MAX_SUMMARY = 4000
MAX_RECORD = 4000
MAX_ETA_MINUTES = 240

# Who may move a handoff from one state to the next (the centre may cancel any open one).
TRANSITIONS: dict[HandoffState, set[HandoffState]] = {
    HandoffState.REQUESTED: {HandoffState.ACCEPTED, HandoffState.DECLINED, HandoffState.CANCELLED},
    HandoffState.ACCEPTED: {
        HandoffState.ON_THE_WAY,
        HandoffState.ARRIVED,
        HandoffState.DONE,
        HandoffState.DECLINED,
        HandoffState.CANCELLED,
    },
    HandoffState.ON_THE_WAY: {
        HandoffState.ARRIVED,
        HandoffState.DONE,
        HandoffState.DECLINED,
        HandoffState.CANCELLED,
    },
    HandoffState.ARRIVED: {HandoffState.DONE, HandoffState.DECLINED, HandoffState.CANCELLED},
    HandoffState.DONE: set(),
    HandoffState.DECLINED: set(),
    HandoffState.CANCELLED: set(),
}

# Business minutes (department office time) until the response is due, per wanted response.
DUE_MINUTES = {
    Response.VISIT: 30,
    Response.CALLBACK: 120,
    Response.JOINT: calendar.BUSINESS_DAY_MINUTES,
    Response.WRITTEN: 5 * calendar.BUSINESS_DAY_MINUTES,
}
# Business minutes until an unaccepted handoff escalates, per response and urgency.
ACCEPT_MINUTES = {
    Response.VISIT: {Urgency.URGENT: 5, Urgency.NORMAL: 10, Urgency.LOW: 30},
    Response.CALLBACK: {Urgency.URGENT: 15, Urgency.NORMAL: 60, Urgency.LOW: 120},
    Response.JOINT: {Urgency.URGENT: 30, Urgency.NORMAL: 120, Urgency.LOW: 240},
    Response.WRITTEN: {
        Urgency.URGENT: 120,
        Urgency.NORMAL: calendar.BUSINESS_DAY_MINUTES,
        Urgency.LOW: 2 * calendar.BUSINESS_DAY_MINUTES,
    },
}
# Responses that need the citizen's contact details (shared with the officer, audited).
CONTACT_RESPONSES = {Response.CALLBACK, Response.WRITTEN, Response.JOINT}


def add_entry(handoff: Handoff, author: Staff | None, body: str, **data) -> None:
    data.update(
        handoff_id=handoff.id,
        state=handoff.state.value,
        department=handoff.department.name,
    )
    tickets.add_entry(handoff.ticket, EntryKind.HANDOFF, author=author, body=body, data=data)


def touch(handoff: Handoff, now: datetime) -> None:
    handoff.updated_at = now
    # The ticket's last activity moves too, so the live view of the ticket sees the change.
    if now > handoff.ticket.last_activity_at:
        handoff.ticket.last_activity_at = now


def move(handoff: Handoff, new: HandoffState) -> None:
    if new not in TRANSITIONS[handoff.state]:
        raise InvalidTransition(
            f"「{handoff.state.label}」の引継ぎを「{new.label}」にはできません。"
        )
    handoff.state = new


def lock(handoff: Handoff) -> Handoff:
    """Re-read the row under a write lock (PostgreSQL) so two officers cannot both accept."""
    db.session.flush()  # keep this transaction's own earlier steps (refresh would drop them)
    db.session.refresh(handoff, with_for_update=True)
    return handoff


def return_to_centre_when_settled(handoff: Handoff, staff: Staff | None) -> None:
    """With no handoff still open, the case is the centre's again (引継中 → 対応中)."""
    ticket = handoff.ticket
    still_open = db.session.scalar(
        sa.select(sa.func.count(Handoff.id)).where(
            Handoff.ticket_id == ticket.id, Handoff.state.in_(ACTIVE_STATES)
        )
    )
    if not still_open and ticket.status == Status.HANDED_OFF:
        tickets.change_status(Actor(staff, trusted=True), ticket, Status.IN_PROGRESS, internal=True)
