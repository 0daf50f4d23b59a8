"""LINE across the zones: the relay's raw webhook bodies go to the core; replies come back.

The relay stores each webhook body as it does on one server (channels.line.intake, one INSERT)
and processes nothing. The core takes the bodies (`pending`), stores each as its own delivery
(`apply`), which its worker expands and turns into tickets as usual; once the core has them the
relay deletes them (`acknowledge`). A reply on the core goes to the relay as the LINE user id
and the text (`relay_form`); the relay's outbox sends it to LINE.
"""

from __future__ import annotations

import hashlib
import uuid

import sqlalchemy as sa

from channels.line.models import LineContact, LineDelivery
from consult.extensions import db
from consult.models import OutboxMessage
from consult.services.outbox import PermanentFailure

KIND = "line.delivery"
PREFIX = "line:"
USER_PREFIX = "line-user:"


def _item_id(row_id: int, body: str) -> str:
    return f"{PREFIX}{row_id}:{hashlib.sha256(body.encode()).hexdigest()[:32]}"


def pending(limit: int) -> list[dict]:
    rows = db.session.execute(
        sa.select(LineDelivery.id, LineDelivery.body, LineDelivery.received_at)
        .order_by(LineDelivery.id)
        .limit(limit)
    )
    return [
        {
            "id": _item_id(row_id, body),
            "kind": KIND,
            "payload": {"body": body, "received_at": received_at.isoformat()},
        }
        for row_id, body, received_at in rows
    ]


def acknowledge(ids: list[str]) -> None:
    rows = []
    for item in ids:
        if item.startswith(PREFIX):
            head = item[len(PREFIX) :].split(":", 1)[0]
            if head.isdigit():
                rows.append(int(head))
    if rows:
        db.session.execute(sa.delete(LineDelivery).where(LineDelivery.id.in_(rows)))


def apply(payload: dict) -> None:
    from datetime import datetime

    received = payload.get("received_at")
    db.session.add(
        LineDelivery(
            body=str(payload["body"]),
            event_count=0,
            received_at=datetime.fromisoformat(received) if received else None,
        )
    )


def after_apply(app) -> None:
    """On the core, right after the bodies were stored: process them now, in this process
    (the worker's), rather than at the LINE lane's next round (up to its interval later)."""
    from channels.line import services

    services.kick(app)


def relay_form(message: OutboxMessage) -> dict:
    contact_id = message.recipient.removeprefix("line-contact:")
    contact = db.session.get(LineContact, int(contact_id)) if contact_id.isdigit() else None
    if contact is None:
        raise PermanentFailure("送信先のLINEの連絡先が見つかりません")
    if not contact.following:
        raise PermanentFailure("相談者がブロック（友だち解除）しているため送信しませんでした")
    headers = dict(message.headers or {})
    headers.setdefault("retry_key", str(uuid.uuid5(uuid.NAMESPACE_URL, f"o{message.id}")))
    return {
        "recipient": f"{USER_PREFIX}{contact.user_id}",
        "subject": None,
        "body": message.body,
        "headers": headers,
    }
