"""Escalation: handoffs nobody accepted by their deadline are announced to the supervisors and
the department's other officers. It flushes; the worker's task commits (handoff.tasks)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult import signals
from consult.extensions import db
from consult.models import Role, Staff
from consult.timeutil import utcnow
from handoff import notifications
from handoff.models import Handoff, HandoffState
from handoff.services.common import add_entry


def escalate_due(now: datetime | None = None) -> int:
    """Alert the supervisors and the department's other officers about handoffs nobody took."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            sa.select(Handoff)
            .where(
                Handoff.state == HandoffState.REQUESTED,
                Handoff.accept_by <= now,
                Handoff.escalated_at.is_(None),
            )
            .limit(200)
        )
    )
    for handoff in due:
        # Conditional update: two workers never alert twice.
        claimed = db.session.execute(
            sa.update(Handoff)
            .where(Handoff.id == handoff.id, Handoff.escalated_at.is_(None))
            .values(escalated_at=now)
        ).rowcount
        if not claimed:
            continue
        db.session.refresh(handoff)
        recipients = db.session.scalars(
            sa.select(Staff).where(
                Staff.active.is_(True),
                Staff.email.is_not(None),
                sa.or_(
                    Staff.role == Role.SUPERVISOR,
                    sa.and_(
                        Staff.role == Role.OFFICER, Staff.department_id == handoff.department_id
                    ),
                ),
            )
        )
        addresses = sorted({staff.email for staff in recipients})
        if handoff.department.email and handoff.department.email not in addresses:
            addresses.append(handoff.department.email)  # the department's shared mailbox
        notifications.not_accepted(handoff, addresses)
        add_entry(
            handoff,
            None,
            f"{handoff.department.name}が受付期限までに受け付けていません（通知済み）",
            escalated=True,
        )
        signals.handoff_changed.send(handoff)
    db.session.flush()  # the worker task commits the round (handoff.tasks)
    return len(due)
