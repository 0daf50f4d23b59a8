"""The citizens' voice in Chromium: the counter prints a receipt with the satisfaction QR code,
a citizen answers on the public page (Japanese and English), and 「寄せられたご意見と回答」
shows an approved, redacted entry; WCAG 2.1 AA checked with axe-core on the public pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.conftest import axe_violations
from tests.e2e.test_desk import log_in, receive_walk_in

pytestmark = pytest.mark.e2e


def test_receipt_qr_code_leads_to_the_question_answered_once(live_server, new_page, console_watch):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("ごみ・リサイクル")
    desk = new_page()
    log_in(desk, live_server.url, login, password)
    reception = receive_walk_in(desk, category, 2, "粗大ごみの出し方")
    receipt_link = desk.get_by_role("link", name="受付票を印刷（アンケートQRコード付き）")
    expect(receipt_link).to_be_visible()

    desk.goto(live_server.url + receipt_link.get_attribute("href"))
    expect(desk.get_by_role("heading", name="受付票", level=1)).to_be_visible()
    expect(desk.locator(".receipt__number")).to_have_text(reception)
    qr = desk.get_by_role("img", name="アンケートのQRコード")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 100")
    survey_url = desk.locator(".receipt__url").inner_text().strip()
    assert survey_url.startswith(live_server.url + "/voice/satisfaction/")

    citizen = new_page()
    citizen.goto(survey_url + "?lang=en")
    expect(
        citizen.get_by_role("heading", name="Survey: were you satisfied with our help?")
    ).to_be_visible()
    citizen.goto(survey_url + "?lang=ja")
    expect(citizen.get_by_role("heading", name="アンケート：対応へのご満足")).to_be_visible()
    assert axe_violations(citizen) == []
    citizen.get_by_label("やや満足").check()
    citizen.get_by_label("ご意見（任意）").fill("説明がわかりやすかったです。")
    citizen.get_by_role("button", name="回答する").click()
    expect(citizen.get_by_role("heading", name="ご回答ありがとうございました")).to_be_visible()
    # The used link answers 410 Gone on purpose (Chromium logs that status as an error).
    console_watch.expect(r"status of 410 .*?/voice/satisfaction/")
    citizen.goto(survey_url)
    expect(
        citizen.get_by_text("このアンケートは回答済みか、回答期限が過ぎています。")
    ).to_be_visible()


def _published_entry(live_server) -> None:
    from consult.models import Channel, EntryKind, Staff
    from consult.services import citizens, tickets
    from consult.services.actor import Actor
    from consult.voice import services as voice
    from faq.opinions import services as opinions

    author_login, _ = live_server.make_staff("supervisor")
    reviewer_login, _ = live_server.make_staff("supervisor")
    with live_server.app.app_context():

        def actor(login):
            staff = db.session.scalars(db.select(Staff).where(Staff.login == login)).one()
            return Actor(staff, "127.0.0.1")

        author, reviewer = actor(author_login), actor(reviewer_login)
        citizen = citizens.create_citizen(
            author, citizens.CitizenInput(name="番町 花子", phone="090-2222-3333")
        )
        ticket = tickets.create_ticket(
            author, channel=Channel.EMAIL, subject="図書館の開館時間", citizen=citizen
        )
        tickets.add_entry(
            ticket,
            EntryKind.MESSAGE_IN,
            body="番町花子です（090-2222-3333）。図書館を夜9時まで開けてほしい。",
        )
        item = voice.mark_request(author, ticket, "mayor_letter")
        voice.record_answer(author, ticket, "番町様、平日は夜8時まで延長することにしました。")
        entry = opinions.draft_from_request(author, item.id)
        opinions.update(
            author,
            entry,
            opinion=entry.opinion,
            answer=entry.answer,
            answer_en="We will open until 8 p.m. on weekdays.",
        )
        opinions.submit(author, entry)
        opinions.approve(reviewer, entry)
        db.session.commit()
        db.session.remove()


def test_public_opinions_page_in_japanese_and_english(live_server, new_page):
    _published_entry(live_server)
    page = new_page()
    page.goto(f"{live_server.url}/opinions?lang=ja")
    expect(page.get_by_role("heading", name="寄せられたご意見と回答", level=1)).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text("図書館を夜9時まで開けてほしい")
    expect(main).to_contain_text("市長への手紙")
    expect(main).not_to_contain_text("090-2222-3333")
    expect(main).not_to_contain_text("番町花子")
    assert axe_violations(page) == []
    page.goto(f"{live_server.url}/opinions?lang=en")
    expect(
        page.get_by_role("heading", name="Opinions from citizens and the city's answers")
    ).to_be_visible()
    expect(page.locator("main")).to_contain_text("We will open until 8 p.m. on weekdays.")
    expect(page.locator("main")).to_contain_text("Letter to the mayor")
