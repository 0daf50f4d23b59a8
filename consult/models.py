"""The kernel's data: staff, departments, categories, citizens, tickets, timeline, outbox, audit."""

from __future__ import annotations

import enum
from datetime import date, datetime, time

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.timeutil import UTCDateTime, utcnow


class Role(LabelledEnum):
    CONSULTANT = "consultant", "相談員"
    SUPERVISOR = "supervisor", "センター責任者"
    OFFICER = "officer", "担当課職員"
    SUPPORT = "support", "安心対応サポート室"
    ADMIN = "admin", "管理者"
    # A branch office's (支所) own account: opens the video sessions booked at its branch and
    # sees nothing else (consult.app refuses it every page whose view does not name it).
    BRANCH = "branch", "支所"


# Every role of a person on the staff; a branch office's account is a terminal, not one of them
# (it sees its branch's sessions only), so "every member of staff" never includes it.
STAFF_ROLES = tuple(role for role in Role if role is not Role.BRANCH)


class Channel(LabelledEnum):
    COUNTER = "counter", "窓口"
    PHONE = "phone", "電話"
    EMAIL = "email", "メール"
    LINE = "line", "LINE"
    BOOKING = "booking", "予約"
    # Pushed in by another system through /api/v1 (a counter system, an online form).
    API = "api", "外部システム連携"


class Status(LabelledEnum):
    RECEIVED = "received", "受付"
    IN_PROGRESS = "in_progress", "対応中"
    HANDED_OFF = "handed_off", "引継中"
    AWAITING_REPLY = "awaiting_reply", "回答待ち"
    RESOLVED = "resolved", "解決"
    CLOSED = "closed", "完了"


class Priority(LabelledEnum):
    LOW = "low", "低"
    NORMAL = "normal", "通常"
    HIGH = "high", "高"
    URGENT = "urgent", "至急"


class EntryKind(LabelledEnum):
    NOTE = "note", "メモ"
    MESSAGE_IN = "message_in", "受信"
    MESSAGE_OUT = "message_out", "送信"
    STATUS_CHANGE = "status_change", "状態変更"
    ASSIGNMENT = "assignment", "担当者変更"
    CITIZEN_LINK = "citizen_link", "相談者"
    SESSION = "session", "対応時間"
    DELIVERY = "delivery", "送信結果"
    HANDOFF = "handoff", "引継ぎ"
    SAFETY = "safety", "安全対応"


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


class BranchOffice(db.Model):
    """A branch office (支所) of the city, where a citizen can hold a video session with the
    centre (booking mode 「支所からのオンライン相談」) from the branch's own terminal.

    Kept in the kernel beside departments because a branch account (Role.BRANCH) belongs to
    one; the booking plugin manages them. Names are data in both languages, never gettext."""

    __tablename__ = "branch_office"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)

    def public_name(self, language: str | None = "ja") -> str:
        return (self.name_en or self.name) if language == "en" else self.name

    def __repr__(self) -> str:
        return f"<BranchOffice {self.id} active={self.active}>"


class Category(db.Model):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    # The name on the public English pages, set by administrators: data never goes through
    # gettext, so a translated name is a field of its own (empty: the Japanese name).
    name_en: Mapped[str | None] = mapped_column(sa.String(80))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    # 保存期間 in years (RETENTION_YEARS), set by administrators; NULL: the default for the
    # category's code (consult.services.retention.DEFAULT_YEARS).
    retention_years: Mapped[int | None]

    def public_name(self, language: str | None = "ja") -> str:
        """The name in the public page's language, falling back to the Japanese one."""
        return (self.name_en or self.name) if language == "en" else self.name

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
    # A branch account's branch office (Role.BRANCH only).
    branch_office_id: Mapped[int | None] = mapped_column(sa.ForeignKey("branch_office.id"))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Work address for notifications (escalations, alerts); optional.
    email: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when an administrator chose the password (a new account, a reset): the person must
    # choose their own before any other page opens (consult.views.account).
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Two-factor sign-in (consult.services.totp): the secret, encrypted (Fernet), set when
    # enrolment starts; enabled once the first code confirmed it. The last time step accepted,
    # so that one code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Set for accounts managed by the city's directory (consult.services.directory): their
    # password, role and department come from there at each sign-in.
    directory_dn: Mapped[str | None] = mapped_column(sa.String(255))

    department: Mapped[Department | None] = relationship()
    branch_office: Mapped[BranchOffice | None] = relationship()

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
        return Role(self.role).label

    @property
    def has_totp(self) -> bool:
        return self.totp_enabled_at is not None

    def __repr__(self) -> str:
        return f"<Staff {self.id} {self.role}>"


