"""The file-transfer mode: the same items in signed batch files, for cities whose only path
into LGWAN is a file-transfer system (ファイル転送), in both directions.

A side exports what waits on it (and, as acknowledgements, the ids it has applied lately);
the other side imports the file: applies each item once (by id) and deletes what the file
acknowledges. Importing a file twice, or an older one after a newer one, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from consult.extensions import db
from consult.timeutil import utcnow
from consult.transfer import services, signing
from consult.transfer.models import TransferReceived

ACK_DAYS = 7
MAX_ITEMS = 100_000


def export_batch() -> tuple[bytes, int]:
    role = services.role()
    items = services.outgoing(MAX_ITEMS)
    if role == "core":
        items += services.snapshots(only_changed=False)
    acks = list(
        db.session.scalars(
            sa.select(TransferReceived.id).where(
                TransferReceived.received_at >= utcnow() - timedelta(days=ACK_DAYS)
            )
        )
    )
    data = signing.sign_file(services.settings().key, {"from": role, "items": items, "acks": acks})
    db.session.commit()
    return data, len(items)


@dataclass
class Imported:
    applied: int
    already: int
    failed: int
    acknowledged: int


def import_batch(data: bytes) -> Imported:
    """Raises signing.Refused for a file that is not signed with the key or comes from this
    same role (a relay's own export fed back to it)."""
    batch = signing.open_file(services.settings().key, data)
    if batch.get("from") == services.role() or batch.get("from") not in ("relay", "core"):
        raise signing.Refused("the file was exported by this same role")
    items = batch.get("items") if isinstance(batch.get("items"), list) else []
    acks = batch.get("acks") if isinstance(batch.get("acks"), list) else []
    received = services.receive(items)
    acknowledged = services.acknowledge([str(a) for a in acks])
    db.session.commit()
    services.after_apply(current_app._get_current_object(), received.kinds)
    return Imported(
        applied=received.applied,
        already=len(received.accepted) - received.applied,
        failed=received.failed,
        acknowledged=acknowledged,
    )
