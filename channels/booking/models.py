"""Bookings, the per-slot seat counter, capacity per day type and the private calendar feeds.

The centre's calendar (administrators' exceptions, the closed-day duty rota) is the kernel's:
`consult.models.CalendarException` and `consult.models.DutyAssignment`.
"""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import BranchOffice, Category, Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class Mode(LabelledEnum):
    COUNTER = "counter", "窓口"
    PHONE = "phone", "電話"
    VIDEO = "video", "オンライン"
    # 支所からのオンライン相談: the citizen goes to a branch office (Booking.branch_office), whose
    # staff open the centre's video meeting from the branch's own account.
    BRANCH_VIDEO = "branch_video", "支所からのオンライン相談"


class BookingStatus(LabelledEnum):
    BOOKED = "booked", "予約済"
    CANCELLED = "cancelled", "取消"
    CHECKED_IN = "checked_in", "来所・受付済"
    NO_SHOW = "no_show", "無断欠席"


class BookingSlot(db.Model):
    """One bookable time of one mode: the counter row that seats are taken from.

    `booked` only ever changes through a conditional UPDATE (`booked < capacity`), which holds
    on SQLite and PostgreSQL alike; rows are created on first use.
    """

    __tablename__ = "booking_slot"
    __table_args__ = (
        # The kind is part of the key: a specialist session at 10:00 has its own seats, apart
        # from the counter's. 0 (never NULL) for the ordinary slots, because PostgreSQL treats
        # NULLs as distinct and would let two rows hold the same slot.
        sa.UniqueConstraint("mode", "kind_key", "starts_at"),
        sa.CheckConstraint("booked >= 0", name="booked_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[Mode] = mapped_column(_enum(Mode))
    # SessionKind.id for a specialist session's slot, 0 for the centre's ordinary slots.
    kind_key: Mapped[int] = mapped_column(default=0, server_default="0")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booked: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<BookingSlot {self.id} {self.mode} booked={self.booked}>"


class SessionKind(db.Model):
    """A specialist session (専門相談) citizens book like a slot: 心理カウンセラー, 家計相談,
    経営相談会 (よろず支援拠点) and whatever else the administrators add.

    Each has its own days, hours, length, capacity and intake questions, and names the member of
    staff who holds it (the specialist), who sees their own list. Weekly days (`weekdays`, digits
    0-6 from Monday) run on ordinary days the centre is open; the dates the administrator chose
    (`SessionKindDate`) run whatever the day. With `dates_only` the kind runs on the chosen
    dates alone (the holiday business-consultation days).

    The names, descriptions and questions are data in both languages, never through gettext.
    """

    __tablename__ = "session_kind"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    description: Mapped[str | None] = mapped_column(sa.Text)
    description_en: Mapped[str | None] = mapped_column(sa.Text)
    mode: Mapped[Mode] = mapped_column(_enum(Mode), default=Mode.COUNTER)
    specialist_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    weekdays: Mapped[str] = mapped_column(sa.String(7), default="")
    dates_only: Mapped[bool] = mapped_column(default=False)
    opens: Mapped[time] = mapped_column(sa.Time)
    closes: Mapped[time] = mapped_column(sa.Time)
    slot_minutes: Mapped[int] = mapped_column(default=60)
    capacity: Mapped[int] = mapped_column(default=1)
    # [{"label": "…", "label_en": "…", "required": true}, …]
    questions: Mapped[list] = mapped_column(sa.JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    specialist: Mapped[Staff | None] = relationship()
    dates: Mapped[list[SessionKindDate]] = relationship(
        order_by="SessionKindDate.day", cascade="all, delete-orphan"
    )

    def public_name(self, language: str | None = "ja") -> str:
        """The name in the public page's language, falling back to the Japanese one."""
        return (self.name_en or self.name) if language == "en" else self.name

    def public_description(self, language: str | None = "ja") -> str:
        if language == "en":
            return self.description_en or self.description or ""
        return self.description or ""

    def question_label(self, question: dict, language: str | None = "ja") -> str:
        if language == "en" and question.get("label_en"):
            return question["label_en"]
        return question["label"]

    def __repr__(self) -> str:
        return f"<SessionKind {self.id} active={self.active}>"


class SessionKindDate(db.Model):
    """A date the administrator chose for a kind (a holiday 経営相談会, an extra day)."""

    __tablename__ = "session_kind_date"
    __table_args__ = (sa.UniqueConstraint("kind_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind_id: Mapped[int] = mapped_column(sa.ForeignKey("session_kind.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(sa.Date)


class Booking(db.Model):
    """A citizen's reserved session.

    Personal data: name, kana, email, phone, 相談内容 and, for a specialist session, the answers
    to the kind's intake questions (`intake`). Disposal and the disclosure bundle must reach all
    of them, `intake` included.
    """

    __tablename__ = "booking"
    __table_args__ = (
        # A seat (room) is held by one live booking; cancelled ones give their seat back (NULL).
        sa.UniqueConstraint("slot_id", "seat_no"),
        sa.Index("ix_booking_starts", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    uid: Mapped[str] = mapped_column(sa.String(120), unique=True)
    sequence: Mapped[int] = mapped_column(default=0)
    slot_id: Mapped[int] = mapped_column(sa.ForeignKey("booking_slot.id"), index=True)
    seat_no: Mapped[int | None] = mapped_column()
    mode: Mapped[Mode] = mapped_column(_enum(Mode))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[BookingStatus] = mapped_column(
        _enum(BookingStatus), default=BookingStatus.BOOKED
    )
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"))
    name: Mapped[str] = mapped_column(sa.String(80))
    kana: Mapped[str] = mapped_column(sa.String(80))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    content: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.String(5), default="ja")
    video_url: Mapped[str | None] = mapped_column(sa.String(500))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"))
    # A specialist session: its kind, and the answers to its intake questions (personal data),
    # kept as [{"label": question in Japanese, "answer": text}, …] so that a question changed
    # later does not change what the citizen answered.
    kind_id: Mapped[int | None] = mapped_column(sa.ForeignKey("session_kind.id"), index=True)
    intake: Mapped[list | None] = mapped_column(sa.JSON)
    # 支所からのオンライン相談: the branch office the citizen goes to; its account opens
    # `video_url` (the centre's meeting link, made from the template at booking time).
    branch_office_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("branch_office.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    slot: Mapped[BookingSlot] = relationship()
    category: Mapped[Category | None] = relationship()
    staff: Mapped[Staff | None] = relationship(foreign_keys=[staff_id])
    ticket: Mapped[Ticket | None] = relationship()
    kind: Mapped[SessionKind | None] = relationship()
    branch_office: Mapped[BranchOffice | None] = relationship()

    @property
    def mode_label(self) -> str:
        return Mode(self.mode).label

    @property
    def status_label(self) -> str:
        return BookingStatus(self.status).label

    @property
    def room_label(self) -> str:
        return f"{Mode(self.mode).label}{self.seat_no or ''}"

    def __repr__(self) -> str:
        return f"<Booking {self.id} {self.status}>"


class BookingConfig(db.Model):
    """The administrator's settings (one row): slot length, lead time, horizon."""

    __tablename__ = "booking_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_minutes: Mapped[int] = mapped_column(default=30)
    min_lead_minutes: Mapped[int] = mapped_column(default=60)
    horizon_days: Mapped[int] = mapped_column(default=56)


class BookingCapacity(db.Model):
    """How many sessions of a mode run at once on a type of day (rooms, lines, video seats)."""

    __tablename__ = "booking_capacity"
    __table_args__ = (sa.UniqueConstraint("mode", "day_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[Mode] = mapped_column(_enum(Mode))
    day_type: Mapped[str] = mapped_column(sa.String(20))
    capacity: Mapped[int] = mapped_column(default=1)


class CalendarFeed(db.Model):
    """A private iCalendar feed (a room's or a staff member's); only the token's hash is kept."""

    __tablename__ = "calendar_feed"
    __table_args__ = (sa.UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10))  # "room" | "staff"
    key: Mapped[str] = mapped_column(sa.String(40))  # "counter:1" | staff id
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