class RecoveryCode(db.Model):
    """A one-time code for signing in without the phone: only its SHA-256 digest is kept."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} used={self.used_at is not None}>"


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


class RateLimitCounter(db.Model):
    """One count shared by every process: hits of one key (a hashed address or login) in a scope.

    Kept in the database so that four gunicorn workers, or two servers, count as one. Times are
    whole seconds since the epoch, so the upsert can compare them in SQL on both databases. The
    key is a SHA-256 digest: the table holds no address, login or other personal data.
    """

    __tablename__ = "rate_limit_counter"

    scope: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    window_ends: Mapped[int] = mapped_column(sa.BigInteger)
    last_hit: Mapped[int] = mapped_column(sa.BigInteger)

    def __repr__(self) -> str:
        return f"<RateLimitCounter {self.scope} {self.hits}>"


class Citizen(db.Model):
    __tablename__ = "citizen"
    __table_args__ = (
        # The desk searches `name_key LIKE '山田%'`. Under a C.UTF-8 (or any non-C) collation
        # PostgreSQL cannot use a plain btree for LIKE; text_pattern_ops can, and still serves
        # equality. SQLite keeps a plain index.
        sa.Index(
            "ix_citizen_name_key", "name_key", postgresql_ops={"name_key": "text_pattern_ops"}
        ),
        sa.Index(
            "ix_citizen_kana_key", "kana_key", postgresql_ops={"kana_key": "text_pattern_ops"}
        ),
        # The match at intake looks up the folded name and reading (equality or prefix).
        sa.Index(
            "ix_citizen_name_fold", "name_fold", postgresql_ops={"name_fold": "text_pattern_ops"}
        ),
        sa.Index(
            "ix_citizen_kana_fold", "kana_fold", postgresql_ops={"kana_fold": "text_pattern_ops"}
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(80))
    kana: Mapped[str | None] = mapped_column(sa.String(80))
    # Folded forms (NFKC, no spaces, katakana→hiragana) for finding the same person again.
    name_key: Mapped[str | None] = mapped_column(sa.String(80))
    kana_key: Mapped[str | None] = mapped_column(sa.String(80))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    # Where known: what tells two people of one name apart at intake.
    birth_date: Mapped[date | None] = mapped_column(sa.Date)
    # fold_name() of name and kana (異体字, kana, spaces): the match's indexed keys.
    name_fold: Mapped[str | None] = mapped_column(sa.String(80))
    kana_fold: Mapped[str | None] = mapped_column(sa.String(80))
    # Merged into another record (同一人物の統合): this id stays as a pointer to the survivor.
    # No foreign key: adding one to this referenced table means a batch copy on SQLite, which
    # trips the other tables' keys; the merge service is the only writer.
    merged_into_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # 支援措置（DV等）: whereabouts (address, phone, email, LINE link) only for supervisors and the
    # staff named on the person's cases (consult/services/protection.py). Set and lifted by a
    # supervisor with a reason (CitizenFlagEvent).
    protected: Mapped[bool] = mapped_column(default=False, server_default=sa.false(), index=True)
    # 利用停止: the person's data is kept out of FAQ drafts, other staff's searches, automatic
    # answers and exports; their open cases go on.
    use_stopped: Mapped[bool] = mapped_column(default=False, server_default=sa.false(), index=True)

    phones: Mapped[list[CitizenPhone]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", order_by="CitizenPhone.id"
    )
    emails: Mapped[list[CitizenEmail]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", order_by="CitizenEmail.id"
    )

    def __repr__(self) -> str:
        return f"<Citizen {self.id}>"


class CitizenFlag(enum.StrEnum):
    PROTECTED = "protected"
    USE_STOPPED = "use_stopped"

    @property
    def label(self) -> str:
        return {"protected": "支援措置", "use_stopped": "利用停止"}[self.value]


class CitizenFlagEvent(db.Model):
    """A supervisor set or lifted a citizen's protection or stop of use, and why.

    The reason is personal data (it may name the support measure's grounds): it lives here,
    shown to supervisors only, never in the audit log. Reached by the disclosure bundle (as a
    withheld item for the reviewer) and by disposal with the citizen."""

    __tablename__ = "citizen_flag_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen.id"), index=True)
    flag: Mapped[CitizenFlag] = mapped_column(_enum(CitizenFlag))
    is_set: Mapped[bool]
    reason: Mapped[str] = mapped_column(sa.String(500))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<CitizenFlagEvent {self.id} {self.flag} {self.is_set}>"


class CitizenRevision(db.Model):
    """訂正: the value a field of a citizen had before a change, and who changed it.

    Personal data (the old value): shown under the same rule as the field itself, reached by the
    disclosure bundle and by disposal with the citizen."""

    __tablename__ = "citizen_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen.id"), index=True)
    field: Mapped[str] = mapped_column(sa.String(20))
    old_value: Mapped[str | None] = mapped_column(sa.String(254))
    new_value: Mapped[str | None] = mapped_column(sa.String(254))
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<CitizenRevision {self.id} {self.field}>"


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
    # Merged into another ticket (相談の統合): the number stays, pointing at the survivor, whose
    # page shows this ticket's timeline with its own.
    # No foreign key, as on Citizen.merged_into_id (a batch copy of `ticket` on SQLite).
    merged_into_id: Mapped[int | None] = mapped_column(index=True)
    # When its personal data was disposed of (consult.services.retention): the row stays, with
    # its number, channel, category, dates and durations, for the statistics.
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[Category | None] = relationship()
    assignee: Mapped[Staff | None] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[Staff | None] = relationship(foreign_keys=[created_by_id])
    citizen: Mapped[Citizen | None] = relationship()
    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="ticket", order_by="TimelineEntry.id"
    )

    @property
    def status_label(self) -> str:
        return Status(self.status).label

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label

    @property
    def priority_label(self) -> str:
        return Priority(self.priority).label

    def ensure_open(self) -> None:
        """A closed case is changed only after reopening it."""
        if self.status == Status.CLOSED:
            from consult.services.errors import TicketClosed

            raise TicketClosed()

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
        return EntryKind(self.kind).label

    @property
    def details(self):
        """The data's typed shape for its kind (consult.timeline.load), or None: read the data
        through this, never by its JSON keys."""
        from consult import timeline

        return timeline.load(self.kind, self.data)

    def __repr__(self) -> str:
        return f"<TimelineEntry {self.id} {self.kind}>"


class OutboxStatus(LabelledEnum):
    PENDING = "pending", "送信待ち"
    SENDING = "sending", "送信中"
    DELIVERED = "delivered", "送信済み"
    FAILED = "failed", "送信失敗"


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
    # When the latest attempt began handing the message to the channel, committed before it
    # did: a claim taken back from a dead worker with this set may already have been sent.
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # On the relay: the core's transfer item this message came as. Its outcome (delivered, or
    # failed and why) goes back to the core under it (consult.transfer.services: outcomes).
    transfer_id: Mapped[str | None] = mapped_column(sa.String(120), index=True)

    @property
    def status_label(self) -> str:
        return OutboxStatus(self.status).label

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.channel} {self.status}>"


class WorkerHeartbeat(db.Model):
    """A process that may hold claims, and when it last showed it was alive."""

    __tablename__ = "worker_heartbeat"

    worker_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<WorkerHeartbeat {self.worker_id}>"


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
    # The API integration that acted (api/), by its name at the time: no staff member then.
    integration: Mapped[str | None] = mapped_column(sa.String(80))
    action: Mapped[str] = mapped_column(sa.String(40))
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str | None] = mapped_column(sa.String(200))

    staff: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action}>"


class MergeRecord(db.Model):
    """One merge of two citizens or two tickets, with what moved: enough to undo it exactly.

    `moved` holds ids only (tickets, phones, emails, LINE contacts, fields filled in), never
    personal data; the rows themselves stay where disposal and disclosure already reach them.
    """

    __tablename__ = "merge_record"
    __table_args__ = (sa.Index("ix_merge_record_source", "kind", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10))  # "citizen" or "ticket"
    source_id: Mapped[int]
    target_id: Mapped[int]
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    moved: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))

    staff: Mapped[Staff | None] = relationship(foreign_keys=[staff_id])
    undone_by: Mapped[Staff | None] = relationship(foreign_keys=[undone_by_id])

    @property
    def kind_label(self) -> str:
        return "相談者" if self.kind == "citizen" else "相談"

    def __repr__(self) -> str:
        return f"<MergeRecord {self.id} {self.kind}>"


class TicketLink(db.Model):
    """関連する相談: two tickets about one matter or one family, linked without merging.

    Stored once per pair, the lower id first; shown on both tickets."""

    __tablename__ = "ticket_link"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "related_id"),
        sa.CheckConstraint("ticket_id < related_id", name="ordered"),
        sa.Index("ix_ticket_link_related", "related_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    related_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<TicketLink {self.id}>"


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change a record that may only ever be appended."""


def _refuse_change(mapper, connection, target) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only")


for _model in (TimelineEntry, AuditEvent):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)


