"""A session from a branch office (支所からのオンライン相談) in real browsers: a citizen books it
at 菊間支所; the 菊間支所 account sees it with the meeting link, and the 波方支所 account does
not; the consultant sees it in the day view with the branch named. axe-core checks the public
pages; the console watch fails on any console error. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from consult.extensions import db
from tests.e2e.conftest import _serve, assert_accessible
from tests.e2e.test_booking import slot_start
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

MEETING = "https://meet.city.example.lg.jp/madoguchi/{code}"


@pytest.fixture
def branch_server(app_factory):
    with _serve(app_factory, BOOKING_BRANCH_MEETING_URL=MEETING) as server:
        yield server


def _offices(server) -> dict[str, int]:
    from channels.booking import branch
    from consult.models import Staff
    from consult.services.actor import Actor

    admin_login, _ = server.make_staff("admin")
    with server.app.app_context():
        admin = Actor(
            db.session.scalar(sa.select(Staff).where(Staff.login == admin_login)), "127.0.0.1"
        )
        ids = {}
        for name, address in (("菊間支所", "今治市菊間町浜1"), ("波方支所", "今治市波方町樋口2")):
            office = branch.save_office(
                admin, None, name=name, name_en=None, address=address, active=True
            )
            ids[name] = office.id
        db.session.commit()
        db.session.remove()
    return ids


def fill_and_book(page: Page) -> None:
    """The details page: 山田 花子's details, consent, 予約する."""
    page.get_by_label(re.compile("^氏名")).fill("山田 花子")
    page.get_by_label("ふりがな").fill("やまだ はなこ")
    page.get_by_label("電話番号").fill("0878392111")
    page.get_by_label("相談内容").fill("相続の手続きについて")
    page.get_by_role("checkbox", name="個人情報の取扱いに同意します").check()
    page.get_by_role("button", name="予約する").click()


def test_branch_session_booked_seen_by_its_branch_and_the_desk(
    branch_server, new_page, console_watch
):
    server = branch_server
    offices = _offices(server)
    page: Page = new_page()
    page.goto(f"{server.url}/booking/")
    page.get_by_role("radio", name="支所からのオンライン相談").check()
    page.get_by_label(re.compile("^支所")).select_option(label="菊間支所（今治市菊間町浜1）")
    assert_accessible(page, "booking index with branch offices (ja)")
    page.get_by_role("button", name="空いている日時を見る").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "日時を選ぶ（支所からのオンライン相談・菊間支所）"
    )
    page.get_by_role("link", name="次の週").click()
    slot = page.locator(".slot-list a").first
    start = slot_start(slot.get_attribute("href"))
    slot.click()
    expect(page.get_by_role("heading", name="お客様の情報", level=1)).to_be_visible()
    fill_and_book(page)
    expect(page.get_by_role("status")).to_contain_text("予約を受け付けました。")
    expect(page.get_by_text("当日は予約の時刻までに菊間支所へお越しください")).to_be_visible()
    assert_accessible(page, "branch booking confirmed (ja)")
    reference = page.locator(".booking-ref").inner_text()

    # The 菊間支所 account: its booking, the time, the name and the meeting link.
    kikuma_login, password = server.make_staff(
        "branch", full_name="菊間支所端末", branch_office_id=offices["菊間支所"]
    )
    kikuma = new_page()
    log_in(kikuma, server.url, kikuma_login, password)
    expect(kikuma.get_by_role("heading", level=1)).to_have_text("菊間支所の予約")
    row = kikuma.locator("table.branch-sessions tr", has_text=reference)
    expect(row).to_contain_text("山田 花子 様")
    expect(row).to_contain_text(f"{start:%H:%M}")
    link = row.get_by_role("link", name="ビデオ相談を開く")
    expect(link).to_have_attribute(
        "href", re.compile(r"^https://meet\.city\.example\.lg\.jp/madoguchi/")
    )
    expect(kikuma.get_by_text("相続の手続き")).to_have_count(0)
    # Its menu offers nothing else; the desk's pages answer 403.
    nav = kikuma.get_by_role("navigation", name="メインメニュー")
    expect(nav.get_by_role("link", name="予約", exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="支所の予約")).to_be_visible()
    expect(nav.get_by_role("link", name="FAQ")).to_have_count(0)
    console_watch.expect(r"status of 403")
    assert kikuma.goto(f"{server.url}/booking/staff/day").status == 403

    # The 波方支所 account does not see it.
    namikata_login, _ = server.make_staff("branch", branch_office_id=offices["波方支所"])
    namikata = new_page()
    log_in(namikata, server.url, namikata_login, password)
    expect(namikata.get_by_role("heading", level=1)).to_have_text("波方支所の予約")
    expect(namikata.get_by_text(reference)).to_have_count(0)
    expect(namikata.get_by_text("今日の予約はありません。")).to_be_visible()

    # The consultant sees it in the day view, with the branch named.
    desk_login, _ = server.make_staff("consultant")
    desk = new_page()
    log_in(desk, server.url, desk_login, password)
    desk.goto(f"{server.url}/booking/staff/day?date={start.date().isoformat()}")
    cell = desk.locator("table.booking-grid td", has_text="山田 花子")
    expect(cell).to_contain_text("菊間支所")
    expect(desk.locator("table.booking-grid thead")).to_contain_text("支所からのオンライン相談1")


