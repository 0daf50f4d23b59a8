"""The kernel's data: staff, departments, categories, citizens, tickets, timeline, outbox, audit."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.extensions import db
from consult.timeutil import UTCDateTime, utcnow


class Role(enum.StrEnum):
    CONSULTANT = "consultant"
    SUPERVISOR = "supervisor"
    OFFICER = "officer"
    SUPPORT = "support"
    ADMIN = "admin"


ROLE_LABELS = {
    Role.CONSULTANT: "相談員",
    Role.SUPERVISOR: "センター責任者",
    Role.OFFICER: "担当課職員",
    Role.SUPPORT: "安心対応サポート室",
    Role.ADMIN: "管理者",
}


class Channel(enum.StrEnum):
    COUNTER = "counter"
    PHONE = "phone"
    EMAIL = "email"
    LINE = "line"
    BOOKING = "booking"


CHANNEL_LABELS = {
    Channel.COUNTER: "窓口",
    Channel.PHONE: "電話",
    Channel.EMAIL: "メール",
    Channel.LINE: "LINE",
    Channel.BOOKING: "予約",
}


class Status(enum.StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    HANDED_OFF = "handed_off"
    AWAITING_REPLY = "awaiting_reply"
    RESOLVED = "resolved"
    CLOSED = "closed"


STATUS_LABELS = {
    Status.RECEIVED: "受付",
    Status.IN_PROGRESS: "対応中",
    Status.HANDED_OFF: "引継中",
    Status.AWAITING_REPLY: "回答待ち",
    Status.RESOLVED: "解決",
    Status.CLOSED: "完了",
}


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


PRIORITY_LABELS = {
    Priority.LOW: "低",
    Priority.NORMAL: "通常",
    Priority.HIGH: "高",
    Priority.URGENT: "至急",
}


class EntryKind(enum.StrEnum):
    NOTE = "note"
    MESSAGE_IN = "message_in"
    MESSAGE_OUT = "message_out"
    STATUS_CHANGE = "status_change"
    ASSIGNMENT = "assignment"
    CITIZEN_LINK = "citizen_link"
    SESSION = "session"
    DELIVERY = "delivery"
    HANDOFF = "handoff"


ENTRY_LABELS = {
    EntryKind.NOTE: "メモ",
    EntryKind.MESSAGE_IN: "受信",
    EntryKind.MESSAGE_OUT: "送信",
    EntryKind.STATUS_CHANGE: "状態変更",
    EntryKind.ASSIGNMENT: "担当者変更",
    EntryKind.CITIZEN_LINK: "相談者",
    EntryKind.SESSION: "対応時間",
    EntryKind.DELIVERY: "送信結果",
    EntryKind.HANDOFF: "引継ぎ",
}


def _enum(cls: type[enum.StrEnum], length: int = 20) -> sa.Enum:
    # Stored as plain strings with a CHECK, so adding a value is an ordinary migration.
    return sa.Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
        name=cls.__name__.lower(),
    )


class Department(db.Model):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    parent_name: Mapped[str | None] = mapped_column(sa.String(120))
    is_external: Mapped[bool] = mapped_column(default=False)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<Department {self.id} {self.code}>"


class Category(db.Model):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self) -> str:
        return f"<Category {self.id} {self.code}>"


class Staff(UserMixin, db.Model):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(64), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(80))
    # What citizens see: the surname only, in hiragana and romaji, e.g. 「やまだ / Yamada」.
    display_name: Mapped[str] = mapped_column(sa.String(80))
    role: Mapped[Role] = mapped_column(_enum(Role))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department | None] = relationship()

    # Set by the login service so Flask-Login stores the server-side session's token.
    session_token = None

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.active

    def has_role(self, *roles: Role | str) -> bool:
        return self.role in roles

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def __repr__(self) -> str:
        return f"<Staff {self.id} {self.role}>"


class StaffSession(db.Model):
    """A server-side session: logout, deactivation and password resets end it for real."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(sa.String(20))
    address: Mapped[str | None] = mapped_column(sa.String(64))

    staff: Mapped[Staff] = relationship()

    def __repr__(self) -> str:
        return f"<StaffSession {self.id} ended={self.ended_at is not None}>"