# --- staff safety (カスハラ) -------------------------------------------------------------------


class IncidentCategory(LabelledEnum):
    """Iwamizawa's staff survey categories (and その他)."""

    LONG_HOLD = "long_hold", "時間拘束"
    ABUSE = "abuse", "暴言"
    NITPICKING = "nitpicking", "揚げ足取り"
    REPEATED_DEMAND = "repeated_demand", "リピート型"
    EXCESSIVE_DEMAND = "excessive_demand", "過度な要求"
    THREAT = "threat", "脅迫"
    AUTHORITY = "authority", "権威型"
    SNS_POST = "sns_post", "SNS投稿"
    SEXUAL_HARASSMENT = "sexual_harassment", "セクハラ"
    VIOLENCE = "violence", "暴力"
    OTHER = "other", "その他"


class FollowUp(LabelledEnum):
    POLICE = "police", "警察へ相談"
    LAWYER = "lawyer", "顧問弁護士へ相談"
    PHYSICIAN = "physician", "産業医面談（職員）"
    RECORD_ONLY = "record_only", "記録のみ"


class AlertResponseKind(LabelledEnum):
    COMING = "coming", "向かいます"
    ARRIVED = "arrived", "到着"


class HelpAlert(db.Model):
    """応援要請: the help button's alert to the support room and the supervisors."""

    __tablename__ = "help_alert"
    # The live feed asks "open alerts" every second from every staff page: keep it an index seek.
    __table_args__ = (sa.Index("ix_help_alert_open", "closed_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    place: Mapped[str] = mapped_column(sa.String(40))
    # What the support room reads: the room of the visit in progress, or the place chosen on
    # the device, said to be so: 「相談室3（受付中の相談 2026-000123）」,
    # 「電話（端末で選択：相談室2）」.
    place_label: Mapped[str | None] = mapped_column(sa.String(200))
    raised_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The staff id while a second press would repeat this alert (within 60 s, still open), else
    # NULL: the unique key lets one of two simultaneous presses (two tabs) insert, never both.
    press_key: Mapped[int | None] = mapped_column(unique=True)
    # Set once (conditional UPDATE) when no one answered in time and it went to everyone.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))

    ticket: Mapped[Ticket | None] = relationship()
    raised_by: Mapped[Staff] = relationship(foreign_keys=[raised_by_id])
    responses: Mapped[list[HelpResponse]] = relationship(
        back_populates="alert", order_by="HelpResponse.id"
    )

    def __repr__(self) -> str:
        return f"<HelpAlert {self.id} open={self.closed_at is None}>"


class HelpResponse(db.Model):
    """向かいます / 到着 from one member of staff; each at most once per alert."""

    __tablename__ = "help_response"
    __table_args__ = (sa.UniqueConstraint("alert_id", "staff_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("help_alert.id"), index=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"))
    kind: Mapped[AlertResponseKind] = mapped_column(_enum(AlertResponseKind))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alert: Mapped[HelpAlert] = relationship(back_populates="responses")
    staff: Mapped[Staff] = relationship()

    @property
    def kind_label(self) -> str:
        return AlertResponseKind(self.kind).label

    def __repr__(self) -> str:
        return f"<HelpResponse {self.id} {self.kind}>"


class AlertDevice(db.Model):
    """A one-button device (or a work phone's shortcut) that raises a help alert over HTTP.

    Registered by an administrator to one member of staff and one place, as Minato's counters
    carry them: the press raises the alert as that person, at that place. Only the token's
    SHA-256 is kept; the token itself is shown once. No personal data.
    """

    __tablename__ = "alert_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    place: Mapped[str] = mapped_column(sa.String(40))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters of the token, so an administrator can tell devices apart.
    token_prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff: Mapped[Staff] = relationship(foreign_keys=[staff_id])

    def __repr__(self) -> str:
        return f"<AlertDevice {self.id} revoked={self.revoked_at is not None}>"


class Incident(db.Model):
    """カスハラ事案: seen only by supervisors, the support room and administrators."""

    __tablename__ = "incident"
    __table_args__ = (
        sa.Index("ix_incident_citizen", "citizen_id"),
        sa.Index("ix_incident_occurred", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("citizen.id"))
    alert_id: Mapped[int | None] = mapped_column(sa.ForeignKey("help_alert.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_by_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    description: Mapped[str] = mapped_column(sa.Text)
    follow_ups: Mapped[list] = mapped_column(sa.JSON, default=list)

    ticket: Mapped[Ticket | None] = relationship()
    citizen: Mapped[Citizen | None] = relationship()
    reported_by: Mapped[Staff] = relationship(foreign_keys=[reported_by_id])
    categories: Mapped[list[IncidentCategoryMark]] = relationship(
        cascade="all, delete-orphan", order_by="IncidentCategoryMark.category"
    )
    people: Mapped[list[IncidentStaff]] = relationship(cascade="all, delete-orphan")

    @property
    def category_labels(self) -> list[str]:
        # In the survey's order (its most frequent first), not alphabetical.
        order = list(IncidentCategory)
        marks = sorted(self.categories, key=lambda mark: order.index(mark.category))
        return [IncidentCategory(mark.category).label for mark in marks]

    @property
    def follow_up_labels(self) -> list[str]:
        return [FollowUp(f).label for f in self.follow_ups or ()]

    def staff_in(self, part: str) -> list[Staff]:
        return [p.staff for p in self.people if p.part == part]

    def __repr__(self) -> str:
        return f"<Incident {self.id}>"


class IncidentCategoryMark(db.Model):
    """One category of an incident (several may apply); a table so reports can GROUP BY it."""

    __tablename__ = "incident_category"
    __table_args__ = (sa.Index("ix_incident_category_category", "category"),)

    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incident.id"), primary_key=True)
    category: Mapped[IncidentCategory] = mapped_column(
        _enum(IncidentCategory, 30), primary_key=True
    )

    def __repr__(self) -> str:
        return f"<IncidentCategoryMark {self.incident_id} {self.category}>"


class IncidentStaff(db.Model):
    """A member of staff in an incident: `involved` (at the counter) or `support` (who came)."""

    __tablename__ = "incident_staff"

    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incident.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), primary_key=True)
    part: Mapped[str] = mapped_column(sa.String(20), primary_key=True)

    staff: Mapped[Staff] = relationship()

    def __repr__(self) -> str:
        return f"<IncidentStaff {self.incident_id} {self.part}>"


class CentreSetting(db.Model):
    """Settings an administrator changes at run time (thresholds, the recording policy text)."""

    __tablename__ = "centre_setting"

    key: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))

    def __repr__(self) -> str:
        return f"<CentreSetting {self.key}>"


class LongSessionAlert(db.Model):
    """A session that ran past a threshold; the unique key makes the alert once per threshold."""

    __tablename__ = "long_session_alert"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "threshold_minutes"),
        sa.Index("ix_long_session_alert_open", "acknowledged_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    threshold_minutes: Mapped[int]
    alerted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))

    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<LongSessionAlert {self.id} {self.threshold_minutes}>"


