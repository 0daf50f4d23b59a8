"""LINE: contacts, the raw webhook deliveries, their events, media and self-link codes.

The raw body is stored before anything is processed, and each event once under LINE's
``webhookEventId`` (a unique constraint), so a redelivery or a crash loses and doubles nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.extensions import db
from consult.models import Citizen, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"


class MediaStatus(enum.StrEnum):
    PENDING = "pending"
    FETCHED = "fetched"
    FAILED = "failed"


class LineContact(db.Model):
    """A LINE user who talks to the centre's account. The user id is personal data, and so is
    the display name from the user's LINE profile (kept so that the desk's search finds a
    sender nobody has registered yet, and shown on the ticket page, whose view is audited).
    Both go with the contact: disposal and the disclosure bundle reach them through it."""

    __tablename__ = "line_contact"
    __table_args__ = (
        # The worker's next profiles to fetch: contacts never asked (or due again).
        sa.Index(
            "ix_line_contact_profile_due",
            "id",
            postgresql_where=sa.text("profile_checked_at IS NULL"),
            sqlite_where=sa.text("profile_checked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    citizen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("citizen.id"), index=True)
    following: Mapped[bool] = mapped_column(default=True)
    followed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unfollowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The automatic answer goes out on the very first message, then only out of hours.
    first_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest reply token (valid about a minute, usable once): the next answer may use it.
    reply_token: Mapped[str | None] = mapped_column(sa.String(64))
    reply_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The LINE profile's display name as LINE gave it (the user may change it: refreshed when
    # they write again after PROFILE_REFRESH); None until fetched or when LINE had none.
    display_name: Mapped[str | None] = mapped_column(sa.String(100))
    # When the worker last asked LINE for the profile; None: to be asked.
    profile_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    citizen: Mapped[Citizen | None] = relationship()

    def __repr__(self) -> str:
        return f"<LineContact {self.id} following={self.following}>"


class LineTicket(db.Model):
    """Which contact a LINE ticket belongs to (a ticket has at most one)."""

    __tablename__ = "line_ticket"
    __table_args__ = (sa.Index("ix_line_ticket_contact", "contact_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("line_contact.id"))

    ticket: Mapped[Ticket] = relationship()
    contact: Mapped[LineContact] = relationship()

    def __repr__(self) -> str:
        return f"<LineTicket {self.id}>"


class LineDelivery(db.Model):
    """One webhook request as LINE sent it: the exact body, kept before processing.

    The webhook writes this row only; the processor expands it into ``LineEvent`` rows and sets
    ``expanded_at`` in the same transaction.
    """

    __tablename__ = "line_delivery"
    __table_args__ = (
        sa.Index(
            "ix_line_delivery_pending",
            "id",
            postgresql_where=sa.text("expanded_at IS NULL"),
            sqlite_where=sa.text("expanded_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[str] = mapped_column(sa.Text)
    event_count: Mapped[int] = mapped_column(default=0)
    expanded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LineDelivery {self.id} events={self.event_count}>"


class LineEvent(db.Model):
    """One webhook event, stored once; processed in order within its chat by the worker."""

    __tablename__ = "line_event"
    __table_args__ = (
        sa.Index("ix_line_event_due", "status", "next_attempt_at"),
        sa.Index("ix_line_event_chat", "chat_key", "timestamp_ms", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_event_id: Mapped[str] = mapped_column(sa.String(80), unique=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("line_delivery.id"), index=True)
    # The source's user, group or room id: events of one chat are processed in order.
    chat_key: Mapped[str] = mapped_column(sa.String(64))
    event_type: Mapped[str] = mapped_column(sa.String(40))
    timestamp_ms: Mapped[int] = mapped_column(sa.BigInteger)
    is_redelivery: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # consult.services.queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<LineEvent {self.id} {self.event_type} {self.status}>"


class LineMedia(db.Model):
    """An image, video, audio or file a citizen sent; fetched from LINE by the worker.

    The stored file is the original: staff see only its converted form (無害化), the SafeFile
    row with source "line_media", which disposal must remove with it."""

    __tablename__ = "line_media"
    __table_args__ = (sa.Index("ix_line_media_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    message_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    size: Mapped[int | None]
    # Generated name under DATA_DIR/line/; never the sender's file name.
    stored_name: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[MediaStatus] = mapped_column(_enum(MediaStatus), default=MediaStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # consult.services.queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<LineMedia {self.id} {self.kind} {self.status}>"


class LineRelayContent(db.Model):
    """The content of one image, video, audio or file message, fetched from LINE's content API
    by the relay (the core, in LGWAN, cannot reach it): channels.line.transfer.

    On the relay: one row per media message of a stored webhook body, fetched by the relay's
    worker; the body waits until its contents are fetched (or given up), then crosses with them,
    and the row and its file are deleted once the core has taken the body. With
    MADOGUCHI_SANITISE_IN=relay the relay converts the file first (無害化) and only the pages
    and the outcome (`outcome`) cross, never the original. On the core: what arrived with a
    body, until the core's media task gives it to its LineMedia row (then deleted).

    Personal data: the file (DATA_DIR/relay/line/ on the relay, DATA_DIR/line/ or the safe
    pages on the core) and its name. Rows live for minutes; disposal reaches the files through
    channels.line.disposal.orphans, and a row left behind is removed by its housekeeping."""

    __tablename__ = "line_relay_content"
    __table_args__ = (sa.Index("ix_line_relay_content_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    delivery_id: Mapped[int | None] = mapped_column(index=True)  # the relay's line_delivery
    kind: Mapped[str] = mapped_column(sa.String(10))
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    size: Mapped[int | None]
    # Generated name; never the sender's file name. Converted pages: the safe folder's name.
    stored_name: Mapped[str | None] = mapped_column(sa.String(64))
    outcome: Mapped[dict | None] = mapped_column(sa.JSON)  # sanitise.outcome_to_dict
    status: Mapped[MediaStatus] = mapped_column(_enum(MediaStatus), default=MediaStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # consult.services.queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<LineRelayContent {self.id} {self.kind} {self.status}>"


class LineLinkCode(db.Model):
    """A one-time code the centre gives a citizen to link their LINE to a ticket's citizen."""

    __tablename__ = "line_link_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<LineLinkCode {self.id} used={self.used_at is not None}>"


