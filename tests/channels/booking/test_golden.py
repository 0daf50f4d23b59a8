"""The booking's iCalendar invitation, as attached to the confirmation (tests/fixtures/golden/)."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from channels.booking.models import Booking
from consult.extensions import db
from consult.models import OutboxMessage
from tests.golden import assert_golden, replace_all, replace_patterns

from .helpers import form_data, slot_in


def test_the_invitation_is_as_in_the_golden_file(client, app):
    """Tokyo time zone, the attendee and organizer, the reference: what a calendar app reads."""
    start = slot_in(7)
    response = client.post("/booking/details", data=form_data(start))
    assert response.status_code == 303
    booking = db.session.scalar(sa.select(Booking))
    mail = db.session.scalar(sa.select(OutboxMessage))
    [attachment] = mail.headers["attachments"]
    ics = base64.b64decode(attachment["data"]).decode("utf-8")
    # The booking's own values (its UID, reference and day) first, then the stamps of the build.
    text = replace_all(
        ics,
        {
            booking.uid: "<BOOKING-UID>",
            booking.reference: "<REFERENCE>",
            f"{start:%Y%m%d}": "<DAY>",
        },
    )
    text = replace_patterns(
        text,
        {
            r"^UID:[0-9a-f-]{36}(?=\r$)": "UID:<CALENDAR-UID>",
            r"^DTSTAMP:\d{8}T\d{6}Z(?=\r$)": "DTSTAMP:<NOW>",
        },
    )
    assert_golden("booking-invitation.ics", text)
