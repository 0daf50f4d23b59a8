"""The handoff block of the 今日 page: handoffs I am waiting for (I asked, or it is my case)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from consult.extensions import db
from consult.models import Staff, Ticket
from handoff.models import ACTIVE_STATES, Handoff


def section(staff: Staff, now: datetime):
    """One query (plus two IN-loads): open handoffs I made or on cases whose 担当 I am,
    the oldest first; past their answer time highlighted."""
    rows = list(
        db.session.scalars(
            sa.select(Handoff)
            .join(Ticket, Ticket.id == Handoff.ticket_id)
            .where(
                Handoff.state.in_(ACTIVE_STATES),
                sa.or_(Handoff.created_by_id == staff.id, Ticket.assignee_id == staff.id),
            )
            .options(selectinload(Handoff.ticket), selectinload(Handoff.department))
            .order_by(Handoff.due_at, Handoff.id)
            .limit(200)
        )
    )
    return "handoff/_today.html", {"handoffs": rows}
