"""Bookings, the per-slot seat counter, capacity per day type and the private calendar feeds.

The centre's calendar (administrators' exceptions, the closed-day duty rota) is the kernel's:
`consult.models.CalendarException` and `consult.models.DutyAssignment`.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.extensions import db
from consult.models import Category, Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class Mode(enum.StrEnum):
    COUNTER = "counter"
    PHONE = "phone"
    VIDEO = "video"


# Japanese msgids: the public pages translate them with gettext, staff pages show them as is.
MODE_LABELS = {Mode.COUNTER: "窓口", Mode.PHONE: "電話", Mode.VIDEO: "オンライン"}


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    CHECKED_IN = "checked_in"
    NO_SHOW = "no_show"


BOOKING_STATUS_LABELS = {
    BookingStatus.BOOKED: "予約済",
    BookingStatus.CANCELLED: "取消",
    BookingStatus.CHECKED_IN: "来所・受付済",
    BookingStatus.NO_SHOW: "無断欠席",
}


class BookingSlot(db.Model):
    """One bookable time of one mode: the counter row that seats are taken from.

    `booked` only ever changes through a conditional UPDATE (`booked < capacity`), which holds
    on SQLite and PostgreSQL alike; rows are created on first use.
    """

    __tablename__ = "booking_slot"
    __table_args__ = (
        sa.UniqueConstraint("mode", "starts_at"),
        sa.CheckConstraint("booked >= 0", name="booked_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[Mode] = mapped_column(_enum(Mode))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booked: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<BookingSlot {self.id} {self.mode} booked={self.booked}>"


class Booking(db.Model):
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    slot: Mapped[BookingSlot] = relationship()
    category: Mapped[Category | None] = relationship()
    staff: Mapped[Staff | None] = relationship(foreign_keys=[staff_id])
    ticket: Mapped[Ticket | None] = relationship()

    @property
    def mode_label(self) -> str:
        return MODE_LABELS[self.mode]

    @property
    def status_label(self) -> str:
        return BOOKING_STATUS_LABELS[self.status]

    @property
    def room_label(self) -> str:
        return f"{MODE_LABELS[self.mode]}{self.seat_no or ''}"

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
