"""A second press of a form's button while the first is on its way sends nothing: one ticket
at the counter, one booking on the public page. Without the page's guard both presses reached
the server and made two of each. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from channels.booking.models import Booking
from consult.extensions import db
from consult.models import Ticket
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


def _count(server, model) -> int:
    with server.app.app_context():
        try:
            return db.session.scalar(sa.select(sa.func.count()).select_from(model))
        finally:
            db.session.remove()


def _slow_posts(server, seconds: float = 0.4) -> None:
    """Answers to POSTs take a while, as on a busy day: the second press comes before it."""
    import time

    inner = server.app.wsgi_app

    def slow(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            time.sleep(seconds)
        return inner(environ, start_response)

    server.app.wsgi_app = slow


def _press_twice(page: Page, button) -> None:
    """Two presses 150 ms apart, the first request already on its way (a quick double click
    is merged by the browser itself; an impatient second press is not). Raw mouse presses:
    Playwright's own click would wait for the first navigation to end."""
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)


def test_a_second_press_at_the_counter_makes_one_ticket(live_server, page: Page, console_watch):
    _slow_posts(live_server)
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("住民票・戸籍")
    log_in(page, live_server.url, login, password)
    page.goto(f"{live_server.url}/counter/new")
    expect(page.get_by_role("heading", name="窓口受付", level=1)).to_be_visible()
    page.get_by_label("分類").select_option(label=category)
    page.get_by_label("最初のメモ（ご用件）").fill("転居の届出について")
    _press_twice(page, page.get_by_role("button", name="受け付けて受付番号を発行"))
    # The first answer is slowed on purpose: on a loaded machine it takes a while more.
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"), timeout=30_000)
    expect(page.locator(".visit-panel")).to_contain_text("受付番号")
    page.wait_for_timeout(1000)  # a second POST, had it left, would have landed by now
    assert _count(live_server, Ticket) == 1


def test_a_second_press_on_the_public_booking_makes_one_booking(
    live_server, page: Page, console_watch
):
    _slow_posts(live_server)
    page.goto(f"{live_server.url}/booking/")
    page.get_by_role("radio", name="窓口").check()
    page.get_by_role("button", name="空いている日時を見る").click()
    slot = page.locator(".slot-list a").first
    if not slot.count():
        page.get_by_role("link", name="次の週").click()
        slot = page.locator(".slot-list a").first
    slot.click()
    page.get_by_label(re.compile("^氏名")).fill("山田 花子")
    page.get_by_label("ふりがな").fill("やまだ はなこ")
    page.get_by_label("電話番号").fill("0878392111")
    page.get_by_label("相談内容").fill("相続の手続きについて")
    page.get_by_role("checkbox", name="個人情報の取扱いに同意します").check()
    _press_twice(page, page.get_by_role("button", name="予約する"))
    expect(page.get_by_role("status")).to_contain_text("予約を受け付けました。", timeout=30_000)
    page.wait_for_timeout(1000)
    assert _count(live_server, Booking) == 1