class Grain(enum.StrEnum):
    """A rollup row counts one Japanese day, or one calendar month (its `day` is the 1st)."""

    DAY = "day"
    MONTH = "month"


class ReportDaily(db.Model):
    """Derived, never edited by hand: tickets per Japanese day (of created_at) and channel, with
    their ended sessions; the same per month. Kept in step with the tickets in the same
    transaction by consult.services.report_rollup (signals from the ticket services);
    `madoguchi reports rebuild` recomputes it from the tickets after a bulk import."""

    __tablename__ = "report_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[Grain] = mapped_column(_enum(Grain, 8), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel), primary_key=True)
    tickets: Mapped[int] = mapped_column(default=0)
    sessions: Mapped[int] = mapped_column(default=0)
    session_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<ReportDaily {self.grain} {self.day} {self.channel} {self.tickets}>"


class ReportCategoryDaily(db.Model):
    """Derived: tickets per Japanese day (and per month) and category."""

    __tablename__ = "report_category_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[Grain] = mapped_column(_enum(Grain, 8), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    # The category's id, or 0 for a ticket without one (a key column cannot be NULL).
    category_key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tickets: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<ReportCategoryDaily {self.grain} {self.day} {self.category_key} {self.tickets}>"


class ReportSessionDaily(db.Model):
    """Derived: ended sessions per Japanese day (and per month), channel and whole minutes of
    duration (capped at SESSION_MINUTES_CAP, the largest threshold an administrator may set), so
    that 'sessions of at least m minutes' is exact for every threshold."""

    __tablename__ = "report_session_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[Grain] = mapped_column(_enum(Grain, 8), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel), primary_key=True)
    minutes: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sessions: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<ReportSessionDaily {self.grain} {self.day} {self.channel} {self.minutes}>"


