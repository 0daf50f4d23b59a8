"""A consultant's day in a browser: the officer's inbox read on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.test_desk import log_in
from tests.e2e.test_handoff import make_department

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 812}


def test_the_officer_inbox_fits_a_phone(live_server, new_page):
    from consult.models import Channel
    from consult.services import tickets
    from consult.services.actor import Actor
    from handoff import services as handoff_services
    from handoff.models import Response

    department_id = make_department(live_server, "市民課")
    officer_login, password = live_server.make_staff("officer", department_id=department_id)
    with live_server.app.app_context():
        ticket = tickets.create_ticket(
            Actor.command_line(), channel=Channel.COUNTER, subject="転入届の書き方"
        )
        handoff_services.create(
            Actor.command_line(),
            ticket,
            [handoff_services.Request(department_id, "記載を確認してください。", Response.VISIT)],
        )
        db.session.commit()
        number = ticket.number
        db.session.remove()

    page = new_page()
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, officer_login, password)
    page.goto(f"{live_server.url}/handoffs")
    expect(page.get_by_role("link", name=number)).to_be_visible()
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # 市民課 on one line (it was wrapped one character per line in a squeezed column).
    cell = page.locator("#handoff-inbox td", has_text="市民課").first
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    assert cell.bounding_box()["height"] < 2 * line, cell.bounding_box()
    # The tabs wrap as whole words: 「対応中」 on one line too.
    tab = page.locator("#handoff-tabs a", has_text="対応中")
    assert tab.bounding_box()["height"] < 2 * line + 20, tab.bounding_box()
