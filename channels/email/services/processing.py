"""A stored mail put on a ticket: threading, new tickets, attachments, automatic replies.

`put_on_ticket` does one mail's work in the caller's transaction (it flushes, never commits);
the jobs in channels.email.tasks claim mail through the `INBOUND` queue, commit, and quarantine
a mail that fails (`quarantine`) with the Japanese reason shown to administrators.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from channels.email import parse as mailparse
from channels.email.models import (
    EmailThread,
    InboundMail,
    InboundStatus,
    MailAttachment,
    ThreadMessage,
)
from channels.email.services.bounces import handle_bounce
from channels.email.services.common import log
from channels.email.services.outgoing import send_ack
from channels.email.services.storage import chunks, data_dir, read_raw, write_file
from consult import signals
from consult.extensions import db
from consult.models import (
    Channel,
    Citizen,
    CitizenEmail,
    EntryKind,
    Ticket,
)
from consult.services import (
    merge,
    numbering,
    queue,
    safe_files,
    tickets,
)
from consult.services.actor import SYSTEM
from consult.services.errors import ValidationFailed
from consult.services.normalize import normalize_email
from consult.timeutil import utcnow

NUMBER_IN_SUBJECT = re.compile(r"\[#(\d{4}-\d{6})\]")
# Senders that never read an answer (RFC 3834 section 2: automatic responders' own addresses).
AUTO_SENDER = re.compile(r"^(no-?reply|do-?not-?reply|donotreply)([-+._].*)?$", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"(Undeliver|Undelivered|Returned mail|Delivery Status Notification|Mail Delivery|"
    r"DELIVERY FAILURE|failure notice|Mail System Error|配信できません|配送失敗|不達|"
    r"メールエラー|エラー通知|送信できません)",
    re.IGNORECASE,
)


class Quarantine(Exception):
    """Processing cannot go on; the Japanese reason is shown to administrators."""


def _describe(inbound: InboundMail) -> str:
    return f"{inbound.source_label}で受信したメール（{inbound.size:,}バイト）"


def _put_back(inbound: InboundMail) -> None:
    inbound.status = InboundStatus.PENDING


# Inbound mail as a work queue (consult.services.queue): a quarantined mail is its failed state.
INBOUND = queue.QueueSpec(
    name="email-inbound",
    label="受信メールの取込",
    model=InboundMail,
    pending=InboundStatus.PENDING,
    claimed=InboundStatus.PENDING,
    failed=InboundStatus.QUARANTINED,
    describe=_describe,
    time_column="received_at",
    due_column=None,
    error_column="reason",
    retry=_put_back,
)


def take_quarantined(ids: list[int]) -> None:
    """An administrator's retry of quarantined mail: claim it in the caller's transaction (the
    worker never takes quarantined mail, so only another retry could hold it)."""
    table = InboundMail.__table__
    db.session.execute(
        sa.update(table)
        .where(
            table.c.id.in_(ids),
            table.c.status == InboundStatus.QUARANTINED.value,
            table.c.claimed_by.is_(None),
        )
        .values(claimed_by=queue.worker_id(), claimed_at=utcnow())
    )


def quarantine(inbound: InboundMail, exc: BaseException) -> None:
    if isinstance(exc, Quarantine | ValidationFailed):
        reason = str(exc)
    else:
        log.error("email processing failed: inbound=%s", inbound.id, exc_info=exc)
        reason = f"処理中に予期しないエラーが発生しました（{type(exc).__name__}）。"
    inbound.status = InboundStatus.QUARANTINED
    inbound.reason = reason
    inbound.attempts += 1
    inbound.processed_at = utcnow()
    queue.release(inbound)
    log.info("email quarantined: inbound=%s", inbound.id)


class Refused(Quarantine):
    """A quarantine decided before anything was written for the message."""


def prepare(inbound: InboundMail, config: dict):
    """Read and parse the stored bytes: no database work, so it runs before any lock is taken."""
    if inbound.size > config["MAIL_MAX_MESSAGE_BYTES"]:
        limit = config["MAIL_MAX_MESSAGE_BYTES"] // 2**20
        raise Refused(f"メールが大きすぎます（上限 {limit} MB）。原本は保存されています。")
    try:
        raw = read_raw(inbound)
    except OSError as exc:
        raise Refused("保存したメールの原本を読み込めません。") from exc
    try:
        parsed = mailparse.parse(
            raw,
            max_parts=config["MAIL_MAX_PARTS"],
            max_attachment_bytes=config["MAIL_MAX_ATTACHMENT_BYTES"],
        )
    except Exception as exc:
        log.error("email parsing failed: inbound=%s", inbound.id, exc_info=exc)
        raise Refused(
            f"メールを解析できませんでした（{type(exc).__name__}）。原本は保存されています。"
        ) from exc
    return raw, parsed


class Lookups:
    """What processing looks up, asked once for a whole batch instead of once per message.

    Without `preload` every question goes to the database, as for a single message. Answers
    learnt while processing a message (its Message-ID now threads to its ticket) count only once
    its savepoint is released (`settle`); a rolled-back message's are dropped (`discard`).
    """

    def __init__(self) -> None:
        # message_id: (order, ticket id, or the Ticket itself when learnt before its flush)
        self.threads: dict[str, tuple[int, int | Ticket]] | None = None
        self.citizens: dict[str, Citizen | None] | None = None
        self.tickets: dict[int, Ticket] = {}
        self._pending: dict[str, tuple[int, int | Ticket]] = {}
        self._order = 2**62
        self.numbers: numbering.Reservation | None = None

    def preload(self, parsed_mails: list) -> None:
        ids, addresses = set(), set()
        for parsed in parsed_mails:
            ids.update(m[:255] for m in (*parsed.in_reply_to, *parsed.references))
            if parsed.message_id:
                ids.add(parsed.message_id[:255])
            if parsed.from_address:
                addresses.add(normalize_email(parsed.from_address) or parsed.from_address)
        self.threads = {}
        for chunk in chunks(sorted(ids)):
            for row in db.session.execute(
                sa.select(ThreadMessage.id, ThreadMessage.message_id, ThreadMessage.ticket_id)
                .where(ThreadMessage.message_id.in_(chunk))
                .order_by(ThreadMessage.id)
            ):
                self.threads[row.message_id] = (row.id, row.ticket_id)
        ticket_ids = sorted({ticket_id for _order, ticket_id in self.threads.values()})
        for chunk in chunks(ticket_ids):
            for ticket in db.session.scalars(sa.select(Ticket).where(Ticket.id.in_(chunk))):
                self.tickets[ticket.id] = ticket
        self.citizens = dict.fromkeys(addresses)
        for chunk in chunks(sorted(addresses)):
            for address, citizen in db.session.execute(
                sa.select(CitizenEmail.address, Citizen)
                .join(Citizen, Citizen.id == CitizenEmail.citizen_id)
                .where(CitizenEmail.address.in_(chunk))
                .order_by(Citizen.id.desc())
            ):
                self.citizens[address] = citizen  # the lowest id wins, as for one message

    def thread_ticket(self, ids: list[str]) -> Ticket | None:
        if self.threads is None:
            ticket_id = db.session.scalar(
                sa.select(ThreadMessage.ticket_id)
                .where(ThreadMessage.message_id.in_(ids))
                .order_by(ThreadMessage.id.desc())
                .limit(1)
            )
            return db.session.get(Ticket, ticket_id) if ticket_id else None
        known = [self.threads[m[:255]] for m in ids if m[:255] in self.threads]
        if not known:
            return None
        found = max(known, key=lambda item: item[0])[1]
        if isinstance(found, Ticket):
            return found
        return self.tickets.get(found) or db.session.get(Ticket, found)

    def citizen(self, address: str) -> Citizen | None:
        if self.citizens is not None and address in self.citizens:
            return self.citizens[address]
        return db.session.scalar(
            sa.select(Citizen)
            .join(CitizenEmail)
            .where(CitizenEmail.address == address)
            .order_by(Citizen.id)
            .limit(1)
        )

    def knows_message(self, message_id: str) -> bool:
        if self.threads is None:
            return (
                db.session.scalar(
                    sa.select(ThreadMessage.id).where(ThreadMessage.message_id == message_id)
                )
                is not None
            )
        return message_id in self.threads or message_id in self._pending

    def learn(self, message_id: str, ticket: Ticket) -> None:
        self._order += 1
        self._pending[message_id] = (self._order, ticket)

    def settle(self) -> None:
        if self.threads is not None:
            self.threads.update(self._pending)
        self._pending = {}

    def discard(self) -> None:
        self._pending = {}


def put_on_ticket(inbound: InboundMail, raw: bytes, parsed, config: dict, lookups: Lookups) -> None:
    inbound.warnings = parsed.warnings
    if _is_bounce(parsed):
        inbound.kind = "bounce"
        handle_bounce(inbound, parsed, raw)
        return
    if not parsed.from_address:
        raise Refused("差出人（From）のメールアドレスがありません。")
    if _is_auto_reply(parsed):
        inbound.kind = "auto_reply"
        ticket = _thread_ticket(parsed, lookups)
        if ticket is None:
            inbound.status = InboundStatus.IGNORED
            inbound.reason = "自動応答のため相談票を作成しませんでした。"
            return
        _add_message(inbound, ticket, parsed, lookups, auto_reply=True)
        return
    ticket = _thread_ticket(parsed, lookups)
    if ticket is not None:
        inbound.kind = "reply"
        _add_message(inbound, ticket, parsed, lookups)
        return
    inbound.kind = "new"
    # No autoflush: the number allocation would otherwise flush this row's first changes as an
    # UPDATE of its own, and the end of processing would update it a second time.
    with db.session.no_autoflush:
        ticket = _new_ticket(inbound, parsed, lookups)
    if config["MAIL_AUTO_ACK"]:
        db.session.flush()  # the acknowledgement reads the thread back by the ticket's id
        send_ack(ticket)


def _is_auto_reply(parsed: mailparse.ParsedMail) -> bool:
    """Told by the headers automatic responders set (RFC 3834) and by their sender addresses,
    never by words in the subject: a citizen writing 「予約の自動返信メールが届きません」 is a
    citizen with a question (issue 14). Where unsure, the mail makes a ticket."""
    headers = parsed.headers
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return True
    if headers.get("precedence", "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return True
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    local = (parsed.from_address or "").split("@")[0]
    return bool(AUTO_SENDER.match(local))


def _is_bounce(parsed: mailparse.ParsedMail) -> bool:
    if parsed.message is not None and parsed.content_type == "multipart/report":
        return True
    local = (parsed.from_address or "").split("@")[0]
    if local in ("mailer-daemon", "postmaster") or parsed.headers.get("return-path", "") == "<>":
        return True
    return bool(
        parsed.report_parts
        and BOUNCE_SUBJECT.search(parsed.subject or "")
        and "x-failed-recipients" in parsed.headers
    ) or bool(parsed.headers.get("x-failed-recipients"))


def _thread_ticket(parsed: mailparse.ParsedMail, lookups: Lookups) -> Ticket | None:
    """In-Reply-To and References against the Message-IDs we know; the subject's number last.

    The number in the subject counts only for the address the ticket corresponds with, so that
    a stranger cannot add mail to someone else's case by typing a number. A ticket merged into
    another gives way to its survivor: the citizen answers the old thread, the case goes on in
    the new one.
    """
    ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    if ids:
        ticket = lookups.thread_ticket(ids)
        if ticket is not None:
            return merge.resolve_ticket(ticket)
    match = NUMBER_IN_SUBJECT.search(parsed.subject or "")
    if match and parsed.from_address:
        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == match.group(1)))
        if ticket is not None and _corresponds_with(ticket, parsed.from_address):
            return merge.resolve_ticket(ticket)
    return None


def _corresponds_with(ticket: Ticket, address: str) -> bool:
    thread = db.session.get(EmailThread, ticket.id)
    if thread is not None and thread.address == address:
        return True
    if ticket.citizen_id:
        return bool(
            db.session.scalar(
                sa.select(CitizenEmail.id).where(
                    CitizenEmail.citizen_id == ticket.citizen_id, CitizenEmail.address == address
                )
            )
        )
    return False


def _remember(message_id: str | None, ticket: Ticket, inbound: InboundMail, lookups) -> None:
    if not message_id:
        return
    message_id = message_id[:255]
    if not lookups.knows_message(message_id):
        db.session.add(ThreadMessage(message_id=message_id, ticket=ticket, inbound_id=inbound.id))
        lookups.learn(message_id, ticket)


def _store_attachments(inbound: InboundMail, ticket: Ticket, parsed) -> list[dict]:
    """Each attachment stored apart and queued for 無害化; one the relay converted already
    (MADOGUCHI_SANITISE_IN=relay: its bytes never crossed) takes the relay's outcome."""
    from consult.services import sanitise

    relayed = {entry["n"]: entry for entry in inbound.relay_files or []}
    listed = []
    for item in parsed.attachments:
        entry = relayed.get(item.relay_file) if item.relay_file is not None else None
        if item.relay_file is not None and entry is None:
            continue  # a mark without the relay's file (a sender's forgery): nothing to keep
        name = f"{uuid.uuid4().hex}"
        if entry is None:
            write_file(data_dir() / "attachments" / name[:2] / name, item.data)
        row = MailAttachment(
            inbound_id=inbound.id,
            ticket=ticket,
            filename=item.filename[:255],
            content_type=(entry["content_type"] if entry else item.content_type)[:127],
            size=entry["size"] if entry else len(item.data),
            inline=item.inline,
            storage_name=f"{name[:2]}/{name}",
        )
        db.session.add(row)
        db.session.flush()
        if entry is None:
            safe = safe_files.register(
                ticket,
                source="email_attachment",
                source_id=row.id,
                original=data_dir() / "attachments" / row.storage_name,
                filename=row.filename,
                claimed_type=row.content_type,
                size=row.size,
            )
        else:
            safe = safe_files.register_converted(
                ticket,
                source="email_attachment",
                source_id=row.id,
                filename=row.filename,
                claimed_type=row.content_type,
                size=row.size,
                outcome=sanitise.outcome_from_dict(entry["outcome"]),
                stored_name=entry.get("stored_name"),
            )
        listed.append(
            {"id": row.id, "filename": row.filename, "size": row.size, "safe_file": safe.id}
        )
    return listed


