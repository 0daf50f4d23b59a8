"""The FAQ in a real browser: a closed case becomes a redacted draft, a supervisor approves it,
a citizen finds it on /faq in Japanese; WCAG 2.1 AA checked with axe-core on the public pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parent.parent / "fixtures" / "axe" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(browser, url: str) -> list[str]:
    """Run axe-core on a page, in a context of its own that lets axe add its inline styles.

    The pages under test keep their CSP (and the console watch) in the test's own contexts.
    """
    context = browser.new_context(locale="ja-JP", bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        page.evaluate(AXE.read_text(encoding="utf-8"))
        result = page.evaluate(
            "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
            WCAG_TAGS,
        )
    finally:
        context.close()
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}) {v['nodes'][0]['target']}"
        for v in result["violations"]
    ]


def closed_case(live_server, consultant_login: str) -> str:
    from consult.models import Channel, Staff
    from consult.services import citizens, tickets
    from consult.services.actor import Actor

    category = live_server.make_category("ごみ・リサイクル")
    with live_server.app.app_context():
        from consult.models import Category

        staff = db.session.scalars(db.select(Staff).where(Staff.login == consultant_login)).one()
        actor = Actor(staff, "127.0.0.1")

        category_id = db.session.scalars(
            db.select(Category.id).where(Category.name == category)
        ).one()
        citizen = citizens.create_citizen(
            actor, citizens.CitizenInput(name="高松 一郎", phone="087-811-2345")
        )
        ticket = tickets.create_ticket(
            actor,
            channel=Channel.PHONE,
            subject="使い終わったスプレー缶の捨て方",
            category_id=category_id,
            citizen=citizen,
            first_message="高松一郎です。スプレー缶はどう捨てればいいですか。087-811-2345",
        )
        tickets.close(
            actor,
            ticket,
            "高松様に案内：中身を使い切り、火の気のない屋外で穴を開けて「缶・びん・ペットボトル」"
            "の日に出す。折り返しは 087-811-2345 へ済み。",
        )
        db.session.commit()
        number = ticket.number
        db.session.remove()
    return number


def test_closed_case_to_public_faq(live_server, new_page, browser):
    consultant, password = live_server.make_staff("consultant", full_name="窓口 花子")
    supervisor, _ = live_server.make_staff("supervisor", full_name="責任者 次郎")
    number = closed_case(live_server, consultant)

    desk = new_page()
    log_in(desk, live_server.url, consultant, password)
    desk.goto(f"{live_server.url}/tickets/{number}")
    desk.get_by_role("button", name="FAQにする").click()
    expect(desk.get_by_text("相談からFAQの下書きを作成しました")).to_be_visible()
    body = desk.locator("main")
    expect(body).to_contain_text("［電話番号］")
    expect(body).to_contain_text("［氏名］")
    expect(body).not_to_contain_text("087-811-2345")
    expect(body).not_to_contain_text("高松 一郎")
    expect(body).not_to_contain_text("高松様")
    expect(body).to_contain_text("下書き作成時に伏せた箇所")

    # Tidy the draft into a citizen-facing answer and make it public.
    desk.get_by_role("link", name="編集する").click()
    desk.get_by_label("質問").fill("スプレー缶はどうやって捨てればいいですか？")
    desk.get_by_label("回答（Markdown）").fill(
        "1. 中身を**使い切って**ください。\n"
        "2. 火の気のない風通しのよい屋外で穴を開けます。\n"
        "3. 「缶・びん・ペットボトル」の日に出してください。"
    )
    desk.get_by_label("公開範囲").select_option(label="市民にも公開")
    desk.get_by_role("button", name="保存").click()
    expect(desk.get_by_text("変更を保存しました。")).to_be_visible()
    desk.get_by_role("button", name="承認を依頼する").click()
    expect(desk.get_by_text("承認を依頼しました。")).to_be_visible()
    expect(desk.get_by_text("自分が作成したFAQは承認できません。")).to_have_count(0)
    entry_url = desk.url

    boss = new_page()
    log_in(boss, live_server.url, supervisor, password)
    boss.goto(entry_url)
    boss.get_by_role("button", name="承認して公開する").click()
    expect(boss.get_by_text("承認し、公開しました。")).to_be_visible()
    expect(boss.locator(".badge--faq-published")).to_have_text("公開中")

    citizen = new_page()
    citizen.goto(f"{live_server.url}/faq")
    assert axe_violations(browser, citizen.url) == []
    citizen.get_by_label("キーワードで探す").fill("すぷれーかん 捨て方")
    citizen.get_by_role("button", name="検索").click()
    result = citizen.get_by_role("link", name=re.compile("スプレー缶はどうやって捨てれば"))
    expect(result).to_be_visible()
    assert axe_violations(browser, citizen.url) == []
    result.click()
    expect(citizen.get_by_role("heading", level=1)).to_contain_text("スプレー缶はどうやって")
    expect(citizen.locator(".faq-answer ol li")).to_have_count(3)
    expect(citizen.locator(".faq-answer strong")).to_have_text("使い切って")
    expect(citizen.locator("main")).not_to_contain_text("087-811-2345")
    expect(citizen.locator("main")).not_to_contain_text(number)  # source case stays internal
    assert axe_violations(browser, citizen.url) == []
    citizen.get_by_role("button", name="役に立った").click()
    expect(citizen.get_by_text("ご意見ありがとうございました。").first).to_be_visible()
    expect(citizen.get_by_text("1人の方が役に立ったと答えています。")).to_be_visible()

    citizen.goto(f"{live_server.url}/faq?lang=en")
    expect(citizen.get_by_role("heading", level=1)).to_have_text("Frequently asked questions")
    assert axe_violations(browser, citizen.url) == []

    # Back at the desk: typing a note on an open case suggests the entry.
    from consult.models import Channel
    from consult.services import tickets
    from consult.services.actor import SYSTEM

    with live_server.app.app_context():
        open_ticket = tickets.create_ticket(SYSTEM, channel=Channel.COUNTER, subject="相談")
        db.session.commit()
        open_number = open_ticket.number
        db.session.remove()
    desk.goto(f"{live_server.url}/tickets/{open_number}")
    desk.locator("textarea[name=body]").fill("スプレー缶の出し方を聞かれた")
    suggestions = desk.locator(".faq-suggestions")
    expect(
        suggestions.get_by_role("link", name=re.compile("スプレー缶はどうやって"))
    ).to_be_visible()
    expect(suggestions.get_by_role("link", name=re.compile(number))).to_be_visible()
