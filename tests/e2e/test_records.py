"""In Chromium, the records the law asks for:

- a supervisor sets the 支援措置 flag on a person, and a consultant in a second browser no
  longer sees the address or the phone, and a search by the name finds nothing;
- a supervisor draws up the month's 廃棄予定一覧, holds one case back and approves it; after
  the disposal run the list shows what went and what stays (and the records without a case);
- a supervisor asks for a disclosure bundle, sees 作成中…, and downloads it once the worker
  has made it (the page follows the live channel).

Each page was looked at in a screenshot (MADOGUCHI_TEST_SCREENSHOTS=DIR takes them again).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.conftest import keep_screenshot
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

NAME = "避難 静香"
KANA = "ひなん しずか"
PHONE = "090-4826-1357"
ADDRESS = "高松市番町九丁目八番七号"
LONG_AGO = datetime(2019, 5, 1, 3, 0, tzinfo=UTC)


def _protected_candidate(app) -> int:
    from consult.models import Channel
    from consult.services import citizens, tickets
    from consult.services.actor import SYSTEM

    with app.app_context():
        person = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(name=NAME, kana=KANA, phone=PHONE, address=ADDRESS)
        )
        tickets.create_ticket(SYSTEM, channel=Channel.PHONE, subject="住まいの相談", citizen=person)
        db.session.commit()
        citizen_id = person.id
        db.session.remove()
    return citizen_id


def _search(page, base: str, words: str) -> None:
    page.goto(f"{base}/tickets")
    page.locator("form[role=search] input[name=q]").first.fill(words)
    page.locator("form[role=search] input[name=q]").first.press("Enter")
    expect(page.get_by_role("heading", name="相談の検索")).to_be_visible()


def test_a_protected_person_disappears_for_a_consultant_in_another_browser(live_server, new_page):
    citizen_id = _protected_candidate(live_server.app)
    consultant, password = live_server.make_staff("consultant")
    supervisor, _ = live_server.make_staff("supervisor")

    desk = new_page()
    log_in(desk, live_server.url, consultant, password)
    desk.goto(f"{live_server.url}/citizens/{citizen_id}")
    expect(desk.locator("main")).to_contain_text(ADDRESS)
    expect(desk.locator("main")).to_contain_text("4826")
    _search(desk, live_server.url, "避難")
    expect(desk.locator("table.search-results")).to_contain_text(NAME)

    boss = new_page()
    log_in(boss, live_server.url, supervisor, password)
    boss.goto(f"{live_server.url}/citizens/{citizen_id}")
    card = boss.locator("section", has=boss.get_by_role("heading", name="支援措置・利用停止"))
    card.locator("form").first.get_by_label("理由").fill("DV等支援措置の申出（市民課から通知）")
    card.get_by_role("button", name="支援措置を設定する").click()
    expect(boss.get_by_text("支援措置を設定しました。")).to_be_visible()
    # The supervisor still sees the whereabouts, with the flag explained.
    expect(boss.locator("main")).to_contain_text(ADDRESS)
    expect(boss.locator("main")).to_contain_text("支援措置")
    keep_screenshot(boss, "protection-supervisor.png")

    # The consultant's browser, on its own session: hidden, and not found.
    desk.goto(f"{live_server.url}/citizens/{citizen_id}")
    main = desk.locator("main")
    expect(main).to_contain_text("（非表示）")
    expect(main).not_to_contain_text(ADDRESS)
    expect(main).not_to_contain_text("4826")
    keep_screenshot(desk, "protection-consultant.png")
    _search(desk, live_server.url, "避難")
    expect(desk.locator("main")).not_to_contain_text(NAME)
    expect(desk.locator("table.search-results")).to_have_count(0)
    _search(desk, live_server.url, "48261357")
    expect(desk.locator("main")).not_to_contain_text(NAME)
    keep_screenshot(desk, "protection-search.png")


def _old_cases(app, count: int) -> list[str]:
    """Closed cases of 2019年度 (expired under every class), and a message sent to no case."""
    from consult.models import Channel, OutboxMessage, OutboxStatus, Ticket
    from consult.services import tickets
    from consult.services.actor import SYSTEM

    numbers = []
    with app.app_context():
        for i in range(count):
            ticket = tickets.create_ticket(SYSTEM, channel=Channel.COUNTER, subject=f"古い相談{i}")
            tickets.close(SYSTEM, ticket, "案内しました。")
            numbers.append(ticket.number)
        db.session.flush()
        for ticket in db.session.scalars(sa.select(Ticket).where(Ticket.number.in_(numbers))):
            ticket.closed_at = LONG_AGO
        db.session.add(
            OutboxMessage(
                channel="email",
                recipient="old-booker@example.jp",
                subject="予約の確認",
                body="ご予約を承りました。",
                status=OutboxStatus.DELIVERED,
                created_at=LONG_AGO,
                delivered_at=LONG_AGO,
            )
        )
        db.session.commit()
        db.session.remove()
    return sorted(numbers)


def test_a_supervisor_approves_the_list_with_one_case_held_back(live_server, new_page):
    numbers = _old_cases(live_server.app, 3)
    supervisor, password = live_server.make_staff("supervisor")
    boss = new_page()
    log_in(boss, live_server.url, supervisor, password)
    boss.goto(f"{live_server.url}/records/")
    expect(boss.get_by_role("heading", name="記録の保存・廃棄", level=1)).to_be_visible()
    expect(boss.locator("main")).to_contain_text("相談に結び付かない送信メッセージ")
    keep_screenshot(boss, "records-index.png")
    boss.get_by_role("button", name="今月の廃棄予定一覧を作成する").click()
    expect(boss.get_by_text("今月の廃棄予定一覧を作成しました。")).to_be_visible()
    expect(boss.locator("main")).to_contain_text("未承認")
    kept = numbers[1]
    boss.get_by_role("button", name=f"{kept} の廃棄を保留する").click()
    expect(boss.get_by_text("廃棄を保留しました。")).to_be_visible()
    row = boss.locator("tr", has_text=kept)
    expect(row).to_contain_text("保留")
    boss.get_by_role("button", name="この一覧を承認する").click()
    expect(boss.get_by_text("廃棄予定一覧を承認しました。")).to_be_visible()
    expect(boss.locator("main")).to_contain_text("承認済み")
    keep_screenshot(boss, "records-list-approved.png")

    # The disposal run (`madoguchi records dispose --approved`, as cron runs it).
    result = live_server.app.test_cli_runner().invoke(args=["records", "dispose", "--approved"])
    assert result.exit_code == 0, result.output
    boss.reload()
    for number in numbers:
        expected = "保留" if number == kept else "廃棄済み"
        expect(boss.locator("tr", has_text=number)).to_contain_text(expected)
    unlinked = boss.locator("tr", has_text="相談に結び付かない送信メッセージ")
    expect(unlinked).to_contain_text("廃棄済み（1件）")
    keep_screenshot(boss, "records-list-disposed.png")
    boss.get_by_role("link", name="← 記録の保存・廃棄").click()
    boss.get_by_role("link", name="廃棄簿").click()
    register = boss.locator("main")
    for number in numbers:
        if number == kept:
            expect(register).not_to_contain_text(number)
        else:
            expect(register).to_contain_text(number)
    expect(register).to_contain_text("相談に結び付かない記録")
    expect(register).to_contain_text("窓口")  # the channel by its Japanese name
    keep_screenshot(boss, "records-register.png")


def test_a_disclosure_bundle_is_made_by_the_worker_and_downloaded(live_server, new_page):
    from consult.services import disclosure_jobs

    citizen_id = _protected_candidate(live_server.app)
    supervisor, password = live_server.make_staff("supervisor")
    boss = new_page()
    log_in(boss, live_server.url, supervisor, password)
    boss.goto(f"{live_server.url}/citizens/{citizen_id}")
    boss.get_by_role("link", name="開示請求への対応（開示資料の作成）").click()
    expect(
        boss.get_by_role("heading", name=f"開示請求への対応：相談者番号 {citizen_id}")
    ).to_be_visible()
    keep_screenshot(boss, "disclosure-empty.png")
    boss.get_by_role("button", name="PDF（A4・印刷用）の作成を依頼").click()
    expect(boss.get_by_text("PDF（A4）の作成を依頼しました。")).to_be_visible()
    expect(boss.locator("#disclosure-jobs")).to_contain_text("作成中…")
    expect(boss.get_by_role("link", name="ダウンロード")).to_have_count(0)
    keep_screenshot(boss, "disclosure-pending.png")
    # The page is live: wait until it is connected, then let the worker make the bundle.
    expect(boss.locator("body")).to_have_attribute("data-live-state", "open")
    with live_server.app.app_context():
        assert disclosure_jobs.build_due() == 1
        db.session.remove()
    link = boss.get_by_role("link", name="ダウンロード")
    expect(link).to_be_visible(timeout=15_000)  # the page reloaded itself on the live event
    expect(boss.locator("#disclosure-jobs")).not_to_contain_text("作成中…")
    expect(boss.locator("#disclosure-jobs")).to_contain_text("ダウンロードできます")
    keep_screenshot(boss, "disclosure-ready.png")
    with boss.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.startswith(f"disclosure-{citizen_id}-")
    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes().startswith(b"%PDF")
