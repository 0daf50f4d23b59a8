"""The citizens' voice (issue 19) in real browsers, several people at once: the counter's receipt
and its QR code answered on a citizen's phone, a request to the city answered by the department's
officer, and its redacted entry published on 「寄せられたご意見と回答」 after a second person's
approval. Each person has their own browser context, as each has their own device."""

from __future__ import annotations

import io
import re

import pytest
import segno
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.conftest import assert_accessible, keep_screenshot
from tests.e2e.test_desk import log_in, receive_walk_in, ticket_number_of
from tests.e2e.test_handoff import make_department

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
LIVE_MS = 3_000  # a live update on a staff page
SURVEY_URL = re.compile(r"^http://127\.0\.0\.1:\d+/voice/satisfaction/[A-Za-z0-9_.\-]+$")


def qr_modules_match(image: Image.Image, url: str) -> bool:
    """Whether the QR code as Chromium drew it has, module for module, the symbol of `url`.

    No QR decoder is in the project's environment; a QR symbol is fully determined by its text,
    error level, version and mask, so the drawn modules are compared with segno's symbols of
    the printed link (each error level and quiet zone): a match means a phone reads that link."""
    gray = image.convert("L")
    width, height = gray.size
    for error in "lmqh":
        matrix = segno.make(url, error=error, boost_error=False).matrix
        size = len(matrix)
        for border in (4, 2, 1, 0):
            total = size + 2 * border
            drawn = [
                [
                    gray.getpixel(
                        (
                            int((col + border + 0.5) * width / total),
                            int((row + border + 0.5) * height / total),
                        )
                    )
                    < 128
                    for col in range(size)
                ]
                for row in range(size)
            ]
            if drawn == [[bool(module) for module in line] for line in matrix]:
                return True
    return False


def close_case(page: Page, summary: str) -> None:
    page.get_by_label("対応結果の要約").fill(summary)
    page.get_by_role("button", name="完了にする").click()
    expect(page.get_by_role("status").filter(has_text="相談を完了にしました。")).to_be_visible()


def test_counter_receipt_qr_code_answered_once_on_a_phone(live_server, new_page, console_watch):
    consultant_login, password = live_server.make_staff("consultant")
    supervisor_login, _ = live_server.make_staff("supervisor")
    category = live_server.make_category("ごみ・リサイクル")

    supervisor = new_page()
    log_in(supervisor, live_server.url, supervisor_login, password)
    supervisor.goto(f"{live_server.url}/reports")
    satisfaction = supervisor.locator("section").filter(
        has=supervisor.get_by_role("heading", name="満足度（完了後のアンケート）")
    )
    expect(satisfaction).to_contain_text("この期間の回答はありません。")

    desk = new_page()
    log_in(desk, live_server.url, consultant_login, password)
    reception = receive_walk_in(desk, category, 1, "粗大ごみの出し方がわからない")
    number = ticket_number_of(desk)
    close_case(desk, "粗大ごみ受付センターの申込方法を案内した。")

    with desk.context.expect_page() as opened:
        desk.get_by_role("link", name="受付票を印刷（アンケートQRコード付き）").click()
    receipt = opened.value
    console_watch.attach(receipt)
    receipt.wait_for_load_state()
    expect(receipt.get_by_role("heading", name="受付票", level=1)).to_be_visible()
    expect(receipt.locator(".receipt__number")).to_have_text(reception)
    expect(receipt.locator(".print-table")).to_contain_text(number)
    qr = receipt.get_by_role("img", name="アンケートのQRコード")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR image is broken"
    link = receipt.locator(".receipt__url").inner_text().strip()
    assert SURVEY_URL.match(link), link
    drawn = Image.open(io.BytesIO(qr.screenshot()))
    assert qr_modules_match(drawn, link), "the QR code does not encode the printed link"
    keep_screenshot(receipt, "voice-receipt.png")
    assert_accessible(receipt, "receipt")

    # The citizen's phone: a context of its own, nobody signed in.
    phone = new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(link)
    expect(phone.get_by_role("heading", name="アンケート：対応へのご満足")).to_be_visible()
    expect(phone.locator("main")).not_to_contain_text(number)  # nothing of the case is shown
    # A companion scanned the same receipt and has the question open too.
    companion = new_page()
    companion.set_viewport_size(PHONE)
    companion.goto(link)
    expect(companion.get_by_role("button", name="回答する")).to_be_visible()
    assert_accessible(phone, "satisfaction question")
    keep_screenshot(phone, "voice-satisfaction.png")
    phone.get_by_role("radio", name="やや満足", exact=True).check()
    phone.get_by_label("ご意見（任意）").fill("説明が分かりやすかったです。")
    phone.get_by_role("button", name="回答する").click()
    expect(phone.get_by_role("heading", name="ご回答ありがとうございました")).to_be_visible()
    expect(phone.get_by_role("status")).to_contain_text("対応の改善に役立てます")
    assert_accessible(phone, "thanks")
    keep_screenshot(phone, "voice-thanks.png")

    # A second answer with the same link: refused politely, in Japanese, whether it is sent
    # from a question opened before the first answer or the link is opened again.
    console_watch.expect(r"status of 410")
    companion.get_by_role("radio", name="不満", exact=True).check()
    companion.get_by_role("button", name="回答する").click()
    expect(
        companion.get_by_role("heading", name="このアンケートには回答できません")
    ).to_be_visible()
    phone.goto(link)
    expect(phone.get_by_role("heading", name="このアンケートには回答できません")).to_be_visible()
    expect(phone.get_by_role("status")).to_contain_text("回答済みか、回答期限が過ぎています")
    expect(phone.get_by_role("button", name="回答する")).to_have_count(0)
    assert_accessible(phone, "closed question")
    keep_screenshot(phone, "voice-closed.png")

    # A reprint no longer carries a code that cannot be answered.
    receipt.reload()
    expect(receipt.get_by_role("heading", name="受付票", level=1)).to_be_visible()
    expect(receipt.get_by_role("img", name="アンケートのQRコード")).to_have_count(0)

    supervisor.reload()
    expect(satisfaction).to_contain_text("回答 1件")
    channel_row = satisfaction.locator("table").first.locator("tr").filter(has_text="窓口")
    expect(channel_row).to_contain_text("1")
    expect(channel_row).to_contain_text("少数のため非表示")  # one answer: no average shown
    keep_screenshot(supervisor, "voice-report.png")


