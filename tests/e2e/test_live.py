"""The live channel in two browsers: what one person does appears on another's open page
without a reload, and a page whose session ended says so. Assertions wait for the element."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.test_desk import log_in, receive_walk_in, ticket_number_of
from tests.e2e.test_handoff import make_department

pytestmark = pytest.mark.e2e

LIVE_MS = 3_000


def test_the_officer_sees_a_new_handoff_and_the_desk_a_new_consultation(live_server, new_page):
    department_id = make_department(live_server, "市民課")
    category = live_server.make_category("住民票・戸籍")
    consultant_login, password = live_server.make_staff("consultant")
    colleague_login, _ = live_server.make_staff("consultant")
    officer_login, _ = live_server.make_staff("officer", department_id=department_id)

    officer = new_page()
    log_in(officer, live_server.url, officer_login, password)
    expect(officer).to_have_url(re.compile(r"/handoffs"))
    expect(officer.locator("main")).to_contain_text("該当する引継ぎはありません。")
    officer.evaluate("window.__notReloaded = true")

    queue = new_page()
    log_in(queue, live_server.url, colleague_login, password)
    expect(queue.get_by_role("heading", name="相談一覧", level=1)).to_be_visible()
    queue.evaluate("window.__notReloaded = true")

    desk = new_page()
    log_in(desk, live_server.url, consultant_login, password)
    receive_walk_in(desk, category, 2, "転入届の書き方がわからない")
    number = ticket_number_of(desk)

    # The colleague's 相談一覧 shows the new consultation, quietly highlighted.
    row = queue.locator("tr[data-ticket-id]").filter(has_text=number)
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row).to_have_class(re.compile("is-fresh"))

    desk.get_by_text("担当課に引き継ぐ").click()
    desk.get_by_label("引継ぎ先を絞り込む").fill("市民")
    desk.get_by_label("引継ぎ先（担当課・外部機関）").select_option(label="市民課")
    desk.get_by_label("担当課への伝達事項").fill("転入届の記載を窓口で一緒に確認してください。")
    desk.get_by_label("求める対応").select_option(label="来庁して対応")
    desk.get_by_role("button", name="引継ぎを依頼する").click()
    expect(desk.locator("#handoffs")).to_contain_text("依頼中")

    # The officer's 新着: the row, the tab's count and the count in the title, no reload.
    inbox_row = officer.locator("#handoff-inbox tr[data-handoff-id]").filter(has_text=number)
    expect(inbox_row).to_be_visible(timeout=LIVE_MS)
    expect(inbox_row).to_contain_text("依頼中")
    expect(officer.locator("#handoff-tabs")).to_contain_text("新着 1")
    expect(officer).to_have_title(re.compile(r"^\(1\) "))
    # The queue's row follows: 引継中 and the department's badge, in place.
    expect(row).to_contain_text("引継中", timeout=LIVE_MS)
    expect(row).to_contain_text("市民課：依頼中", timeout=LIVE_MS)

    # The consultant cancels it: the officer's row changes in place.
    desk.get_by_text("追加情報・取消").click()
    desk.get_by_label("取消の理由").fill("相談者が帰宅されたため")
    desk.get_by_role("button", name="この引継ぎを取り消す").click()
    expect(desk.locator("#handoffs")).to_contain_text("取消")
    expect(inbox_row).to_have_class(re.compile("is-stale"), timeout=LIVE_MS)

    assert officer.evaluate("window.__notReloaded === true"), "the inbox was reloaded"
    assert queue.evaluate("window.__notReloaded === true"), "the queue was reloaded"


def test_a_session_ended_in_another_tab_is_said_with_a_link_to_sign_in(live_server, new_page):
    support_login, password = live_server.make_staff("support")
    page = new_page()
    log_in(page, live_server.url, support_login, password)
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    other = page.context.new_page()
    other.goto(live_server.url + "/")
    other.get_by_role("button", name="ログアウト").click()
    banner = page.locator("#live-status")
    expect(banner).to_contain_text(
        "ログインの有効期限が切れました。再度ログインしてください。", timeout=LIVE_MS + 2_000
    )
    expect(banner.get_by_role("link", name="ログイン画面へ")).to_have_attribute("href", "/login")


def test_a_dropped_connection_is_said_and_nothing_is_missed(live_server, new_page, console_watch):
    department_id = make_department(live_server, "市民課")
    officer_login, password = live_server.make_staff("officer", department_id=department_id)
    consultant_login, _ = live_server.make_staff("consultant")
    page = new_page()
    log_in(page, live_server.url, officer_login, password)
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")

    # The stream is cut and cannot come back for a while: the page says so and keeps trying.
    page.route("**/live/stream**", lambda route: route.abort())
    console_watch.expect(r"net::ERR_FAILED.*/live/stream")  # the refused stream, on purpose
    from consult.live import services as live_services

    with live_server.app.app_context():
        live_services.end_streams(db.engine)  # the server ends its held streams (a restart)
    expect(page.locator("#live-status")).to_contain_text(
        "接続が切れています。再接続しています…", timeout=LIVE_MS + 2_000
    )

    # Meanwhile a handoff is made; when the stream is back, it arrives once.
    from consult.models import Channel, Staff
    from consult.services import tickets
    from consult.services.actor import Actor
    from handoff import services as handoffs
    from handoff.models import Response

    with live_server.app.app_context():
        import sqlalchemy as sa

        consultant = db.session.scalar(sa.select(Staff).where(Staff.login == consultant_login))
        actor = Actor(consultant)
        ticket = tickets.create_ticket(actor, channel=Channel.COUNTER, subject="住民票について")
        handoffs.create(
            actor, ticket, [handoffs.Request(department_id, "確認をお願いします。", Response.VISIT)]
        )
        db.session.commit()
        number = ticket.number
        db.session.remove()

    page.unroute("**/live/stream**")
    expect(page.locator("#live-status")).to_be_hidden(timeout=10_000)
    rows = page.locator("#handoff-inbox tr[data-handoff-id]").filter(has_text=number)
    expect(rows).to_have_count(1, timeout=LIVE_MS)


def hand_over_from_the_server(live_server, consultant_login: str, department_id: int) -> str:
    """A walk-in handed to the department, made in the server's process; its number."""
    import sqlalchemy as sa

    from consult.models import Channel, Staff
    from consult.services import tickets
    from consult.services.actor import Actor
    from handoff import services as handoffs
    from handoff.models import Response

    with live_server.app.app_context():
        consultant = db.session.scalar(sa.select(Staff).where(Staff.login == consultant_login))
        actor = Actor(consultant)
        ticket = tickets.create_ticket(actor, channel=Channel.COUNTER, subject="住民票について")
        handoffs.create(
            actor, ticket, [handoffs.Request(department_id, "確認をお願いします。", Response.VISIT)]
        )
        db.session.commit()
        number = ticket.number
        db.session.remove()
    return number