SESSION_MINUTES_CAP = 1440

# Reports count tickets by day, channel and category over a period: one covering index lets
# both databases answer from the index alone. Running sessions are found by the worker each round.
sa.Index(
    "ix_ticket_report",
    Ticket.created_at,
    Ticket.channel,
    Ticket.category_id,
    Ticket.duration_seconds,
)
sa.Index("ix_ticket_running_session", Ticket.session_ended_at, Ticket.session_started_at)
# Open tickets by age (the dashboard): answered from the index alone.
sa.Index("ix_ticket_open_age", Ticket.is_open, Ticket.created_at)
# Disposal's candidates: closed tickets not yet disposed of, by the time they closed.
sa.Index("ix_ticket_disposal", Ticket.disposed_at, Ticket.closed_at)


# --- the centre's calendar (consult.services.calendar) ---------------------------------------


class CalendarException(db.Model):
    """An administrator's exception for one day: closed, or other hours (shorter or extra).

    The kernel's calendar reads it for every channel (LINE and email answers, booking slots),
    so an exception changes what every channel tells citizens.
    """

    __tablename__ = "calendar_exception"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, unique=True)
    closed: Mapped[bool] = mapped_column(default=False)
    opens: Mapped[time | None] = mapped_column(sa.Time)
    closes: Mapped[time | None] = mapped_column(sa.Time)
    note: Mapped[str] = mapped_column(sa.String(200), default="")


