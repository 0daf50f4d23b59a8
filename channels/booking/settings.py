"""Booking's settings section (MADOGUCHI_BOOKING_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class BookingSettings(Section):
    PREFIX = "BOOKING_"

    # Per client address, across every process (limits separated by ';').
    rate_limit: str = "30 per hour;10 per minute"
    # Where a counter session takes place (in the invitation and the confirmation).
    place: str = "市民相談センター 窓口"
