"""Mail to the citizen, in the language they booked in, queued in the booking's transaction."""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale, gettext

from channels.booking import ical
from channels.booking.models import Booking
from consult.i18n import localized_setting
from consult.services.mail import enqueue_mail


def _send(booking: Booking, template: str, subject: str, with_invitation: bool = True) -> None:
    if not booking.email:
        return  # phone-only bookings: the desk confirms by phone
    from channels.booking.transfer import on_relay

    if on_relay():
        return  # the core sends it, once it has the booking (channels.booking.transfer)
    from channels.booking.services import manage_url

    with force_locale(booking.language):
        text = current_app.jinja_env.get_template(f"booking/mail/{template}.txt").render(
            booking=booking,
            manage_url=manage_url(booking),
            place=ical.location(booking, gettext, booking.language),
            centre_name=localized_setting("CENTRE_NAME", booking.language),
        )
        attachments = []
        if with_invitation:
            method = "CANCEL" if template == "cancelled" else "REQUEST"
            attachments.append(
                {
                    "filename": "invite.ics",
                    "content_type": f"text/calendar; method={method}; charset=UTF-8",
                    "text": ical.invitation(booking, gettext, language=booking.language),
                }
            )
        enqueue_mail(
            to=booking.email,
            subject=f"{gettext(subject)} [{booking.reference}]",
            text=text,
            attachments=attachments,
        )


def confirmation(booking: Booking) -> None:
    _send(booking, "confirmation", "ご相談の予約を受け付けました")


def moved(booking: Booking) -> None:
    _send(booking, "moved", "ご相談の予約を変更しました")


def cancelled(booking: Booking) -> None:
    _send(booking, "cancelled", "ご相談の予約を取り消しました")


def reminder(booking: Booking) -> None:
    _send(booking, "reminder", "明日のご相談予約のお知らせ", with_invitation=False)
