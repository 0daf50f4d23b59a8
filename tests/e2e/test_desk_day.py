"""A consultant's day in a browser: the officer's inbox read on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.conftest import keep_screenshot
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
    assert _overflow(page) <= 0
    # 市民課 on one line (it was wrapped one character per line in a squeezed column).
    cell = page.locator("#handoff-inbox td", has_text="市民課").first
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    assert cell.bounding_box()["height"] < 2 * line, cell.bounding_box()
    # The tabs wrap as whole words: 「対応中」 on one line too.
    tab = page.locator("#handoff-tabs a", has_text="対応中")
    assert tab.bounding_box()["height"] < 2 * line + 20, tab.bounding_box()


def _overflow(page) -> int:
    """How far the page is wider than the screen (0: no sideways scrolling).

    Measured once the page and its stylesheets have loaded: on a loaded machine a step's
    button can be visible while the stylesheet is still on its way, and the unstyled page is
    wider (the handoff's long URL, unwrapped) than anything a user sees once it arrives.
    """
    page.wait_for_load_state("load")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('link[rel=stylesheet]')).every(l => l.sheet)"
    )
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def test_the_officer_steps_fit_a_phone_from_accepting_to_the_record(live_server, new_page):
    """The handoff's page and each of the officer's steps at 375 px: accept, on the way,
    arrived, the 対応記録; nothing wider than the screen at any step."""
    from consult.models import Channel
    from consult.services import tickets
    from consult.services.actor import Actor
    from handoff import services as handoff_services
    from handoff.models import Response

    department_id = make_department(live_server, "国民健康保険・高齢者医療課")
    officer_login, password = live_server.make_staff("officer", department_id=department_id)
    with live_server.app.app_context():
        ticket = tickets.create_ticket(
            Actor.command_line(),
            channel=Channel.COUNTER,
            subject="国民健康保険料の減免申請と分割納付について（長い件名の折り返しを確かめる）",
        )
        (handoff,) = handoff_services.create(
            Actor.command_line(),
            ticket,
            [
                handoff_services.Request(
                    department_id,
                    "失業により収入が減ったため、保険料の減免と分割納付を相談したいとのこと。"
                    "https://www.city.example.lg.jp/kurashi/kokuho/genmen/shinsei-youshiki.html"
                    " の様式を持参済み。",
                    Response.VISIT,
                )
            ],
        )
        db.session.commit()
        handoff_id = handoff.id
        db.session.remove()

    page = new_page()
    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, officer_login, password)
    page.goto(f"{live_server.url}/handoffs/{handoff_id}")
    steps = page.get_by_role("heading", name="対応")
    expect(steps).to_be_visible()
    keep_screenshot(page, "desk-day-officer-detail.png")
    assert _overflow(page) <= 0, "the handoff page"

    page.get_by_role("button", name="受け付ける").click()
    expect(page.get_by_role("button", name="窓口へ向かいます")).to_be_visible()
    assert _overflow(page) <= 0, "accepted"

    page.get_by_label("到着までの目安").or_(page.locator("[name=eta_minutes]")).first.fill("10")
    page.get_by_role("button", name="窓口へ向かいます").click()
    expect(page.get_by_role("button", name="窓口に到着しました")).to_be_visible()
    assert _overflow(page) <= 0, "on the way"

    page.get_by_role("button", name="窓口に到着しました").click()
    expect(page.get_by_role("button", name="対応記録を登録して完了")).to_be_visible()
    assert _overflow(page) <= 0, "arrived"
    keep_screenshot(page, "desk-day-officer-record.png")
    # Each field of the record is as wide as the screen allows, not wider.
    for name in ("action", "outcome"):
        box = page.locator(f"[name={name}]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)

    page.locator("[name=action]").fill("窓口で減免申請書の記入を案内した。")
    page.locator("[name=outcome]").fill("申請を受理。分割納付は来月相談。")
    page.get_by_role("button", name="対応記録を登録して完了").click()
    expect(page.get_by_text("対応内容：窓口で減免申請書の記入を案内した。")).to_be_visible()
    assert _overflow(page) <= 0, "done"
    keep_screenshot(page, "handoff-officer-phone.png")