def test_a_request_reaches_the_officer_whose_answer_shows_at_the_desk(
    live_server, new_page, console_watch
):
    department_id = make_department(live_server, "道路課")
    consultant_login, password = live_server.make_staff("consultant")
    officer_login, _ = live_server.make_staff(
        "officer", department_id=department_id, full_name="道路 次郎"
    )
    _citizen, number = live_server.make_citizen_with_ticket(
        name="高松 一郎", phone="090-1234-5678", subject="市道の街灯が暗い"
    )

    officer = new_page()
    log_in(officer, live_server.url, officer_login, password)
    officer.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="要望・手紙"
    ).click()
    expect(officer.locator("main")).to_contain_text("該当する要望・手紙はありません。")
    officer.evaluate("window.__notReloaded = true")

    # A second consultant has the same case open from the start.
    other_login, _ = live_server.make_staff("consultant")
    colleague = new_page()
    log_in(colleague, live_server.url, other_login, password)
    colleague.goto(f"{live_server.url}/tickets/{number}")
    colleague_panel = colleague.locator("#voice")
    expect(colleague_panel.get_by_role("button", name="要望・手紙として登録")).to_be_visible()

    desk = new_page()
    log_in(desk, live_server.url, consultant_login, password)
    desk.goto(f"{live_server.url}/tickets/{number}")
    panel = desk.locator("#voice")
    panel.get_by_label("種別").select_option(label="市への要望")
    panel.get_by_role("button", name="要望・手紙として登録").click()
    expect(desk.get_by_role("status").filter(has_text="回答期限を設定しました")).to_be_visible()
    expect(panel).to_contain_text("回答期限")
    expect(panel).to_contain_text("未定（担当課へ引き継ぐと設定されます）")

    desk.get_by_text("担当課に引き継ぐ").click()
    desk.get_by_label("引継ぎ先（担当課・外部機関）").select_option(label="道路課")
    desk.get_by_label("担当課への伝達事項").fill(
        "番町の市道の街灯について、文書で回答してください。"
    )
    desk.get_by_label("求める対応").select_option(label="文書回答")
    desk.get_by_role("button", name="引継ぎを依頼する").click()
    expect(desk.locator("#handoffs")).to_contain_text("依頼中")
    expect(panel.locator("dd").filter(has_text="道路課")).to_be_visible()
    expect(panel).to_contain_text("未回答")
    expect(desk.locator(".ticket-head__meta")).to_contain_text("引継中")
    desk.evaluate("window.__notReloaded = true")

    # The colleague's panel followed without a reload: registered, then its department; they
    # start typing an answer in the form that came with it.
    expect(colleague_panel.locator("dd").filter(has_text="道路課")).to_be_visible(timeout=LIVE_MS)
    expect(colleague_panel.get_by_role("status")).to_contain_text("表示を更新しました")
    expect(colleague_panel.get_by_role("button", name="要望・手紙として登録")).to_have_count(0)
    typed = "道路課の回答を待って、こちらから郵送します。"
    colleague_panel.get_by_label("回答（文書回答の本文）").fill(typed)

    # The officer's open list gets the request without a reload, and says so.
    row = officer.locator("main tr").filter(has_text=number)
    expect(row).to_contain_text("市への要望", timeout=LIVE_MS)
    expect(row).to_contain_text("道路課")
    expect(row).to_contain_text("未回答")
    expect(
        officer.get_by_role("status").filter(has_text="1件の要望・手紙が一覧に加わりました")
    ).to_be_visible()
    assert officer.evaluate("window.__notReloaded === true"), "the list was reloaded"
    keep_screenshot(officer, "voice-requests.png")
    row.get_by_role("link", name=number).click()
    expect(officer.get_by_role("heading", level=1)).to_have_text(f"市への要望（相談番号 {number}）")
    expect(officer.locator("main")).to_contain_text("市道の街灯が暗い")
    answer = "現地を確認し、街灯を LED 灯に交換しました。ご連絡ありがとうございました。"
    officer.get_by_label("回答（文書回答の本文）").fill(answer)
    officer.get_by_role("button", name="回答を記録する").click()
    expect(officer.get_by_role("status").filter(has_text="回答を記録しました。")).to_be_visible()
    expect(officer.get_by_role("heading", name=re.compile(r"^回答（.*0開庁日）$"))).to_be_visible()
    expect(officer.get_by_role("button", name="回答を記録する")).to_have_count(0)
    keep_screenshot(officer, "voice-request-answered.png")

    # The consultant's open ticket page, without a reload: the answer on the timeline and in
    # the request panel, and the 文書回答 handoff completed by it (the case is the centre's).
    timeline = desk.locator("#timeline")
    expect(timeline).to_contain_text("【文書回答】", timeout=LIVE_MS)
    expect(timeline).to_contain_text(answer, timeout=LIVE_MS)
    expect(panel).to_contain_text(answer, timeout=LIVE_MS)
    expect(panel).to_contain_text("記録（0開庁日）")
    expect(panel.get_by_role("status")).to_contain_text("回答が記録されました")
    expect(panel.get_by_role("button", name="回答を記録する")).to_have_count(0)
    expect(desk.locator("#handoffs")).to_contain_text("対応済", timeout=LIVE_MS)
    expect(desk.locator("#handoffs")).not_to_contain_text("依頼中")
    expect(desk.locator(".ticket-head__meta")).to_contain_text("対応中", timeout=LIVE_MS)
    assert desk.evaluate("window.__notReloaded === true"), "the ticket page was reloaded"
    panel.scroll_into_view_if_needed()
    keep_screenshot(desk, "voice-ticket-answered.png")
    desk.reload()
    expect(panel).to_contain_text(answer)
    expect(desk.locator("#handoffs")).to_contain_text("対応済")

    # The colleague's panel says so too, and what they typed is still there.
    expect(colleague_panel.get_by_role("status")).to_contain_text(
        "入力中の内容はそのまま残しています", timeout=LIVE_MS
    )
    expect(colleague_panel).to_contain_text("記録（0開庁日）")
    expect(colleague_panel.get_by_label("回答（文書回答の本文）")).to_have_value(typed)

    # The officer's handoff inbox moved on: nothing new, the handoff among the completed.
    officer.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="引継ぎ"
    ).click()
    expect(officer.get_by_role("heading", level=1)).to_contain_text("引継ぎ一覧")
    expect(officer.locator("main tr").filter(has_text=number)).to_have_count(0)
    officer.get_by_role("navigation", name="引継ぎの種類").get_by_role(
        "link", name=re.compile("^完了")
    ).click()
    expect(officer.locator("main tr").filter(has_text=number)).to_contain_text("対応済")

    officer.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="要望・手紙"
    ).click()
    expect(officer.locator("main")).to_contain_text("該当する要望・手紙はありません。")
    officer.get_by_role("link", name="回答済み").click()
    expect(officer.locator("main tr").filter(has_text=number)).to_contain_text(
        "回答済み（0開庁日）"
    )


