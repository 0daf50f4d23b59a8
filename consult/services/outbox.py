"""The outbox: messages written with the change that caused them, delivered later by the worker.

Channels declare a deliverer in their plugin (consult.plugins.Channel), so consult never imports a
channel. A deliverer raises TemporaryFailure (retried with back-off) or PermanentFailure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.services import queue
from consult.timeline import Delivery, DeliveryStatus
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
    from consult.transfer import services as transfer

    if transfer.role() == "core":
        # The core reaches neither LINE nor the SMTP server: the relay delivers.
        return transfer.hand_to_relay
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
    """Add a message in the caller's transaction; nothing is sent until that commits.

    A protected person's whereabouts (支援措置) never leave in a message body or subject, to
    whomever it goes (a department's mail, an external body, a reply quoting the case)."""
    from consult.services import protection

    secrets = protection.all_protected_secrets()
    if secrets:
        body = secrets.scrub(body)
        subject = secrets.scrub(subject) if subject else subject
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


backoff = queue.backoff  # kept here: channels import it from the outbox


def worker_name() -> str:
    return queue.worker_id()


def _describe(message: OutboxMessage) -> str:
    """The channel and the ticket's number: never the recipient or the text."""
    from consult import plugins

    channel = plugins.registry().channels.get(message.channel)
    label = channel.label if channel is not None else message.channel
    ticket = db.session.get(Ticket, message.ticket_id) if message.ticket_id else None
    return f"{label}の送信" + (f"（相談番号 {ticket.number}）" if ticket is not None else "")


QUEUE = queue.QueueSpec(
    name="outbox",
    label="送信",
    model=OutboxMessage,
    pending=OutboxStatus.PENDING,
    claimed=OutboxStatus.SENDING,
    failed=OutboxStatus.FAILED,
    describe=_describe,
)


def claim_due(
    worker: str,
    limit: int,
    channels: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
) -> list[int]:
    """Claim due messages of some channels (a lane's) for this worker and commit the claims.

    Through the one work queue (consult.services.queue): exclusive across processes, and a
    message claimed by a worker that stopped beating is due again within seconds.
    """
    table = OutboxMessage.__table__
    where = []
    if channels is not None:
        where.append(table.c.channel.in_(channels))
    if exclude:
        where.append(table.c.channel.not_in(exclude))
    return queue.claim(
        QUEUE,
        limit,
        holder=worker,
        where=where,
        order_by=(table.c.next_attempt_at, table.c.id),
    )


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


MAYBE_SENT = "送信済みの可能性があります（前回の送信が途中で中断されたため、同じ内容を再送します）"


def _record_attempt(message_id: int, worker: str) -> OutboxMessage | None:
    """Count the attempt and note that the message is in the channel's hands, and commit that
    before anything is sent: a worker killed while sending leaves `handed_at` behind, and the
    one that takes the message back knows (and says on the timeline) that it may be a resend.
    The e-mail keeps its Message-ID and a LINE push its retry key, so the receiver can drop a
    duplicate."""
    from consult.services.tickets import add_entry

    if not queue.hold(QUEUE, message_id, worker):
        db.session.commit()
        return None
    message = db.session.get(OutboxMessage, message_id)
    if message.handed_at is not None:
        log.warning("outbox=%s: an earlier attempt was interrupted; sending again", message.id)
        message.last_error = MAYBE_SENT
        ticket = db.session.get(Ticket, message.ticket_id) if message.ticket_id else None
        if ticket is not None:
            add_entry(
                ticket,
                EntryKind.DELIVERY,
                body=MAYBE_SENT,
                data=Delivery(DeliveryStatus.RESENDING, outbox_id=message.id),
            )
    message.attempts += 1
    message.handed_at = utcnow()
    db.session.commit()
    # Loaded, then detached and the transaction ended: the deliverer reads the row while the
    # channel takes its time (an SMTP server may wait SMTP_TIMEOUT_SECONDS), and a read of an
    # expired row would open a transaction, which on SQLite holds the write lock for everyone.
    message = db.session.get(OutboxMessage, message_id)
    db.session.expunge(message)
    db.session.commit()
    return message


def deliver_one(message_id: int, worker: str, max_attempts: int) -> DeliveryReport:
    """Deliver one claimed message outside any transaction, then record the outcome."""
    report = DeliveryReport()
    message = _record_attempt(message_id, worker)
    if message is None:
        return report
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
    db.session.rollback()  # whatever the deliverer left open
    if not queue.hold(QUEUE, message_id, worker):
        # Taken back while we were sending (this process was thought dead): the other holder
        # records the outcome; it knows the message may have been sent (handed_at).
        db.session.rollback()
        log.warning("outbox=%s: claim lost while sending", message_id)
        return report
    message = db.session.get(OutboxMessage, message_id)
    message.handed_at = None
    if error is None:
        queue.release(message)
        message.status = OutboxStatus.DELIVERED
        message.delivered_at = utcnow()
        message.last_error = None
        report.delivered += 1
    else:
        if queue.settle_failure(QUEUE, message, error, max_attempts, count=False, final=permanent):
            report.failed += 1
            note_failure(message, error)
        else:
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


def note_failure(message: OutboxMessage, error: str) -> None:
    """Say on the message's ticket that it was given up, and why (the ticket page shows it).
    Also for a message the relay failed to deliver when split (consult.transfer.services)."""
    from consult.services.tickets import add_entry

    ticket = db.session.get(Ticket, message.ticket_id) if message.ticket_id else None
    if ticket is not None:
        add_entry(
            ticket,
            EntryKind.DELIVERY,
            body=f"送信に失敗しました：{error[:500]}",
            data=Delivery(DeliveryStatus.FAILED, outbox_id=message.id),
        )


def run_once(
    *,
    max_attempts: int = 8,
    batch: int = 10,
    channels: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
) -> DeliveryReport:
    """Deliver everything due now (of the given channels), in small batches.

    Small: a claimed message waits for the ones before it in the batch, and no other worker
    may take it while this one is alive.
    """
    worker = worker_name()
    total = DeliveryReport()
    while True:
        ids = claim_due(worker, batch, channels, exclude)
        if not ids:
            return total
        for message_id in ids:
            total += deliver_one(message_id, worker, max_attempts)


TASK_NAME = "outbox"


def worker_round(
    channels: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()
) -> DeliveryReport:
    """The worker task: deliver what is due, with the limits from the settings."""
    from flask import current_app

    settings = current_app.config["MADOGUCHI"]
    return run_once(
        max_attempts=int(settings["OUTBOX_MAX_ATTEMPTS"]), channels=channels, exclude=exclude
    )


def worker_tasks(registry) -> list:
    """One outbox task per channel lane (mail out, LINE out …), claiming only its channels' rows,
    so an SMTP server that hangs never holds up LINE; and one for channels without a lane."""
    from consult import plugins

    lanes: dict[str, list[str]] = {}
    for channel in registry.channels.values():
        if channel.deliver is not None:
            lanes.setdefault(channel.lane or channel.name, []).append(channel.name)
    tasks = [
        plugins.WorkerTask(
            f"{TASK_NAME}.{lane}", partial(worker_round, channels=tuple(names)), lane=lane
        )
        for lane, names in sorted(lanes.items())
    ]
    every = tuple(name for names in lanes.values() for name in names)
    tasks.append(plugins.WorkerTask(TASK_NAME, partial(worker_round, exclude=every), lane="outbox"))
    return tasks


def retry(message: OutboxMessage) -> None:
    """An administrator asks for a failed message to be tried again."""
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()
    queue.release(message)


def list_messages(status: str | None = None, limit: int = 200) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == OutboxStatus(status))
    return list(db.session.scalars(query))