class LoginAttempt(db.Model):
    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_login_at", "login", "at"),
        sa.Index("ix_login_attempt_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(64))
    address: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    success: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<LoginAttempt {self.id} success={self.success}>"


class Citizen(db.Model):
    __tablename__ = "citizen"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(80))
    kana: Mapped[str | None] = mapped_column(sa.String(80))
    # Folded forms (NFKC, no spaces, katakana→hiragana) for finding the same person again.
    name_key: Mapped[str | None] = mapped_column(sa.String(80), index=True)
    kana_key: Mapped[str | None] = mapped_column(sa.String(80), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    phones: Mapped[list[CitizenPhone]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", order_by="CitizenPhone.id"
    )
    emails: Mapped[list[CitizenEmail]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", order_by="CitizenEmail.id"
    )

    def __repr__(self) -> str:
        return f"<Citizen {self.id}>"


class CitizenPhone(db.Model):
    __tablename__ = "citizen_phone"
    __table_args__ = (sa.UniqueConstraint("citizen_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(20), index=True)

    citizen: Mapped[Citizen] = relationship(back_populates="phones")

    def __repr__(self) -> str:
        return f"<CitizenPhone {self.id}>"


class CitizenEmail(db.Model):
    __tablename__ = "citizen_email"
    __table_args__ = (sa.UniqueConstraint("citizen_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(254), index=True)

    citizen: Mapped[Citizen] = relationship(back_populates="emails")

    def __repr__(self) -> str:
        return f"<CitizenEmail {self.id}>"


class NumberSequence(db.Model):
    """Gapless counters (ticket numbers per fiscal year, reception numbers per day)."""

    __tablename__ = "number_sequence"

    name: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    last_value: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<NumberSequence {self.name} {self.key} {self.last_value}>"


class Ticket(db.Model):
    __tablename__ = "ticket"
    __table_args__ = (
        sa.UniqueConstraint("fiscal_year", "sequence"),
        # Keyset pagination of the queue: newest activity first, by open/closed and by filters.
        sa.Index("ix_ticket_queue", "is_open", "last_activity_at", "id"),
        sa.Index("ix_ticket_status_queue", "status", "last_activity_at", "id"),
        sa.Index("ix_ticket_channel_queue", "channel", "is_open", "last_activity_at", "id"),
        sa.Index("ix_ticket_category_queue", "category_id", "is_open", "last_activity_at", "id"),
        sa.Index("ix_ticket_assignee_queue", "assignee_id", "is_open", "last_activity_at", "id"),
        sa.Index("ix_ticket_citizen", "citizen_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(16), unique=True)
    fiscal_year: Mapped[int]
    sequence: Mapped[int]
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"))
    subject: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.RECEIVED)
    is_open: Mapped[bool] = mapped_column(default=True)
    priority: Mapped[Priority] = mapped_column(_enum(Priority), default=Priority.NORMAL)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    citizen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("citizen.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Counter and phone sessions: when the consultation started and ended.
    session_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None]
    resolution_summary: Mapped[str | None] = mapped_column(sa.Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[Category | None] = relationship()
    assignee: Mapped[Staff | None] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[Staff | None] = relationship(foreign_keys=[created_by_id])
    citizen: Mapped[Citizen | None] = relationship()
    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="ticket", order_by="TimelineEntry.id"
    )

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS[self.channel]

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS[self.priority]

    def __repr__(self) -> str:
        return f"<Ticket {self.id} {self.status}>"


class TimelineEntry(db.Model):
    """One event on a ticket's record. Append-only: a correction is a new entry."""

    __tablename__ = "timeline_entry"
    __table_args__ = (sa.Index("ix_timeline_entry_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    kind: Mapped[EntryKind] = mapped_column(_enum(EntryKind))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="timeline")
    author: Mapped[Staff | None] = relationship()

    @property
    def kind_label(self) -> str:
        return ENTRY_LABELS[self.kind]

    def __repr__(self) -> str:
        return f"<TimelineEntry {self.id} {self.kind}>"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


OUTBOX_STATUS_LABELS = {
    OutboxStatus.PENDING: "送信待ち",
    OutboxStatus.SENDING: "送信中",
    OutboxStatus.DELIVERED: "送信済み",
    OutboxStatus.FAILED: "送信失敗",
}


class OutboxMessage(db.Model):
    """A message to deliver, written in the transaction that caused it; the worker sends it."""

    __tablename__ = "outbox_message"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str | None] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text)
    headers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def status_label(self) -> str:
        return OUTBOX_STATUS_LABELS[self.status]

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.channel} {self.status}>"


class AuditEvent(db.Model):
    """Who saw or changed personal data, when, from where. Holds no personal data itself."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_at", "at"),
        sa.Index("ix_audit_event_object", "object_type", "object_id"),
        sa.Index("ix_audit_event_staff", "staff_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(sa.String(40))
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str | None] = mapped_column(sa.String(200))

    staff: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action}>"


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change a record that may only ever be appended."""


def _refuse_change(mapper, connection, target) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only")


for _model in (TimelineEntry, AuditEvent):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)
