"""The FAQ block of the 今日 page: drafts waiting for my approval, for the roles that approve."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Staff
from faq.models import FaqEntry, FaqStatus
from faq.services import APPROVE_ROLES


def section(staff: Staff, now: datetime):
    """None for roles that do not approve; else the entries asked to be approved, oldest first
    (one query). Their own drafts are listed apart: someone else must approve those."""
    if staff.role not in APPROVE_ROLES:
        return None
    rows = list(
        db.session.scalars(
            sa.select(FaqEntry)
            .where(FaqEntry.status == FaqStatus.REVIEW)
            .order_by(FaqEntry.updated_at, FaqEntry.id)
            .limit(100)
        )
    )
    return "faq/_today.html", {
        "entries": [e for e in rows if e.author_id != staff.id],
        "own": [e for e in rows if e.author_id == staff.id],
    }
