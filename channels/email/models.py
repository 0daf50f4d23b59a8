"""The email channel's data: raw inbound mail, each thread's Message-IDs, attachments, templates."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class InboundStatus(LabelledEnum):
    # stored, not processed yet (or the process died while processing)
    PENDING = "pending", "未処理"
    PROCESSED = "processed", "取込済み"  # on a ticket
    IGNORED = "ignored", "対象外"  # an auto-reply or a bounce that refers to nothing of ours
    # processing failed: kept with the reason for an administrator
    QUARANTINED = "quarantined", "隔離中"


class InboundMail(db.Model):
    """One received message, stored before it is parsed; its bytes live under DATA_DIR."""

    __tablename__ = "email_inbound"
    __table_args__ = (sa.Index("ix_email_inbound_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A digest of Message-ID, sender and content (msg:…), or sha256 of the bytes when there is no
    # Message-ID (sha:…): the same mail twice is one row, two mails sharing a Message-ID are two.
    # Rows stored before issue 14 keep their old key (mid:<Message-ID>).
    dedupe_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_name: Mapped[str] = mapped_column(sa.String(120))
    size: Mapped[int]
    source: Mapped[str] = mapped_column(sa.String(20), default="stdin")
    status: Mapped[InboundStatus] = mapped_column(
        _enum(InboundStatus), default=InboundStatus.PENDING
    )
    kind: Mapped[str | None] = mapped_column(sa.String(20))  # new, reply, auto_reply, bounce
    reason: Mapped[str | None] = mapped_column(sa.Text)
    warnings: Mapped[list] = mapped_column(sa.JSON, default=list)
    attempts: Mapped[int] = mapped_column(default=0)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who is processing it (consult.services.queue): `mail ingest`, `mail fetch` or a worker.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # MADOGUCHI_SANITISE_IN=relay: the attachments the relay converted (channels.email.transfer).
    # On the relay, set once converted (the mail then may cross, without the attachments'
    # bytes); on the core, their outcomes and the folders of their pages, until processed.
    # Personal data (file names, extracted text): gone with the row.
    relay_files: Mapped[list | None] = mapped_column(sa.JSON)

    ticket: Mapped[Ticket | None] = relationship()

    @property
    def status_label(self) -> str:
        return InboundStatus(self.status).label

    @property
    def source_label(self) -> str:
        return {"stdin": "MTA連携", "imap": "IMAP"}.get(self.source, self.source)

    def __repr__(self) -> str:
        return f"<InboundMail {self.id} {self.status}>"


class ThreadMessage(db.Model):
    """A Message-ID known to belong to a ticket: every mail the centre sent and received."""

    __tablename__ = "email_thread_message"
    __table_args__ = (sa.Index("ix_email_thread_message_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    outgoing: Mapped[bool] = mapped_column(default=False)
    outbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox_message.id"))
    inbound_id: Mapped[int | None] = mapped_column(sa.ForeignKey("email_inbound.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # For rows added before their ticket is flushed (a batch of inbound mail flushes once).
    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<ThreadMessage {self.id} ticket={self.ticket_id}>"


class EmailThread(db.Model):
    """Per email ticket: where replies go, and whether the acknowledgement went out (once)."""

    __tablename__ = "email_thread"

    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(254))
    sender_name: Mapped[str | None] = mapped_column(sa.String(120))
    ack_outbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outbox_message.id"))

    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<EmailThread ticket={self.ticket_id}>"


class MailAttachment(db.Model):
    """An attachment or inline image of an inbound mail, stored under a generated name.

    The stored file is the original: staff see only its converted form (無害化), the SafeFile
    row with source "email_attachment", which disposal must remove with it."""

    __tablename__ = "email_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(sa.ForeignKey("email_inbound.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(127))
    size: Mapped[int]
    inline: Mapped[bool] = mapped_column(default=False)
    storage_name: Mapped[str] = mapped_column(sa.String(120))

    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<MailAttachment {self.id}>"


class ReplyTemplate(db.Model):
    """A saved reply (定型文) the consultants start from."""

    __tablename__ = "email_reply_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    body: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<ReplyTemplate {self.id}>"


class ImapState(db.Model):
    """How far a mailbox has been read: UIDVALIDITY and the last UID handled."""

    __tablename__ = "email_imap_state"

    mailbox: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<ImapState last_uid={self.last_uid}>"


class MailPollStatus(db.Model):
    """How the last IMAP polls went, for the administrators' page: a poller that keeps failing
    (a changed password, an expired certificate) must not go unnoticed while mail waits."""

    __tablename__ = "email_poll_status"

    source: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures_in_row: Mapped[int] = mapped_column(sa.Integer, default=0)

    @property
    def failing(self) -> bool:
        return self.failures_in_row > 0
