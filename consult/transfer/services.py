"""The transfer between the relay (internet zone) and the core (LGWAN zone).

Only the core opens connections. It PULLS the relay's intake (signed POST /relay/v1/pull),
applies each item once (its id is kept in `transfer_received`), commits, then tells the relay
which ids it has (POST /relay/v1/ack), and the relay deletes them: after that the relay holds
no personal data of theirs. It PUSHES what must go out (POST /relay/v1/push): messages for the
relay's outbox to deliver, and snapshots of state the relay keeps a copy of (free slots, the
published FAQ). A push is deleted on the core only once the relay answered that it applied it.
An item sent twice (a lost answer, a replayed batch, a file imported again) changes nothing.

Each message the relay's outbox finishes goes back as its outcome (`outbox.outcome`: delivered,
or failed and why), pulled like intake: the core marks its own row (a failure shows on the
ticket and among the failed items, as on one server), acknowledges, and the relay deletes the
row. Whatever the core has not taken within MADOGUCHI_RELAY_HOLD_DAYS the relay forgets
(`housekeeping`).

When the link is down each side keeps its items; the next round sends them. The same items
travel in signed batch files where the only path into LGWAN is a file-transfer system
(`madoguchi transfer export/import`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from consult import plugins, upsert
from consult.config import CoreSettings, RelaySettings
from consult.extensions import db
from consult.models import OutboxMessage, OutboxStatus
from consult.settings import section
from consult.timeutil import utcnow
from consult.transfer.models import TransferItem, TransferReceived

log = logging.getLogger("madoguchi.transfer")

RECEIVED_KEEP_DAYS = 30
PUSHED_KEY = "madoguchi.transfer.pushed"


def role(app: Flask | None = None) -> str:
    return section(CoreSettings, app).role


def settings(app: Flask | None = None) -> RelaySettings:
    return section(RelaySettings, app)


def kinds() -> dict[str, plugins.TransferKind]:
    return plugins.registry().transfer_kinds


def enqueue(kind: str, item_id: str, payload: dict) -> None:
    """Keep an item to send (in the caller's transaction); the same id twice is one item."""
    upsert.insert_ignore(
        TransferItem.__table__,
        {"id": item_id, "kind": kind, "payload": payload, "created_at": utcnow()},
        ["id"],
    )


def waiting(kind_prefix: str | None = None) -> list[TransferItem]:
    query = sa.select(TransferItem).order_by(TransferItem.created_at, TransferItem.id)
    if kind_prefix:
        query = query.where(TransferItem.kind.startswith(kind_prefix))
    return list(db.session.scalars(query))


# --- what one side sends ---------------------------------------------------------------------


def outgoing(limit: int) -> list[dict]:
    """Items waiting on this side, oldest first: the transfer table's, then the sources'."""
    rows = db.session.scalars(
        sa.select(TransferItem).order_by(TransferItem.created_at, TransferItem.id).limit(limit)
    ).all()
    items = [{"id": row.id, "kind": row.kind, "payload": row.payload} for row in rows]
    if role() != "relay":
        return items
    for kind in kinds().values():
        if kind.pending is not None and len(items) < limit:
            items.extend(kind.pending(limit - len(items)))
    return items


def acknowledge(ids: list[str]) -> int:
    """The other side has these: delete them here (and from the sources that hold theirs)."""
    ids = [str(item) for item in ids][:10_000]
    if not ids:
        return 0
    deleted = db.session.execute(sa.delete(TransferItem).where(TransferItem.id.in_(ids))).rowcount
    if role() != "relay":
        return deleted or 0
    for kind in kinds().values():
        if kind.acknowledge is not None:
            kind.acknowledge(ids)
    return deleted or 0


def snapshots(only_changed: bool = True) -> list[dict]:
    """The core's current snapshots (those that changed since last pushed, by default)."""
    pushed = current_app.extensions.setdefault(PUSHED_KEY, {})
    items = []
    for kind in kinds().values():
        if kind.snapshot is None:
            continue
        payload = kind.snapshot()
        if payload is None:
            continue
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()
        if only_changed and pushed.get(kind.name) == digest:
            continue
        items.append(
            {
                "id": f"{kind.name}:{digest[:32]}",
                "kind": kind.name,
                "payload": payload,
                "replace": True,
                "digest": digest,
            }
        )
    return items


def mark_pushed(items: list[dict]) -> None:
    pushed = current_app.extensions.setdefault(PUSHED_KEY, {})
    for item in items:
        if item.get("replace"):
            pushed[item["kind"]] = item["digest"]


# --- what one side receives ------------------------------------------------------------------


@dataclass
class Received:
    accepted: list[str] = field(default_factory=list)  # applied now, or before
    applied: int = 0
    failed: int = 0
    kinds: set[str] = field(default_factory=set)


def receive(items: list) -> Received:
    """Apply each item once. The whole batch in one savepoint first; if any item fails, again
    item by item, each in its own savepoint (one that fails does not spoil the rest; it is not
    accepted, so the sender keeps it and tries again). The caller commits."""
    try:
        with db.session.begin_nested():
            result = _receive(items, strict=True)
        return result
    except _ItemFailed:
        pass
    return _receive(items, strict=False)


class _ItemFailed(Exception):
    pass


def _receive(items: list, strict: bool) -> Received:
    result = Received()
    known = kinds()
    here = role()
    ids = [str(item.get("id")) for item in items if isinstance(item, dict)]
    seen = (
        set(db.session.scalars(sa.select(TransferReceived.id).where(TransferReceived.id.in_(ids))))
        if ids
        else set()
    )
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            result.failed += 1
            continue
        item_id, name = item["id"], item.get("kind")
        kind = known.get(name)
        if kind is None or kind.to != here or not isinstance(item.get("payload"), dict):
            log.warning("transfer: item of kind %r is not for the %s; refused", name, here)
            result.failed += 1
            continue
        if item_id in seen:
            result.accepted.append(item_id)
            continue
        try:
            if strict:
                _apply(kind, item)
            else:
                with db.session.begin_nested():
                    _apply(kind, item)
        except Exception as exc:
            if strict:
                raise _ItemFailed from exc
            log.exception("transfer: item of kind %s could not be applied; kept for later", name)
            result.failed += 1
            continue
        seen.add(item_id)
        result.accepted.append(item_id)
        result.applied += 1
        result.kinds.add(name)
    return result


def _apply(kind: plugins.TransferKind, item: dict) -> None:
    kind.apply(item["payload"])
    if not item.get("replace"):
        db.session.add(TransferReceived(id=item["id"], kind=kind.name, received_at=utcnow()))
    db.session.flush()


def after_apply(app: Flask, names: set[str]) -> None:
    if not settings(app).deliver_after_push:
        names = names - {"outbox"}
    for name in names:
        kind = plugins.registry(app).transfer_kinds.get(name)
        if kind is not None and kind.after_apply is not None:
            try:
                kind.after_apply(app)
            except Exception:
                log.exception("transfer: after-apply of %s failed", name)


def housekeeping() -> dict[str, int]:
    """Forget applied ids after a month; on the relay, also what it no longer needs (below)."""
    db.session.execute(
        sa.delete(TransferReceived).where(
            TransferReceived.received_at < utcnow() - timedelta(days=RECEIVED_KEEP_DAYS)
        )
    )
    forgotten = forget_on_relay() if role() == "relay" else {}
    db.session.commit()
    return forgotten


FINISHED = (OutboxStatus.DELIVERED, OutboxStatus.FAILED)


def forget_on_relay() -> dict[str, int]:
    """The relay keeps a citizen's address and words no longer than it needs them: a finished
    message that has no core to tell at once (the core has taken the others' outcomes, which
    deleted them); and, after MADOGUCHI_RELAY_HOLD_DAYS, whatever the core has not taken (intake
    and items for the core, a message's outcome), since the core normally takes it within
    seconds. Counts by kind, logged and audited (counts only, never what was held)."""
    before = utcnow() - timedelta(days=settings().hold_days)
    o = OutboxMessage.__table__
    counts = {
        "outbox": db.session.execute(
            sa.delete(o).where(o.c.status.in_(FINISHED), o.c.transfer_id.is_(None))
        ).rowcount
        or 0
    }
    counts["outbox"] += (
        db.session.execute(
            sa.delete(o).where(o.c.created_at < before, o.c.status != OutboxStatus.SENDING)
        ).rowcount
        or 0
    )
    old = list(
        db.session.scalars(sa.select(TransferItem.id).where(TransferItem.created_at < before))
    )
    for start in range(0, len(old), 1000):
        acknowledge(old[start : start + 1000])  # as if taken: each kind forgets its part
    counts["items"] = len(old)
    for kind in kinds().values():
        if kind.expire is not None:
            counts[kind.name] = kind.expire(before)
    if counts["items"] or any(n for name, n in counts.items() if name != "outbox"):
        from consult.services import audit
        from consult.services.actor import SYSTEM

        detail = " ".join(f"{name}={n}" for name, n in sorted(counts.items()) if n)
        audit.record(SYSTEM, "expire", "relay_hold", None, detail=detail)
        log.warning(
            "relay: forgot what the core had not taken in %s days: %s",
            settings().hold_days,
            detail,
        )
    elif counts["outbox"]:
        log.info("relay: forgot %s finished messages", counts["outbox"])
    return counts


# --- the outbox on the core: messages go to the relay ----------------------------------------


def outbox_item_id(message: OutboxMessage) -> str:
    created = int(message.created_at.timestamp() * 1_000_000) if message.created_at else 0
    return f"outbox:{message.id}:{created}"


def hand_to_relay(message: OutboxMessage) -> None:
    """The core's deliverer for every channel: the message waits in the transfer table until
    the relay has it; the relay's outbox delivers it (to LINE, to the SMTP server)."""
    channel = plugins.registry().channels.get(message.channel)
    form = channel.relay_form if channel is not None else None
    values = (
        form(message)
        if form is not None
        else {
            "recipient": message.recipient,
            "subject": message.subject,
            "body": message.body,
            "headers": message.headers or {},
        }
    )
    item_id = outbox_item_id(message)
    enqueue("outbox", item_id, {"channel": message.channel, **values, "ref": item_id})
    db.session.commit()


def apply_outbox(payload: dict) -> None:
    """On the relay: a message to deliver, into the relay's own outbox (with the core's item id,
    under which its outcome goes back)."""
    ref = payload.get("ref")
    db.session.add(
        OutboxMessage(
            channel=str(payload["channel"])[:20],
            recipient=str(payload["recipient"])[:254],
            subject=payload.get("subject"),
            body=str(payload.get("body") or ""),
            headers=payload.get("headers") or {},
            status=OutboxStatus.PENDING,
            next_attempt_at=utcnow(),
            transfer_id=str(ref)[:120] if ref else None,
        )
    )


# --- a message's outcome: from the relay's outbox back to the core ----------------------------

OUTCOME = "outbox.outcome"
OUTCOME_PREFIX = "outcome:"


def _outcome_id(message: OutboxMessage) -> str:
    """One per relay row: a message retried from the core comes as a new row, whose outcome is
    a new item (the core applies each outcome once)."""
    created = int(message.created_at.timestamp() * 1_000_000) if message.created_at else 0
    return f"{OUTCOME_PREFIX}{message.id}:{created}"


def outcome_pending(limit: int) -> list[dict]:
    """On the relay: the finished messages that came from the core, oldest first."""
    rows = db.session.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.transfer_id.is_not(None), OutboxMessage.status.in_(FINISHED))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    items = []
    for row in rows:
        failed = row.status == OutboxStatus.FAILED
        payload = {
            "ref": row.transfer_id,
            "status": "failed" if failed else "delivered",
            "attempts": row.attempts,
            "at": (row.delivered_at or utcnow()).isoformat(),
        }
        if failed:
            payload["error"] = row.last_error or "送信できませんでした"
        items.append({"id": _outcome_id(row), "kind": OUTCOME, "payload": payload})
    return items