class DutyAssignment(db.Model):
    """閉庁日当番: the department on duty on one weekend, holiday or year-end day."""

    __tablename__ = "duty_assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, unique=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))

    department: Mapped[Department] = relationship()


# --- callbacks (consult.services.callbacks) ---------------------------------------------------


class Callback(db.Model):
    """折り返し: a promise to call a citizen back by a time, made by one member of staff.

    A row of its own (not a column of the phone log) so that every channel can promise one,
    the queue can list them by due time, and the worker can remind once per step. It holds ids
    and times only, no personal data: disposal of the ticket deletes it with the ticket.
    """

    __tablename__ = "callback"
    __table_args__ = (
        sa.Index("ix_callback_pending", "done_at", "due_at"),
        sa.Index("ix_callback_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A merged ticket's callbacks move to its survivor (consult.services.merge).
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ticket.id"), info={"moves_with_merge": True}
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Who makes the call (the one reminded); None falls back to the ticket's 担当.
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    # Each reminder is taken once with a conditional UPDATE on these (several workers).
    reminded_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()
    staff: Mapped[Staff | None] = relationship(foreign_keys=[staff_id])
    done_by: Mapped[Staff | None] = relationship(foreign_keys=[done_by_id])

    @property
    def responsible_id(self) -> int | None:
        return self.staff_id or self.ticket.assignee_id

    def overdue(self, now: datetime) -> bool:
        return self.done_at is None and self.due_at <= now

    def __repr__(self) -> str:
        return f"<Callback {self.id} ticket={self.ticket_id}>"


# --- attachments (consult.services.attachments) -----------------------------------------------


class Attachment(db.Model):
    """A file a member of staff attached to a ticket (a photo of a document, a PDF).

    The bytes live under DATA_DIR/attachments/ by a generated name, never the sender's file name;
    `filename` is only what the download offers. Personal data (the file and its name): the
    ticket's disposal must delete the row and the file, and the disclosure bundle must include
    both (consult.services.attachments.path_of gives the file). Staff see the file only in its
    converted form: its SafeFile row (source "attachment") must be disposed of with it.
    """

    __tablename__ = "attachment"
    __table_args__ = (sa.Index("ix_attachment_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(sa.String(200))
    # The type found in the content (magic bytes), never the one the browser claimed.
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    storage_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))

    ticket: Mapped[Ticket] = relationship()
    uploaded_by: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<Attachment {self.id} ticket={self.ticket_id}>"


# --- 無害化 (consult.services.safe_files) ---------------------------------------------------------


class SafeFileStatus(LabelledEnum):
    # waiting for the worker
    PENDING = "pending", "安全な形式に変換中"
    READY = "ready", "変換済み"  # converted: staff see only the converted pages and text
    QUARANTINED = "quarantined", "隔離中"  # refused by the conversion, with its reason
    RELEASED = "released", "管理者が隔離を解除"  # an administrator released the original (audited)
    # the worker itself kept failing on it: held like a quarantined file
    FAILED = "failed", "隔離中（変換に失敗）"


class SafeFile(db.Model):
    """One file a citizen sent (or staff attached), and its harmless form (無害化).

    `source`/`source_id` name the row it came from (attachment, email_attachment, line_media);
    `original_path` is where that row's bytes lie under DATA_DIR (never served to a browser
    unless an administrator released it); the converted pages live under
    DATA_DIR/safe/<stored_name[:2]>/<stored_name>/ and `text` holds what was extracted for the
    search. Personal data (the pages, the text, the file name, the reason): disposal of the
    ticket must delete the row, the folder of pages and the original; the disclosure bundle must
    include the original and the pages (consult.services.safe_files.original_of / pages_of).
    """

    __tablename__ = "safe_file"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id"),
        sa.Index("ix_safe_file_due", "status", "next_attempt_at"),
        sa.Index("ix_safe_file_ticket", "ticket_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    source: Mapped[str] = mapped_column(sa.String(20))
    source_id: Mapped[int]
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    claimed_type: Mapped[str | None] = mapped_column(sa.String(127))
    size: Mapped[int] = mapped_column(default=0)
    original_path: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[SafeFileStatus] = mapped_column(
        _enum(SafeFileStatus), default=SafeFileStatus.PENDING
    )
    kind: Mapped[str | None] = mapped_column(sa.String(20))  # jpeg, pdf, docx, html, …
    stored_name: Mapped[str | None] = mapped_column(sa.String(64))
    media_type: Mapped[str | None] = mapped_column(sa.String(40))  # of the pages
    pages: Mapped[int] = mapped_column(default=0)
    total_pages: Mapped[int | None]
    truncated: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.String(500))  # Japanese, for staff
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # consult.services.queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(sa.Text)

    ticket: Mapped[Ticket] = relationship()
    released_by: Mapped[Staff | None] = relationship()

    @property
    def status_label(self) -> str:
        return SafeFileStatus(self.status).label

    @property
    def held(self) -> bool:
        """Quarantined (or given up): staff see the reason, never the file."""
        return self.status in (SafeFileStatus.QUARANTINED, SafeFileStatus.FAILED)

    def __repr__(self) -> str:
        return f"<SafeFile {self.id} {self.source}:{self.source_id} {self.status}>"


# --- search (consult.services.search) -----------------------------------------------------------


class TicketSearch(db.Model):
    """One ticket's search document: the n-grams of its citizen, its words and their reading,
    rewritten in the transaction that changed them (consult.services.search). On SQLite the
    grams are kept here and FTS5 (`ticket_search_fts`, external content, triggers) indexes them;
    on PostgreSQL only the weighted `document` is kept, under a GIN index. Personal data:
    deleted with the ticket, rebuilt from the rows it came from."""

    __tablename__ = "ticket_search"
    __table_args__ = (
        sa.Index("ix_ticket_search_document", "document", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    who: Mapped[str | None] = mapped_column(sa.Text)
    what: Mapped[str | None] = mapped_column(sa.Text)
    body: Mapped[str | None] = mapped_column(sa.Text)
    reading: Mapped[str | None] = mapped_column(sa.Text)
    document: Mapped[str | None] = mapped_column(
        sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")
    )

    def __repr__(self) -> str:
        return f"<TicketSearch {self.ticket_id}>"


# --- retention and disposal (consult.services.retention) --------------------------------------

# 保存期間 a category may have, in years (a city's 文書管理規程: 1, 3, 5, 10 and 30 years).
RETENTION_YEARS = (1, 3, 5, 10, 30)


class LegalHold(db.Model):
    """訴訟ホールド: a ticket or a citizen whose records may not be disposed of while it stands
    (訴訟・不服申立て・開示請求への対応中など). Set and lifted by a supervisor with a reason,
    audited. The reasons must not name anyone; disposal clears them with the other texts."""

    __tablename__ = "legal_hold"
    __table_args__ = (
        sa.CheckConstraint(
            "(ticket_id IS NULL AND citizen_id IS NOT NULL) "
            "OR (ticket_id IS NOT NULL AND citizen_id IS NULL)",
            name="one_target",
        ),
        sa.Index("ix_legal_hold_ticket", "ticket_id", "lifted_at"),
        sa.Index("ix_legal_hold_citizen", "citizen_id", "lifted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"))
    citizen_id: Mapped[int | None] = mapped_column(sa.ForeignKey("citizen.id"))
    reason: Mapped[str] = mapped_column(sa.String(200))
    set_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    lift_reason: Mapped[str | None] = mapped_column(sa.String(200))

    ticket: Mapped[Ticket | None] = relationship()
    set_by: Mapped[Staff | None] = relationship(foreign_keys=[set_by_id])
    lifted_by: Mapped[Staff | None] = relationship(foreign_keys=[lifted_by_id])

    def __repr__(self) -> str:
        return f"<LegalHold {self.id} lifted={self.lifted_at is not None}>"


class DisposalList(db.Model):
    """廃棄予定一覧 of one month: the candidates when it was drawn up, approved by a supervisor."""

    __tablename__ = "disposal_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date, unique=True)  # the 1st of the month
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    # Who approved, by their name at the time (the 廃棄簿 keeps it after the account goes).
    approved_by_name: Mapped[str | None] = mapped_column(sa.String(80))

    approved_by: Mapped[Staff | None] = relationship(foreign_keys=[approved_by_id])

    def __repr__(self) -> str:
        return f"<DisposalList {self.id} {self.month}>"


class DisposalItem(db.Model):
    """One ticket on a list: ids, class and dates only. Held back items stay until next month."""

    __tablename__ = "disposal_item"
    __table_args__ = (
        sa.UniqueConstraint("list_id", "ticket_id"),
        sa.Index("ix_disposal_item_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(sa.ForeignKey("disposal_list.id"))
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"))
    retention_years: Mapped[int]
    expires_on: Mapped[date] = mapped_column(sa.Date)
    held_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_back_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<DisposalItem {self.id} ticket={self.ticket_id}>"


class DisposalUnlinked(db.Model):
    """One kind of record that belongs to no case, on a month's 廃棄予定一覧: a booking never
    turned into a case, mail that was ignored or quarantined, LINE events, bodies and users
    without a case, outbox copies without a case, copies waiting to cross between the zones.

    Counted from the fiscal year after the record's own date (consult.services.retention,
    `unlinked_years`): the list shows the kind and how many, never the records. `before` is the
    first day not covered: records dated before it go on approval, unless the row is held back.
    """

    __tablename__ = "disposal_unlinked"
    __table_args__ = (sa.UniqueConstraint("list_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(sa.ForeignKey("disposal_list.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    retention_years: Mapped[int]
    before: Mapped[date] = mapped_column(sa.Date)
    count: Mapped[int] = mapped_column(default=0)
    held_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_back_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposed_count: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<DisposalUnlinked {self.id} {self.kind}>"


class DisposalRecord(db.Model):
    """廃棄簿: what was disposed of, when and on whose approval, without the data itself.

    `kind` is "ticket" (one row per ticket: its number, class, category, and how many items of
    each kind were removed) or "audit" (one row per disposal of old audit rows)."""

    __tablename__ = "disposal_record"
    __table_args__ = (sa.Index("ix_disposal_record_at", "disposed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10), default="ticket")
    ticket_number: Mapped[str | None] = mapped_column(sa.String(16))
    retention_years: Mapped[int | None]
    category_name: Mapped[str | None] = mapped_column(sa.String(80))
    channel: Mapped[str | None] = mapped_column(sa.String(20))
    closed_on: Mapped[date | None] = mapped_column(sa.Date)
    expired_on: Mapped[date | None] = mapped_column(sa.Date)
    list_id: Mapped[int | None] = mapped_column(sa.ForeignKey("disposal_list.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_name: Mapped[str | None] = mapped_column(sa.String(80))
    disposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who ran it: a staff login or "cli:<OS user>".
    disposed_by: Mapped[str] = mapped_column(sa.String(64))
    counts: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    def __repr__(self) -> str:
        return f"<DisposalRecord {self.id} {self.kind}>"


class DisposalPermit(db.Model):
    """The append-only tables' triggers let a row through only while this table has a row.

    Disposal inserts one at the start of its transaction and deletes it before commit: no other
    transaction ever sees it (on PostgreSQL by MVCC, on SQLite because one writer at a time), so
    the audit log and the timeline stay append-only for everyone else, raw SQL included."""

    __tablename__ = "disposal_permit"

    token: Mapped[str] = mapped_column(sa.String(32), primary_key=True)

    def __repr__(self) -> str:
        return "<DisposalPermit>"


class DisclosureStatus(LabelledEnum):
    PENDING = "pending", "作成中"  # waiting for the worker (the page says 作成中…)
    READY = "ready", "ダウンロードできます"  # stored, to be downloaded until it expires
    FAILED = "failed", "作成できませんでした"  # given up, with the reason; 再作成 is offered
    EXPIRED = "expired", "保管期間が過ぎたため削除しました"  # deleted after the keeping period


class DisclosureJob(db.Model):
    """One production of a disclosure bundle (開示請求への対応), made by the worker.

    The request is written by the web page; the worker builds the PDF or JSON
    (consult.services.disclosure) and stores it under DATA_DIR/disclosure/ (outside the web
    root) by a generated name. Personal data: the file itself, which goes when the job expires
    (`expires_at`) and with the citizen's disposal; the row holds ids, times and counts only.
    """

    __tablename__ = "disclosure_job"
    __table_args__ = (
        sa.Index("ix_disclosure_job_due", "status", "next_attempt_at"),
        sa.Index("ix_disclosure_job_citizen", "citizen_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen.id"))
    fmt: Mapped[str] = mapped_column(sa.String(10))
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    status: Mapped[DisclosureStatus] = mapped_column(
        _enum(DisclosureStatus), default=DisclosureStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # consult.services.queue
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))  # Japanese, no data
    stored_name: Mapped[str | None] = mapped_column(sa.String(64))
    size: Mapped[int | None]
    # What the bundle held (counts only): its entries, and those marked for the reviewer.
    items: Mapped[int | None]
    review_count: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloads: Mapped[int] = mapped_column(default=0)

    requested_by: Mapped[Staff | None] = relationship()

    @property
    def status_label(self) -> str:
        return self.status.label

    def __repr__(self) -> str:
        return f"<DisclosureJob {self.id} {self.status}>"
