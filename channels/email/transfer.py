"""Inbound mail across the zones: the relay stores what the MTA pipe or IMAP gave it, the core
takes the bytes and processes them as it would its own.

On the relay, `madoguchi mail ingest` and `mail fetch` only store (channels.email.services
`ingest`, `ingest_many`). The core takes each pending mail's bytes (`pending`), stores them as
its own pending mail (`apply`; the same mail twice is one row, by its dedupe key), and its
worker processes them into tickets; once the core has them the relay deletes row and file.
"""

from __future__ import annotations

import base64
import logging

import sqlalchemy as sa

from channels.email.models import InboundMail, InboundStatus
from consult.extensions import db

log = logging.getLogger("madoguchi.email")

KIND = "mail.inbound"
BATCH_BYTES = 8 * 1024 * 1024  # one pull carries at most this much mail (and at least one)
PREFIX = "mail:"


def pending(limit: int) -> list[dict]:
    from channels.email.services import _data_dir

    items = []
    size = 0
    rows = db.session.scalars(
        sa.select(InboundMail)
        .where(InboundMail.status == InboundStatus.PENDING)
        .order_by(InboundMail.id)
        .limit(limit)
    )
    for row in rows:
        if items and size + row.size > BATCH_BYTES:
            break
        size += row.size
        try:
            raw = (_data_dir() / "raw" / row.storage_name).read_bytes()
        except OSError:
            log.warning("inbound mail %s: its file is missing; left for an administrator", row.id)
            continue
        items.append(
            {
                "id": f"{PREFIX}{row.id}:{row.sha256[:32]}",
                "kind": KIND,
                "payload": {
                    "raw": base64.b64encode(raw).decode("ascii"),
                    "source": row.source,
                },
            }
        )
    return items


def acknowledge(ids: list[str]) -> None:
    from channels.email.services import _data_dir

    numbers = []
    for item in ids:
        if item.startswith(PREFIX):
            head = item[len(PREFIX) :].split(":", 1)[0]
            if head.isdigit():
                numbers.append(int(head))
    if not numbers:
        return
    rows = list(db.session.scalars(sa.select(InboundMail).where(InboundMail.id.in_(numbers))))
    for row in rows:
        (_data_dir() / "raw" / row.storage_name).unlink(missing_ok=True)
    db.session.execute(sa.delete(InboundMail).where(InboundMail.id.in_(numbers)))


def apply(payload: dict) -> None:
    from channels.email.services import _insert_ignore, _stored_row

    raw = base64.b64decode(payload["raw"])
    _insert_ignore(_stored_row(raw, str(payload.get("source") or "relay")))
