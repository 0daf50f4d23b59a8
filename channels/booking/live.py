"""Bookings on the live channel: the desk's day and week views and a branch office's page
follow a booking made, moved, cancelled or received elsewhere (the public page, a consultant,
the relay) without a reload.

The event names the booking and its Japanese day only; the pages fetch themselves again."""

from __future__ import annotations

from channels.booking.models import Booking
from consult.timeutil import to_tokyo


def changed(booking: Booking, action: str, *, also_day=None) -> None:
    """Publish in the caller's transaction; `also_day` is the day a moved booking left."""
    from channels.booking import transfer
    from consult.live import services as live

    if transfer.on_relay():
        return  # no staff page reads the relay's events
    days = {to_tokyo(booking.starts_at).date().isoformat()}
    if also_day is not None:
        days.add(to_tokyo(also_day).date().isoformat())
    audience = ["desk"]
    if booking.branch_office_id is not None:
        audience.append(f"branch:{booking.branch_office_id}")
    for day in sorted(days):
        live.publish(
            "booking.changed",
            audience,
            {"booking_id": booking.id, "day": day, "action": action},
        )
