"""In two browsers: the officer's 新着 says where to go for 来庁して対応 (room, reception number,
the consultant's display name) and the lobby display shows a call at once, without reload.
Assertions wait for the element, never sleep a fixed time."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import _serve
from tests.e2e.test_desk import called_item, log_in, receive_walk_in, ticket_number_of
from tests.e2e.test_handoff import make_department

pytestmark = pytest.mark.e2e

LIVE_MS = 3_000


def test_the_officer_sees_where_to_go_on_a_new_come_to_counter_handoff(live_server, new_page):
    department_id = make_department(live_server, "市民課")
    category = live_server.make_category("住民票・戸籍")
    consultant_login, password = live_server.make_staff(
        "consultant", display_name="やまだ / Yamada"
    )
    officer_login, _ = live_server.make_staff("officer", department_id=department_id)

    officer = new_page()
    log_in(officer, live_server.url, officer_login, password)
    expect(officer.locator("main")).to_contain_text("該当する引継ぎはありません。")
    expect(officer.locator("body")).to_have_attribute("data-live-state", "open")
    officer.evaluate("window.__notReloaded = true")

    desk = new_page()
    log_in(desk, live_server.url, consultant_login, password)
    reception = receive_walk_in(desk, category, 3, "転入届の書き方がわからない")
    number = ticket_number_of(desk)
    desk.get_by_text("担当課に引き継ぐ").click()
    desk.get_by_label("引継ぎ先（担当課・外部機関）").select_option(label="市民課")
    desk.get_by_label("担当課への伝達事項").fill("転入届の記載を窓口で一緒に確認してください。")
    desk.get_by_label("求める対応").select_option(label="来庁して対応")
    desk.get_by_role("button", name="引継ぎを依頼する").click()
    expect(desk.locator("#handoffs")).to_contain_text("依頼中")

    row = officer.locator("#handoff-inbox tr[data-handoff-id]").filter(has_text=number)
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.locator("[data-handoff-place]")).to_have_text(
        f"相談室3・受付番号 {reception}・担当 やまだ / Yamada"
    )
    assert officer.evaluate("window.__notReloaded === true"), "the inbox was reloaded"

    # The handoff's page says it too.
    row.get_by_role("link", name=number).click()
    expect(officer.locator("[data-handoff-room]")).to_have_text("相談室3")
    expect(officer.locator("[data-handoff-reception]")).to_have_text(reception)
    expect(officer.locator("[data-handoff-consultant]")).to_have_text("やまだ / Yamada")


@pytest.fixture
def slow_poll_server(app_factory):
    """The display's poll once in ten minutes: what appears sooner came through the stream."""
    with _serve(app_factory, DISPLAY_REFRESH_SECONDS=600) as server:
        yield server


def test_a_call_at_the_desk_appears_on_the_display_at_once(slow_poll_server, new_page):
    server = slow_poll_server
    login, password = server.make_staff("consultant")
    category = server.make_category("国民健康保険")

    display = new_page()  # a separate context: the public lobby screen, never signed in
    display.goto(f"{server.url}/display")
    expect(display.locator("body")).to_have_attribute("data-display-state", "open")
    navigations = []
    display.on("framenavigated", lambda frame: navigations.append(frame.url))

    desk = new_page()
    log_in(desk, server.url, login, password)
    reception = receive_walk_in(desk, category, 1, "国保の加入手続き")
    desk.get_by_label("相談室", exact=True).select_option(label="相談室2")
    desk.get_by_role("button", name="呼び出す").click()
    expect(desk.get_by_role("status").filter(has_text="呼び出しました。")).to_be_visible()

    item = called_item(display, reception)
    expect(item).to_be_visible(timeout=LIVE_MS)
    expect(item).to_contain_text("相談室2")
    assert navigations == [], f"the display reloaded: {navigations}"
    assert display.context.cookies() == [] or all(
        c["name"] != "session" for c in display.context.cookies()
    ), "the display holds a session"
    # The stream stays open afterwards, with no session behind it.
    expect(display.locator("body")).to_have_attribute("data-display-state", "open")
    assert re.fullmatch(r"\d+", display.evaluate("document.body.dataset.liveCursor"))


def test_the_display_falls_back_to_its_poll_when_the_stream_is_refused(
    live_server, new_page, console_watch
):
    console_watch.expect(r"net::ERR_FAILED.*/display/live")  # the refused stream, on purpose
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("国民健康保険")
    display = new_page()
    display.route("**/display/live**", lambda route: route.abort())
    display.goto(f"{live_server.url}/display")
    expect(display.locator("body")).to_have_attribute(
        "data-display-state", "polling", timeout=30_000
    )

    desk = new_page()
    log_in(desk, live_server.url, login, password)
    reception = receive_walk_in(desk, category, 1, "国保の加入手続き")
    desk.get_by_role("button", name="呼び出す").click()
    expect(desk.get_by_role("status").filter(has_text="呼び出しました。")).to_be_visible()
    # DISPLAY_REFRESH_SECONDS is 2 on the live server: a few rounds of the poll.
    expect(called_item(display, reception)).to_be_visible(timeout=8_000)