# A proxy that buffers the stream: the request for it never answers (its ?poll=1 does).
STREAM_NOT_POLL = re.compile(r"/live/stream\?(?![^#]*poll=1)")
COUNT_EVENTS = """() => {
  window.__seen = {};
  madoguchi.live.on("*", (payload, event) => {
    window.__seen[event.id] = (window.__seen[event.id] || 0) + 1;
  });
}"""


def test_a_stream_that_never_opens_falls_back_to_polling_and_push_comes_back(live_server, new_page):
    department_id = make_department(live_server, "市民課")
    officer_login, password = live_server.make_staff("officer", department_id=department_id)
    consultant_login, _ = live_server.make_staff("consultant")
    page = new_page()
    # Try push again every 3 s (60 s in production), so that the test sees it come back.
    page.add_init_script("window.madoguchiLiveTiming = { retryMs: 3000 };")
    held = []

    def hold(route):
        held.append(route)  # never answered

    page.route(STREAM_NOT_POLL, hold)
    log_in(page, live_server.url, officer_login, password)
    page.wait_for_function("() => window.madoguchi && window.madoguchi.live.polling")
    page.evaluate(COUNT_EVENTS)
    page.evaluate("window.__notReloaded = true")

    # No hello within 5 s: the page polls, and says it is connected (it is).
    page.wait_for_function("() => madoguchi.live.polling()", timeout=10_000)
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    expect(page.locator("#live-status")).to_be_hidden()

    first = hand_over_from_the_server(live_server, consultant_login, department_id)
    rows = page.locator("#handoff-inbox tr[data-handoff-id]")
    expect(rows.filter(has_text=first)).to_have_count(1, timeout=LIVE_MS + 3_000)
    assert held, "the page never tried the stream"

    # The proxy is fixed: push comes back by itself, and takes over from the same cursor.
    page.unroute(STREAM_NOT_POLL, hold)
    page.wait_for_function("() => !madoguchi.live.polling()", timeout=15_000)
    second = hand_over_from_the_server(live_server, consultant_login, department_id)
    expect(rows.filter(has_text=second)).to_have_count(1, timeout=LIVE_MS)
    expect(rows.filter(has_text=first)).to_have_count(1)
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")

    # Every event arrived once: none lost in the switch, none shown twice.
    seen = page.evaluate("window.__seen")
    assert seen and all(count == 1 for count in seen.values()), seen
    assert page.evaluate("window.__notReloaded === true"), "the inbox was reloaded"
