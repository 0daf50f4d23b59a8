"""The kernel's blocks of the 今日 page: my open cases and the callbacks I must make.

Each block is a fixed number of queries (the page's count is pinned in the tests)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from consult.extensions import db
from consult.models import Staff, Ticket
from consult.services import callbacks
from consult.services.actor import Actor

MY_CASES_LIMIT = 100


def my_cases(staff: Staff, now: datetime):
    """Open cases whose 担当 I am, most recently active first."""
    query = (
        sa.select(Ticket)
        .where(Ticket.assignee_id == staff.id, Ticket.is_open.is_(True))
        .options(selectinload(Ticket.citizen), selectinload(Ticket.category))
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
        .limit(MY_CASES_LIMIT + 1)
    )
    rows = list(db.session.scalars(query))
    return "consult/today/_my_cases.html", {
        "tickets": rows[:MY_CASES_LIMIT],
        "more": len(rows) > MY_CASES_LIMIT,
    }


def my_callbacks(staff: Staff, now: datetime):
    """Callbacks I must make by the end of today, and those already overdue (highlighted)."""
    items = callbacks.due(Actor(staff), staff_id=staff.id, now=now)
    overdue = sum(1 for item in items if item.overdue(now))
    return "consult/today/_callbacks.html", {"callbacks": items, "overdue": overdue}
