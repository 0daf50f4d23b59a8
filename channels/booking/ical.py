"""iCalendar out: the citizen's invitation (REQUEST/CANCEL) and the private feeds.

icalendar 7: `Calendar.new`/`Event.new`, times as zoneinfo Asia/Tokyo, and
`add_missing_timezones()` for the VTIMEZONE; parsing is always from bytes.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from icalendar import Calendar, Event, vCalAddress

from channels.booking.models import Booking, BookingStatus, Mode
from consult.i18n import localized_setting
from consult.timeutil import to_tokyo, utcnow

PRODID = "-//madoguchi//booking//JA"


def _settings() -> dict:
    return current_app.config["MADOGUCHI"]


def location(booking: Booking, translate=lambda s: s, language: str = "ja") -> str:
    if booking.mode is Mode.COUNTER:
        # The place is the administrator's setting: data, so never through the catalog.
        return localized_setting("BOOKING_PLACE", language)
    if booking.mode is Mode.PHONE:
        return translate("センターからお電話します")
    if booking.mode is Mode.BRANCH_VIDEO:
        # The citizen goes to the branch; the meeting link is the branch account's, not theirs.
        office = booking.branch_office
        name = office.public_name(language) if office is not None else ""
        if office is not None and office.address:
            return (
                f"{name}（{office.address}）" if language != "en" else f"{name} ({office.address})"
            )
        return name
    return booking.video_url or translate("オンライン（会議のURLは別途お知らせします）")


def _summary(booking: Booking, translate, language: str) -> str:
    """「市民相談センター ご相談予約（窓口）」; a specialist session names its kind, which is
    data in both languages, never through the catalog: 「…（心理カウンセラー・窓口）」."""
    head = translate("市民相談センター ご相談予約")
    if booking.kind is not None:
        return f"{head}（{booking.kind.public_name(language)}・{translate(booking.mode_label)}）"
    return f"{head}（{translate(booking.mode_label)}）"


def booking_event(
    booking: Booking,
    *,
    stamp: datetime | None = None,
    translate=lambda s: s,
    summary: str | None = None,
    attendee: bool = True,
    language: str = "ja",
) -> Event:
    settings = _settings()
    organizer = vCalAddress.new(settings["MAIL_FROM"], cn=settings["CENTRE_NAME"])
    attendees = []
    if attendee and booking.email:
        attendees.append(vCalAddress.new(booking.email, rsvp=False))
    cancelled = booking.status is BookingStatus.CANCELLED
    event = Event.new(
        uid=booking.uid,
        sequence=booking.sequence,
        stamp=stamp or utcnow(),
        start=to_tokyo(booking.starts_at),
        end=to_tokyo(booking.ends_at),
        summary=summary or _summary(booking, translate, language),
        location=location(booking, translate, language),
        organizer=organizer,
        attendees=attendees,
        status="CANCELLED" if cancelled else "CONFIRMED",
        description=translate("予約番号") + f": {booking.reference}",
    )
    if booking.mode is Mode.VIDEO and booking.video_url:
        event.add("url", booking.video_url)
    return event


def invitation(
    booking: Booking, translate=lambda s: s, stamp: datetime | None = None, language: str = "ja"
) -> str:
    """METHOD:REQUEST for a new or moved booking, METHOD:CANCEL for a cancelled one."""
    method = "CANCEL" if booking.status is BookingStatus.CANCELLED else "REQUEST"
    cal = Calendar.new(method=method, prodid=PRODID)
    cal.add_component(booking_event(booking, stamp=stamp, translate=translate, language=language))
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")


def feed(name: str, bookings: list[Booking]) -> str:
    """A staff calendar: times, mode, room and reference; no name or 相談内容 leaves the system."""
    cal = Calendar.new(prodid=PRODID, name=name)
    for booking in bookings:
        cal.add_component(
            booking_event(
                booking,
                summary=f"予約 {booking.kind.name + ' ' if booking.kind else ''}"
                f"{booking.room_label} {booking.reference}",
                attendee=False,
            )
        )
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")