def _add_message(inbound, ticket: Ticket, parsed, lookups, *, auto_reply=False, at=None):
    attachments = _store_attachments(inbound, ticket, parsed)
    tickets.add_entry(
        ticket,
        EntryKind.MESSAGE_IN,
        body=parsed.text or "（本文なし）",
        data={
            "channel": "email",
            "inbound_id": inbound.id,
            "subject": parsed.subject,
            "from_name": parsed.from_name,
            "quoted": parsed.quoted,
            "attachments": attachments,
            "omitted": parsed.omitted,
            "warnings": parsed.warnings,
            "auto_reply": auto_reply,
        },
        at=at,
    )
    _remember(parsed.message_id, ticket, inbound, lookups)
    inbound.ticket = ticket
    inbound.status = InboundStatus.PROCESSED
    inbound.reason = None
    if not auto_reply and (parsed.text or parsed.subject):
        signals.message_received.send(
            ticket, text=f"{parsed.subject or ''}\n{parsed.text or ''}", at=at or utcnow()
        )


def _new_ticket(inbound: InboundMail, parsed, lookups: Lookups) -> Ticket:
    address = normalize_email(parsed.from_address) or parsed.from_address
    citizen = lookups.citizen(address)
    subject = (parsed.subject or "").strip()[: tickets.MAX_SUBJECT] or "（件名なし）"
    ticket = tickets.create_ticket(
        SYSTEM,
        channel=Channel.EMAIL,
        subject=subject,
        citizen=citizen,
        flush=False,
        numbers=lookups.numbers,
    )
    db.session.add(EmailThread(ticket=ticket, address=address, sender_name=parsed.from_name[:120]))
    _add_message(inbound, ticket, parsed, lookups, at=ticket.created_at)
    return ticket
