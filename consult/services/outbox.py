"""The outbox: messages written with the change that caused them, delivered later by the worker.

Channels declare a deliverer in their plugin (consult.plugins.Channel), so consult never imports a
channel. A deliverer raises TemporaryFailure (retried with back-off) or PermanentFailure.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.outbox")


class TemporaryFailure(Exception):
    """The channel could not deliver now (network, 4xx-temporary, 429, 5xx): try again later."""


class PermanentFailure(Exception):
    """The channel refused for good (blocked user, unknown address): do not retry."""


Deliverer = Callable[[OutboxMessage], None]


def deliverer_for(channel: str) -> Deliverer:
    """The deliverer the channel's plugin declared (consult.plugins.Channel)."""
    from consult import plugins

    return plugins.registry().deliverer(channel) or log_deliverer


def log_deliverer(message: OutboxMessage) -> None:
    """Development stand-in until a channel registers a real deliverer. Logs no content."""
    log.info(
        "development delivery: outbox=%s channel=%s chars=%s",
        message.id,
        message.channel,
        len(message.body or ""),
    )


def enqueue(
    *,
    channel: str,
    recipient: str,
    body: str,
    subject: str | None = None,
    headers: dict | None = None,
    ticket: Ticket | None = None,
) -> OutboxMessage:
    """Add a message in the caller's transaction; nothing is sent until that commits."""
    message = OutboxMessage(
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        headers=headers or {},
        ticket_id=ticket.id if ticket is not None else None,
        status=OutboxStatus.PENDING,
        next_attempt_at=utcnow(),
    )
    db.session.add(message)
    return message


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def claim_due(worker: str, limit: int, lease: timedelta) -> list[int]:
    """Claim due messages for this worker and commit the claim.

    Candidates are chosen with FOR UPDATE SKIP LOCKED on PostgreSQL (ignored on SQLite, which
    serialises writers); each claim is a conditional UPDATE whose row count proves it ours, so two
    workers never deliver the same row on either database. A claim older than the lease (a worker
    that died while sending) is due again.
    """
    now = utcnow()
    table = OutboxMessage.__table__
    due = sa.or_(
        sa.and_(table.c.status == OutboxStatus.PENDING.value, table.c.next_attempt_at <= now),
        sa.and_(table.c.status == OutboxStatus.SENDING.value, table.c.claimed_at < now - lease),
    )
    candidates = (
        sa.select(table.c.id, table.c.status, table.c.claimed_at)
        .where(due)
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = []
    for row in db.session.execute(candidates).all():
        result = db.session.execute(
            sa.update(table)
            .where(
                table.c.id == row.id,
                table.c.status == row.status,
                (table.c.claimed_at == row.claimed_at)
                if row.claimed_at is not None
                else table.c.claimed_at.is_(None),
            )
            .values(status=OutboxStatus.SENDING.value, claimed_by=worker, claimed_at=now)
        )
        if result.rowcount == 1:
            claimed.append(row.id)
    db.session.commit()
    return claimed


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def __iadd__(self, other: DeliveryReport) -> DeliveryReport:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        return self


def deliver_one(message_id: int, worker: str, max_attempts: int) -> DeliveryReport:
    """Deliver one claimed message outside any transaction, then record the outcome."""
    from consult.services.tickets import add_entry

    report = DeliveryReport()
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status != OutboxStatus.SENDING or message.claimed_by != worker:
        return report
    db.session.commit()  # end the read transaction: the channel may take seconds
    error = None
    permanent = False
    try:
        deliverer_for(message.channel)(message)
    except PermanentFailure as exc:
        error, permanent = str(exc) or "送信先が受け付けませんでした", True
    except TemporaryFailure as exc:
        error = str(exc) or "一時的な送信エラー"
    except Exception as exc:  # a bug in a deliverer must not stop the worker
        log.exception("deliverer crashed: outbox=%s channel=%s", message.id, message.channel)
        error = f"{type(exc).__name__}"
    message = db.session.get(OutboxMessage, message_id)
    message.attempts += 1
    message.claimed_by = None
    message.claimed_at = None
    ticket = db.session.get(Ticket, message.ticket_id) if message.ticket_id else None
    if error is None:
        message.status = OutboxStatus.DELIVERED
        message.delivered_at = utcnow()
        message.last_error = None
        report.delivered += 1
    elif permanent or message.attempts >= max_attempts:
        message.status = OutboxStatus.FAILED
        message.last_error = error[:2000]
        report.failed += 1
        if ticket is not None:
            add_entry(
                ticket,
                EntryKind.DELIVERY,
                body=f"送信に失敗しました：{error[:500]}",
                data={"outbox_id": message.id, "status": "failed"},
            )
    else:
        message.status = OutboxStatus.PENDING
        message.last_error = error[:2000]
        message.next_attempt_at = utcnow() + backoff(message.attempts)
        report.retried += 1
    db.session.commit()
    log.info(
        "outbox=%s channel=%s status=%s attempts=%s",
        message.id,
        message.channel,
        message.status.value,
        message.attempts,
    )
    return report


def run_once(
    *, max_attempts: int = 8, lease: timedelta = timedelta(minutes=5), batch: int = 50
) -> DeliveryReport:
    """Deliver everything due now, in batches; returns what happened."""
    worker = worker_name()
    total = DeliveryReport()
    while True:
        ids = claim_due(worker, batch, lease)
        if not ids:
            return total
        for message_id in ids:
            total += deliver_one(message_id, worker, max_attempts)


TASK_NAME = "outbox"


def worker_round() -> DeliveryReport:
    """The worker task: deliver what is due, with the limits from the settings."""
    from flask import current_app

    settings = current_app.config["MADOGUCHI"]
    return run_once(
        max_attempts=int(settings["OUTBOX_MAX_ATTEMPTS"]),
        lease=timedelta(seconds=int(settings["OUTBOX_LEASE_SECONDS"])),
    )


def retry(message: OutboxMessage) -> None:
    """An administrator asks for a failed message to be tried again."""
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()


def list_messages(status: str | None = None, limit: int = 200) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == OutboxStatus(status))
    return list(db.session.scalars(query))
