"""The help button in two real browsers: the consultant asks, the support room answers.

Two browser contexts (two members of staff signed in at once): the support-room member's open
page shows the alert within 2 seconds, they answer 向かいます, and the consultant sees who is
coming, all without reloading either page.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import keep_screenshot
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


def test_the_phone_page_and_a_hardware_button_reach_the_support_room(live_server, new_page):
    """A consultant's work phone (375 px) and a registered one-button device: each press shows
    on the support room's open page without a reload, and the answer comes back to the phone."""
    import requests

    consultant_login, password = live_server.make_staff("consultant", full_name="窓口 二郎")
    support_login, _ = live_server.make_staff("support", full_name="安心 守")
    admin_login, _ = live_server.make_staff("admin")
    room, phone, admin = new_page(), new_page(), new_page()
    log_in(room, live_server.url, support_login, password)

    phone.set_viewport_size({"width": 375, "height": 740})
    log_in(phone, live_server.url, consultant_login, password)
    phone.goto(f"{live_server.url}/alerts/phone")
    button = phone.get_by_role("button", name="応援要請")
    expect(button).to_be_visible()
    assert button.bounding_box()["height"] >= 120  # a thumb finds it without looking
    assert phone.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    phone.get_by_label("場所（この端末で選択）").select_option(label="受付カウンター")
    button.click()
    alert = room.locator("#alerts-live .alert-live__item")
    expect(alert).to_contain_text("応援要請：受付カウンター", timeout=3_000)
    expect(alert).to_contain_text("窓口 二郎")
    alert.get_by_role("button", name="向かいます").click()
    expect(phone.locator("#alerts-live .alert-live__item")).to_contain_text(
        "安心 守：向かいます", timeout=3_000
    )
    keep_screenshot(phone, "safety-phone.png")
    phone.locator("#alerts-live .alert-live__item").get_by_role("button", name="対応終了").click()
    expect(room.locator("#alerts-live")).to_be_hidden(timeout=3_000)

    # The administrator registers a desk button for the same consultant in 相談室3.
    log_in(admin, live_server.url, admin_login, password)
    admin.goto(f"{live_server.url}/admin/devices")
    admin.get_by_label("端末の名前").fill("相談室3 机下ボタン")
    admin.get_by_label("持つ職員").select_option(label="窓口 二郎（相談員）")
    admin.get_by_label("設置場所").select_option(label="相談室3")
    admin.get_by_role("button", name="登録して鍵を発行する").click()
    token = admin.locator("#new-token code.token").inner_text()
    keep_screenshot(admin, "safety-devices.png")
    assert token.startswith("mdv_")

    response = requests.post(
        f"{live_server.url}/alerts/device",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    expect(alert).to_contain_text("応援要請：相談室3", timeout=3_000)
    expect(alert).to_contain_text("窓口 二郎")
