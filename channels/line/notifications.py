"""What the LINE channel says to citizens: the texts are templates under templates/line/messages/.

Plain text (no HTML escaping: `.txt` templates are not autoescaped), rendered with the app's
Jinja environment without a request (the worker has none). Callers put the result in the outbox
(channels.line.services.outgoing); nothing here sends.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from consult import urls
from consult.models import Ticket
from consult.services import calendar
from consult.timeutil import WEEKDAYS_JA, to_tokyo

# Linking is an explicit step: the citizen taps this (a quick reply, or the rich menu's postback
# ``action=link``), then sends the number and the code. Text alone never links.
LINK_STEP_LABEL = "相談番号と連携する"

MENU_ACTIONS = ("link", "consult", "booking", "faq")


def _render(name: str, **values) -> str:
    return current_app.jinja_env.get_template(f"line/messages/{name}.txt").render(**values)


def _public_url(path: str) -> str:
    return urls.base_url() + path


def greeting(at: datetime) -> str:
    """The answer to a follow (友だち追加): who we are, the hours, how to link, privacy."""
    return _render(
        "greeting",
        centre=current_app.config["MADOGUCHI"]["CENTRE_NAME"],
        hours=calendar.hours_summary(calendar.to_tokyo_date(at)),
        link_step=LINK_STEP_LABEL,
        faq_url=_public_url("/faq"),
    )


def received(ticket: Ticket) -> str:
    """The acknowledgement of a first message in hours."""
    return _render("received", ticket=ticket)


def out_of_hours(ticket: Ticket, at: datetime, opening: datetime) -> str:
    """A message out of hours: when a consultant will answer."""
    return _render(
        "out_of_hours",
        ticket=ticket,
        opening=_opening_text(opening),
        hours=calendar.hours_summary(calendar.to_tokyo_date(at)),
    )


def link_refused() -> str:
    """A number and code that link nothing: what to do next."""
    return _render("link_refused", link_step=LINK_STEP_LABEL)


def menu_answer(action: str) -> str:
    """The answer to a rich menu button (postback ``action=``), one of MENU_ACTIONS."""
    if action == "consult":
        return _render("menu_consult", hours=calendar.hours_summary())
    if action == "booking":
        return _render("menu_booking", booking_url=_public_url("/booking/"))
    if action == "faq":
        return _render("menu_faq", faq_url=_public_url("/faq"))
    return _render("menu_link")


def _opening_text(opening: datetime) -> str:
    local = to_tokyo(opening)
    return f"{local.month}月{local.day}日({WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"