def answered_request(live_server, *, letter: str, answer: str) -> tuple[int, str]:
    """A citizen's mail registered as a request and answered, through the services (the pages
    of that part are the test above); returns (request id, ticket number)."""
    import sqlalchemy as sa

    from consult.extensions import db
    from consult.models import Channel, EntryKind, Staff
    from consult.services import citizens, tickets
    from consult.services.actor import SYSTEM, Actor
    from consult.voice import services as voice

    login, _ = live_server.make_staff("consultant", full_name="窓口 三郎")
    with live_server.app.app_context():
        actor = Actor(db.session.scalar(sa.select(Staff).where(Staff.login == login)), "127.0.0.1")
        citizen = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(name="高松 一郎", phone="090-1234-5678")
        )
        ticket = tickets.create_ticket(
            actor, channel=Channel.EMAIL, subject="市への要望", citizen=citizen
        )
        tickets.add_entry(ticket, EntryKind.MESSAGE_IN, body=letter)
        item = voice.mark_request(actor, ticket, "request")
        voice.record_answer(actor, ticket, answer)
        db.session.commit()
        result = item.id, ticket.number
        db.session.remove()
    return result


def test_an_answered_request_is_published_in_both_languages_without_personal_data(
    live_server, new_page, console_watch
):
    request_id, number = answered_request(
        live_server,
        letter="高松一郎です。電話 090-1234-5678。自宅前の市道の街灯が暗いので直してほしい。",
        answer="高松 一郎様　ご要望ありがとうございました。"
        "道路課で現地を確認し、街灯を交換しました。",
    )
    author_login, password = live_server.make_staff("consultant")
    reviewer_login, _ = live_server.make_staff("supervisor")
    personal = ("高松", "一郎", "090-1234-5678", "1234-5678")

    citizen = new_page()
    citizen.goto(f"{live_server.url}/opinions")
    expect(citizen.get_by_role("heading", name="寄せられたご意見と回答")).to_be_visible()
    expect(citizen.locator("main")).to_contain_text("掲載しているご意見はまだありません。")

    author = new_page()
    log_in(author, live_server.url, author_login, password)
    author.goto(f"{live_server.url}/requests/{request_id}")
    author.get_by_role("button", name="「ご意見と回答」の下書きを作る").click()
    expect(author.get_by_role("status").filter(has_text="個人情報を伏せた下書き")).to_be_visible()
    opinion = author.get_by_label("ご意見（要旨）", exact=True)
    reply = author.get_by_label("回答", exact=True)
    for field in (opinion, reply):
        text = field.input_value()
        assert not any(p in text for p in personal), text
    assert "街灯が暗い" in opinion.input_value()
    assert "街灯を交換しました" in reply.input_value()
    keep_screenshot(author, "voice-opinion-draft.png")
    opinion.fill("自宅前の市道の街灯が暗いので直してほしい。")
    reply.fill("ご要望ありがとうございました。道路課で現地を確認し、街灯を交換しました。")
    author.get_by_label("ご意見（英語・任意）").fill("The street light on a city road is too dark.")
    author.get_by_label("回答（英語・任意）").fill(
        "Thank you. The Roads Division checked the site and replaced the light."
    )
    author.get_by_role("button", name="保存する").click()
    expect(author.get_by_role("status").filter(has_text="保存しました。")).to_be_visible()
    author.get_by_role("button", name="承認を依頼する").click()
    expect(author.get_by_role("status").filter(has_text="承認を依頼しました。")).to_be_visible()
    expect(author.get_by_role("heading", level=1)).to_contain_text("承認待ち")
    entry_url = author.url

    citizen.reload()  # not public before a second person approves it
    expect(citizen.locator("main")).to_contain_text("掲載しているご意見はまだありません。")

    reviewer = new_page()
    log_in(reviewer, live_server.url, reviewer_login, password)
    reviewer.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="ご意見と回答"
    ).click()
    row = reviewer.locator("main tr").filter(has_text="承認待ち")
    expect(row).to_contain_text("街灯が暗い")
    row.get_by_role("link").first.click()
    expect(reviewer).to_have_url(entry_url)
    reviewer.get_by_role("button", name="承認して公開する").click()
    expect(reviewer.get_by_role("status").filter(has_text="承認し、公開しました。")).to_be_visible()
    expect(reviewer.get_by_role("heading", level=1)).to_contain_text("公開中")

    citizen.reload()
    article = citizen.locator("article.opinion")
    expect(article).to_have_count(1)
    expect(article).to_contain_text("市への要望")
    expect(article).to_contain_text("自宅前の市道の街灯が暗いので直してほしい。")
    expect(article).to_contain_text("道路課で現地を確認し、街灯を交換しました。")
    japanese = citizen.locator("body").inner_text()
    assert not any(p in japanese for p in (*personal, number)), japanese
    assert_accessible(citizen, "opinions (ja)")
    keep_screenshot(citizen, "voice-opinions-ja.png")

    citizen.get_by_role("link", name="English").click()
    expect(citizen.get_by_role("heading", level=1)).to_have_text(
        "Opinions from citizens and the city's answers"
    )
    expect(article.get_by_role("heading", level=2)).to_have_text(
        re.compile(r"^\d{1,2}/\d{4} · Request to the city$")
    )
    expect(article).to_contain_text("The street light on a city road is too dark.")
    expect(article).to_contain_text("The Roads Division checked the site and replaced the light.")
    english = citizen.locator("body").inner_text()
    assert not any(p in english for p in (*personal, number)), english
    assert_accessible(citizen, "opinions (en)")
    keep_screenshot(citizen, "voice-opinions-en.png")
