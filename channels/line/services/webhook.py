"""The webhook's side of intake: the signature check, and a stored body read as event rows.

The webhook (channels.line.intake) only verifies and stores; `insert_events` is what the
processor (channels.line.tasks.expand_pending) writes for each stored body, in its transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite

from channels.line.models import EventStatus, LineEvent
from channels.line.services.common import log
from consult.extensions import db


class InvalidSignature(Exception):
    """The X-Line-Signature is missing or does not match the body: nothing is stored."""


def verify(body: str, signature: str | None, secret: str) -> None:
    """Raise InvalidSignature unless LINE signed this body (the SDK's constant-time check).

    Nothing else is read here: the body is stored as it came (channels.line.intake) and read
    by the processor (`tasks.expand_pending`), so the webhook answers LINE at once under any load.
    """
    # WebhookParser.parse is not used for the body: on an old-shape event of an unknown type it
    # raises instead of returning UnknownEvent.
    from linebot.v3.webhook import SignatureValidator

    if not signature or not SignatureValidator(secret).validate(body, signature):
        raise InvalidSignature()


def events_of(body: str) -> list:
    """The events of a stored body; a signed body that is not a webhook body has none."""
    try:
        events = json.loads(body).get("events")
    except (ValueError, AttributeError):
        events = None
    if not isinstance(events, list):
        log.warning("line delivery without an events list: kept, nothing to process")
        return []
    return events


def insert_events(delivery_id: int, raw_events: list, now: datetime) -> int:
    """One row per event (duplicates ignored); events the SDK cannot read as a known type (a
    future type, or a known one missing a required field) are stored as ignored and logged."""
    from linebot.v3.webhooks import Event

    rows = []
    for event in raw_events:
        if not isinstance(event, dict):
            log.info("line event ignored: not an object")
            continue
        try:
            Event.from_dict(event)  # a known type with its required fields
            known = True
        except ValueError:  # pydantic's ValidationError is one too
            known = False
        source = event.get("source") or {}
        chat_key = source.get("userId") or source.get("groupId") or source.get("roomId") or "-"
        event_type = str(event.get("type") or "unknown")[:40]
        status = EventStatus.PENDING
        if not known or event.get("mode") == "standby" or source.get("type") != "user":
            status = EventStatus.IGNORED
            log.info("line event ignored: type=%s known=%s", event_type, known)
        rows.append(
            {
                "webhook_event_id": _event_key(event),
                "delivery_id": delivery_id,
                "chat_key": str(chat_key)[:64],
                "event_type": event_type,
                "timestamp_ms": _timestamp(event),
                "is_redelivery": bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                "payload": event,
                "status": status,
                "attempts": 0,
                "next_attempt_at": now,
                "received_at": now,
            }
        )
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = LineEvent.__table__
    # Counted by RETURNING, not rowcount: an executemany INSERT .. ON CONFLICT on PostgreSQL
    # (psycopg 3, SQLAlchemy's insertmanyvalues) reports rowcount -1.
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["webhook_event_id"])
        .returning(table.c.id)
    )
    return len(db.session.execute(statement, rows).all())


def warm_up() -> None:
    """Import the SDK's webhook modules now (about a second), not in the first webhook request.

    Called when the app is created with LINE configured; the Messaging API client
    (``linebot.v3.messaging``, slower still) is only needed where messages are sent.
    """
    from linebot.v3.webhook import SignatureValidator  # noqa: F401
    from linebot.v3.webhooks import Event  # noqa: F401


def _timestamp(event: dict) -> int:
    try:
        return int(event.get("timestamp") or 0)
    except (TypeError, ValueError):
        return 0  # an unreadable time must not stop the delivery; the event keeps arrival order


def _event_key(event: dict) -> str:
    """LINE's webhookEventId; older bodies without one are keyed by a hash of the event."""
    key = event.get("webhookEventId")
    if key:
        return str(key)[:80]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
    return f"sha256:{digest[:64]}"
