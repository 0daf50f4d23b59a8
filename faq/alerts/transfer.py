"""Consumer alerts on the relay: a read-only copy of the published ones (public /alerts).

The core sends the published alerts whenever they change (`alerts.published`, a snapshot); the
relay keeps them as consumer_alert rows of its own (approved fields only: no case, no author),
and archives the ones the core no longer publishes. Drafts never leave the core.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from faq.alerts.models import AlertStatus, ConsumerAlert

KIND = "alerts.published"
FIELDS = (
    *("title", "method", "area", "phrases", "advice"),
    *("title_en", "method_en", "area_en", "advice_en"),
)


def snapshot() -> dict | None:
    from consult.transfer.services import role

    if role() != "core":
        return None
    alerts = db.session.scalars(
        sa.select(ConsumerAlert)
        .where(ConsumerAlert.status == AlertStatus.PUBLISHED)
        .order_by(ConsumerAlert.id)
    )
    return {
        "alerts": [
            {
                "id": alert.id,
                **{name: getattr(alert, name) for name in FIELDS},
                "published_at": alert.published_at.isoformat() if alert.published_at else None,
            }
            for alert in alerts
        ]
    }


def apply(payload: dict) -> None:
    wanted = {int(item["id"]): item for item in payload.get("alerts", [])}
    current = {row.id: row for row in db.session.scalars(sa.select(ConsumerAlert))}
    for alert_id, item in wanted.items():
        row = current.get(alert_id)
        if row is None:
            row = ConsumerAlert(id=alert_id, redaction_notes=[])
            db.session.add(row)
        for name in FIELDS:
            setattr(row, name, item.get(name) or "")
        published = item.get("published_at")
        row.published_at = datetime.fromisoformat(published) if published else None
        row.updated_at = row.published_at or row.updated_at
        row.status = AlertStatus.PUBLISHED
    for alert_id, row in current.items():
        if alert_id not in wanted:
            row.status = AlertStatus.ARCHIVED
    db.session.flush()
