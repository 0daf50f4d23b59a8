"""The help button in two real browsers: the consultant asks, the support room answers.

Two browser contexts (two members of staff signed in at once): the support-room member's open
page shows the alert within 2 seconds, they answer 向かいます, and the consultant sees who is
coming, all without reloading either page.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


def test_help_alert_reaches_the_support_room_and_the_answer_comes_back(live_server, new_page):
    consultant_login, password = live_server.make_staff("consultant", full_name="窓口 一郎")
    support_login, _ = live_server.make_staff("support", full_name="安心 守")
    desk, room = new_page(), new_page()
    log_in(room, live_server.url, support_login, password)
    expect(room.locator("#alerts-live")).to_be_hidden()
    log_in(desk, live_server.url, consultant_login, password)
    desk.goto(f"{live_server.url}/counter/new")

    desk.get_by_label("場所").select_option(label="相談室2")
    desk.keyboard.press("Alt+H")  # the documented shortcut
    started = time.monotonic()
    alert = room.locator("#alerts-live .alert-live__item")
    expect(alert).to_contain_text("応援要請：相談室2", timeout=2_000)
    assert time.monotonic() - started < 2.0
    expect(alert).to_contain_text("窓口 一郎")

    alert.get_by_role("button", name="向かいます").click()
    own = desk.locator("#alerts-live .alert-live__item")
    expect(own).to_contain_text("安心 守：向かいます", timeout=3_000)
    expect(alert.get_by_role("button", name="向かいます")).to_be_disabled()

    alert.get_by_role("button", name="到着").click()
    expect(own).to_contain_text("安心 守：到着", timeout=3_000)
    own.get_by_role("button", name="対応終了").click()
    expect(room.locator("#alerts-live")).to_be_hidden(timeout=3_000)
