"""The alerts' block of the 今日 page: alerts published this week, for every member of staff,
and the alerts waiting for approval for those who approve (one query for both)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Staff
from faq.alerts.models import AlertStatus, ConsumerAlert
from faq.alerts.services import APPROVE_ROLES


def section(staff: Staff, now: datetime):
    rows = list(
        db.session.scalars(
            sa.select(ConsumerAlert)
            .where(
                sa.or_(
                    sa.and_(
                        ConsumerAlert.status == AlertStatus.PUBLISHED,
                        ConsumerAlert.published_at >= now - timedelta(days=7),
                    ),
                    ConsumerAlert.status == AlertStatus.REVIEW,
                )
            )
            .order_by(ConsumerAlert.updated_at.desc(), ConsumerAlert.id.desc())
            .limit(50)
        )
    )
    published = [a for a in rows if a.status == AlertStatus.PUBLISHED]
    review = (
        [a for a in rows if a.status == AlertStatus.REVIEW] if staff.role in APPROVE_ROLES else []
    )
    if not published and not review:
        return None
    return "faq/alerts/_today.html", {"alerts": published, "review": review}