def outcome_acknowledge(ids: list[str]) -> None:
    """On the relay: the core has these outcomes; the messages (recipient, words) go. A failed
    one's item id is forgotten too, so the same message retried from the core is taken anew."""
    wanted = {}
    for item in ids:
        if item.startswith(OUTCOME_PREFIX):
            head = item[len(OUTCOME_PREFIX) :].split(":", 1)[0]
            if head.isdigit():
                wanted[int(head)] = item
    if not wanted:
        return
    rows = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.id.in_(list(wanted)), OutboxMessage.status.in_(FINISHED)
        )
    ).all()
    done = [row for row in rows if wanted.get(row.id) == _outcome_id(row)]
    if not done:
        return
    retried = [row.transfer_id for row in done if row.status == OutboxStatus.FAILED]
    db.session.execute(
        sa.delete(OutboxMessage)
        .where(OutboxMessage.id.in_([row.id for row in done]))
        .execution_options(synchronize_session=False)
    )
    if retried:
        db.session.execute(sa.delete(TransferReceived).where(TransferReceived.id.in_(retried)))


def apply_outcome(payload: dict) -> None:
    """On the core: what became of a message handed to the relay. A failure makes the core's
    row failed with the relay's reason, and says so on the ticket, exactly as when the core's
    own outbox gives up (`all`): the ticket page, 処理に失敗したもの and `madoguchi queue failed`
    show it, and an administrator may send it again."""
    from datetime import datetime

    from consult.services import outbox

    ref = str(payload.get("ref") or "")
    parts = ref.split(":")
    if len(parts) != 3 or parts[0] != "outbox" or not parts[1].isdigit():
        return
    message = db.session.get(OutboxMessage, int(parts[1]))
    if message is None or outbox_item_id(message) != ref:
        return  # no longer here (disposed of)
    # The relay had it: a copy still waiting here (its answer was lost) must not go again.
    db.session.execute(sa.delete(TransferItem).where(TransferItem.id == ref))
    if message.status != OutboxStatus.DELIVERED:
        return  # already failed, or sent again since: this outcome is old news
    if payload.get("status") == "failed":
        error = str(payload.get("error") or "送信できませんでした")
        message.status = OutboxStatus.FAILED
        message.delivered_at = None
        message.last_error = error[:2000]
        outbox.note_failure(message, error)
        log.info("transfer: outbox=%s failed on the relay", message.id)
        return
    with contextlib.suppress(ValueError):
        message.delivered_at = datetime.fromisoformat(str(payload.get("at")))


def kick_outbox(app: Flask) -> None:
    """On the relay, right after a push: deliver now rather than at the worker's next round."""
    import threading

    from consult.services import outbox

    def run():
        with app.app_context():
            try:
                outbox.run_once()
            finally:
                db.session.remove()

    threading.Thread(target=run, name="relay-outbox", daemon=True).start()