class SubscriptionTopic(enum.StrEnum):
    DISTRICT = "district"
    INTEREST = "interest"
    AGE = "age"  # the child's age band, for child-care notices


class LineSubscription(db.Model):
    """One consent of a LINE contact to one kind of notice: a district, an interest, a child's
    age band. Each is given and withdrawn by the citizen with one tap (a postback) and is its
    own row, with the time it was given. Tied to the contact: personal data as the contact is;
    it goes when the contact's row goes (disposal, ON DELETE CASCADE), and the disclosure bundle
    lists it with the contact."""

    __tablename__ = "line_subscription"
    __table_args__ = (
        sa.UniqueConstraint("contact_id", "topic", "value"),
        sa.Index("ix_line_subscription_segment", "topic", "value", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("line_contact.id", ondelete="CASCADE"))
    topic: Mapped[SubscriptionTopic] = mapped_column(_enum(SubscriptionTopic))
    value: Mapped[str] = mapped_column(sa.String(40))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<LineSubscription {self.contact_id} {self.topic}={self.value}>"


class NoticeStatus(enum.StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"


class LineNotice(db.Model):
    """A notice to the contacts of one segment, sent by multicast in batches of 500 through the
    outbox. It names no one: the recipients are chosen when it is queued (contact row ids in
    the outbox rows' headers) and checked again when each batch is sent, so a citizen who opted
    out in between gets nothing."""

    __tablename__ = "line_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)
    interest: Mapped[str] = mapped_column(sa.String(40))
    district: Mapped[str | None] = mapped_column(sa.String(40))
    age_band: Mapped[str | None] = mapped_column(sa.String(40))
    status: Mapped[NoticeStatus] = mapped_column(_enum(NoticeStatus), default=NoticeStatus.DRAFT)
    # The alert it was prepared from (faq.alerts), when it was: an id, no foreign key across
    # packages.
    alert_id: Mapped[int | None] = mapped_column(index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipient_count: Mapped[int] = mapped_column(default=0)
    batch_count: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<LineNotice {self.id} {self.status}>"