def test_branch_and_desk_pages_follow_a_booking_without_a_reload(
    branch_server, new_page, console_watch
):
    """Three people at once: the 菊間支所 account and the consultant's day view are open when a
    citizen books at 菊間支所; both show it without a reload, the 波方支所 account does not
    hear of it. The consultant then cancels it and the branch's row goes, again live."""
    server = branch_server
    offices = _offices(server)
    citizen: Page = new_page()
    citizen.goto(f"{server.url}/booking/")
    citizen.get_by_role("radio", name="支所からのオンライン相談").check()
    citizen.get_by_label(re.compile("^支所")).select_option(label="菊間支所（今治市菊間町浜1）")
    citizen.get_by_role("button", name="空いている日時を見る").click()
    # Within the branch page's fortnight: the first free time of this week, else the next.
    slot = citizen.locator(".slot-list a").first
    if not slot.count():
        citizen.get_by_role("link", name="次の週").click()
        slot = citizen.locator(".slot-list a").first
    start = slot_start(slot.get_attribute("href"))

    kikuma_login, password = server.make_staff("branch", branch_office_id=offices["菊間支所"])
    kikuma = new_page()
    log_in(kikuma, server.url, kikuma_login, password)
    expect(kikuma.get_by_role("heading", level=1)).to_have_text("菊間支所の予約")
    namikata_login, _ = server.make_staff("branch", branch_office_id=offices["波方支所"])
    namikata = new_page()
    log_in(namikata, server.url, namikata_login, password)
    desk_login, _ = server.make_staff("consultant")
    desk = new_page()
    log_in(desk, server.url, desk_login, password)
    desk.goto(f"{server.url}/booking/staff/day?date={start.date().isoformat()}")
    expect(desk.locator("table.booking-grid td", has_text="山田 花子")).to_have_count(0)
    for page in (kikuma, namikata, desk):
        expect(page.locator("body")).to_have_attribute("data-live-state", "open")
        page.evaluate("window.__notReloaded = true")

    slot.click()
    fill_and_book(citizen)
    expect(citizen.get_by_role("status")).to_contain_text("予約を受け付けました。")
    reference = citizen.locator(".booking-ref").inner_text()

    row = kikuma.locator("table.branch-sessions tr", has_text=reference)
    expect(row).to_contain_text("山田 花子 様")
    expect(row.get_by_role("link", name="ビデオ相談を開く")).to_be_visible()
    expect(kikuma.locator("[data-booking-status]")).to_contain_text("新しい予約が入りました")
    cell = desk.locator("table.booking-grid td", has_text="山田 花子")
    expect(cell).to_contain_text("菊間支所")
    expect(desk.locator("[data-booking-status]")).to_contain_text("新しい予約が入りました")
    for page in (kikuma, desk):
        assert page.evaluate("window.__notReloaded") is True  # updated in place
    namikata.wait_for_timeout(500)
    expect(namikata.get_by_text(reference)).to_have_count(0)
    expect(namikata.locator("[data-booking-status]")).to_have_count(0)

    # The consultant cancels it from the booking's page; the branch's row goes.
    desk.goto(f"{server.url}/booking/staff/day?date={start.date().isoformat()}")
    cell.get_by_role("link", name="山田 花子").click()
    desk.once("dialog", lambda dialog: dialog.accept())
    desk.get_by_role("button", name=re.compile("取り消す|取消")).click()
    expect(kikuma.locator("table.branch-sessions tr", has_text=reference)).to_have_count(0)
    expect(kikuma.locator("[data-booking-status]")).to_contain_text("予約が取り消されました")
    assert kikuma.evaluate("window.__notReloaded") is True
