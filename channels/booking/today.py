"""The booking block of the 今日 page: today's bookings that are mine or nobody's yet."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from channels.booking.models import Booking, BookingStatus
from consult.extensions import db
from consult.models import Staff
from consult.timeutil import TOKYO, tokyo_today


def section(staff: Staff, now: datetime):
    """One query: today's (Tokyo) bookings not cancelled, assigned to me or to nobody."""
    day = tokyo_today(now)
    start = datetime.combine(day, time(0), TOKYO)
    rows = list(
        db.session.scalars(
            sa.select(Booking)
            .where(
                Booking.starts_at >= start,
                Booking.starts_at < start + timedelta(days=1),
                Booking.status != BookingStatus.CANCELLED,
                sa.or_(Booking.staff_id == staff.id, Booking.staff_id.is_(None)),
            )
            .options(selectinload(Booking.category))
            .order_by(Booking.starts_at, Booking.id)
            .limit(200)
        )
    )
    return "booking/staff/_today.html", {"bookings": rows, "me": staff.id, "today_day": day}
