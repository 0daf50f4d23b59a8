"""The desk in a real browser: walk-in reception, the lobby display, earlier-case matches.

Every page is watched for console errors and CSP violations (the console_watch fixture fails the
test on any), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ConsoleWatch

pytestmark = pytest.mark.e2e

# display.js polls every DISPLAY_REFRESH_SECONDS (2 in the live server): allow a few rounds.
DISPLAY_WAIT_MS = 8_000


def log_in(page: Page, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ログインID").or_(page.locator("input[name=login]")).first.fill(login)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


def receive_walk_in(page: Page, category: str, room: int, note: str) -> str:
    """Fill in 窓口受付 from the menu; returns the reception number shown on the ticket page."""
    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="窓口受付"
    ).click()
    expect(page.get_by_role("heading", name="窓口受付", level=1)).to_be_visible()
    page.get_by_label("分類").select_option(label=category)
    page.get_by_label("相談室").select_option(label=f"相談室{room}")
    page.get_by_label("最初のメモ（ご用件）").fill(note)
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"))
    panel = page.locator(".visit-panel")
    expect(panel).to_contain_text("受付番号")
    number = panel.locator(".visit-panel__number strong").inner_text().strip()
    assert number.isdigit(), number
    return number


def ticket_number_of(page: Page) -> str:
    match = re.search(r"/tickets/([^/#?]+)", page.url)
    assert match, page.url
    return match.group(1)


def called_item(display: Page, number: str):
    return display.locator("#called .display__item").filter(
        has=display.locator(".display__number", has_text=re.compile(rf"^{number}$"))
    )


def waiting_item(display: Page, number: str):
    section = display.locator("section").filter(
        has=display.get_by_role("heading", name=re.compile("お待ちの番号"))
    )
    return section.locator("span", has_text=re.compile(rf"^{number}$"))


def test_walk_in_reception_note_and_close(live_server, page, console_watch):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("住民票・戸籍")
    log_in(page, live_server.url, login, password)

    number = receive_walk_in(page, category, 2, "転居後の住民票の写しについて\n本人確認書類あり")

    expect(page.locator(".visit-panel")).to_contain_text("相談室2")
    expect(page.get_by_role("heading", name="転居後の住民票の写しについて")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text(f"窓口受付（受付番号 {number}・相談室2）")
    expect(timeline).to_contain_text("本人確認書類あり")
    expect(page.locator(".ticket-head__meta")).to_contain_text(f"分類：{category}")

    page.get_by_label("メモ", exact=True).fill("コンビニ交付の手順を案内した。")
    page.get_by_role("button", name="メモを追加").click()
    expect(page.get_by_role("status").filter(has_text="メモを追加しました。")).to_be_visible()
    expect(timeline).to_contain_text("コンビニ交付の手順を案内した。")

    # Closing without a summary is refused, with the message by the field. The page comes back
    # as 422, which Chromium logs; that one message is expected, nothing else is.
    console_watch.expect(r"status of 422 .*/tickets/[^/]+/close")
    page.get_by_role("button", name="完了にする").click()
    expect(page.locator(".close-form .field__error")).to_be_visible()

    page.get_by_label("対応結果の要約").fill("コンビニ交付の利用方法を案内し、解決。")
    page.get_by_role("button", name="完了にする").click()
    expect(page.get_by_role("status").filter(has_text="相談を完了にしました。")).to_be_visible()
    expect(page.locator(".ticket-head__meta .badge--status-closed")).to_have_text("完了")
    expect(page.get_by_text("コンビニ交付の利用方法を案内し、解決。").first).to_be_visible()
    expect(page.get_by_role("button", name="メモを追加")).to_have_count(0)

    stored = live_server.ticket(ticket_number_of(page))
    assert stored["status"] == "closed"
    assert stored["resolution_summary"] == "コンビニ交付の利用方法を案内し、解決。"


def test_waiting_display_follows_the_desk_without_reloading(live_server, new_page):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("国民健康保険")
    desk = new_page()
    log_in(desk, live_server.url, login, password)
    number = receive_walk_in(desk, category, 1, "国保の加入手続き")

    display = new_page()  # a separate context: the public lobby screen, not logged in
    display.goto(f"{live_server.url}/display")
    expect(display.get_by_role("heading", name=re.compile("お待ちの番号"))).to_be_visible()
    expect(waiting_item(display, number)).to_be_visible()
    expect(called_item(display, number)).to_have_count(0)
    navigations = []
    display.on("framenavigated", lambda frame: navigations.append(frame.url))

    desk.get_by_label("相談室", exact=True).select_option(label="相談室3")
    desk.get_by_role("button", name="呼び出す").click()
    expect(desk.get_by_role("status").filter(has_text="呼び出しました。")).to_be_visible()
    expect(desk.locator(".visit-panel")).to_contain_text("呼び出し中")

    item = called_item(display, number)
    expect(item).to_be_visible(timeout=DISPLAY_WAIT_MS)
    expect(item).to_contain_text("相談室3", timeout=DISPLAY_WAIT_MS)
    expect(waiting_item(display, number)).to_have_count(0)

    desk.get_by_role("button", name="窓口対応を終了").click()
    expect(desk.get_by_role("status").filter(has_text="窓口対応を終了しました。")).to_be_visible()
    expect(called_item(display, number)).to_have_count(0, timeout=DISPLAY_WAIT_MS)
    expect(waiting_item(display, number)).to_have_count(0)
    expect(display.locator("#called")).to_contain_text("ただいまお呼び出し中の番号はありません")
    assert navigations == [], f"the display reloaded: {navigations}"


def test_known_phone_number_shows_earlier_tickets_and_links_citizen(live_server, page):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("各種手続き")
    citizen_id, earlier = live_server.make_citizen_with_ticket(
        name="市民 一郎", phone="090-1234-5678", subject="児童手当の申請について"
    )
    log_in(page, live_server.url, login, password)
    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="窓口受付"
    ).click()
    # madoguchi.js is deferred: typing before it has run would fire no lookup.
    page.wait_for_load_state("load")

    with page.expect_response(re.compile(r"/citizens/match$")) as matched:
        page.get_by_role("textbox", name="電話番号").fill("09012345678")
    assert matched.value.status == 200
    matches = page.locator(".matches")
    expect(matches).to_contain_text("過去に相談のある方が見つかりました")
    expect(matches).to_contain_text("市民 一郎")
    expect(matches).to_contain_text("電話番号が一致")
    expect(matches.get_by_role("link", name=re.compile(re.escape(earlier)))).to_contain_text(
        "児童手当の申請について"
    )

    matches.get_by_role("button", name="この方として受け付ける").click()
    expect(matches).to_contain_text("市民 一郎 さんとして受け付けます。")
    assert page.locator("input[name=citizen_id]").input_value() == str(citizen_id)

    page.get_by_label("分類").select_option(label=category)
    page.get_by_label("最初のメモ（ご用件）").fill("児童手当の額の変更について")
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"))
    expect(page.locator(".visit-panel")).to_contain_text("受付番号")

    citizen_card = page.locator("section").filter(
        has=page.get_by_role("heading", name="相談者", exact=True)
    )
    expect(citizen_card.get_by_role("link", name="市民 一郎")).to_be_visible()
    earlier_card = page.locator("section").filter(
        has=page.get_by_role("heading", name="この相談者の過去の相談")
    )
    expect(earlier_card.get_by_role("link", name=earlier)).to_be_visible()

    assert live_server.ticket(ticket_number_of(page))["citizen_id"] == citizen_id


def test_pages_have_no_console_errors_or_csp_violations(live_server, new_page, console_watch):
    """Every page of the flows above, loaded and left to run its scripts for a moment."""
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("相談全般")
    live_server.make_citizen_with_ticket(name="市民 花子", phone="03-1234-5678", subject="相談")
    desk = new_page()
    log_in(desk, live_server.url, login, password)
    receive_walk_in(desk, category, 1, "確認")
    desk.wait_for_timeout(1_200)  # the running timer ticks
    for path in ("/tickets", "/counter/new", "/phone/new"):
        desk.goto(f"{live_server.url}{path}")
        expect(desk.locator("main")).to_be_visible()
    desk.goto(f"{live_server.url}/counter/new")
    with desk.expect_response(re.compile(r"/citizens/match$")):
        desk.get_by_role("textbox", name="電話番号").fill("0312345678")
    expect(desk.locator(".matches")).to_contain_text("市民 花子")

    display = new_page()
    display.goto(f"{live_server.url}/display")
    with display.expect_response(re.compile(r"/display/board\.json$"), timeout=DISPLAY_WAIT_MS):
        pass
    display.wait_for_timeout(300)
    assert console_watch.problems == []


def test_console_watch_catches_a_csp_violation(live_server, browser):
    """The watch itself works: an inline script, which the CSP forbids, is reported."""
    from tests.e2e.conftest import REPORT_CSP, VIEWPORT

    watch = ConsoleWatch()
    context = browser.new_context(locale="ja-JP", viewport=VIEWPORT)
    try:
        context.add_init_script(script=REPORT_CSP)
        page = context.new_page()
        watch.attach(page)
        page.goto(f"{live_server.url}/login")
        page.evaluate(
            """() => {
              const s = document.createElement("script");
              s.textContent = "window.injected = true";
              document.body.appendChild(s);
            }"""
        )
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.injected === undefined")
    finally:
        context.close()
    assert any("CSP violation" in p or "Content Security Policy" in p for p in watch.problems), (
        watch.problems
    )
