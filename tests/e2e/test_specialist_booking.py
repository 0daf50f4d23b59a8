"""A specialist session (専門相談) booked in a real browser: a citizen books the 心理カウンセラー
with its intake question, in English; the invitation names the kind; the counsellor signs in and
sees the session with the answer on their own list. axe-core checks the public pages; the
console watch fails on any console error. On SQLite and PostgreSQL (the fixtures parametrize).
"""

from __future__ import annotations

import re
from datetime import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from consult.extensions import db
from tests.e2e.conftest import assert_accessible
from tests.e2e.test_booking import delivered, event_of, invitation_of, slot_start
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


def _counsellor_kind(server) -> tuple[str, str]:
    """A member of the centre's staff who holds the 心理カウンセラー on weekdays 13:00–16:00.

    Returns their login and password."""
    from channels.booking import specialist
    from consult.models import Staff
    from consult.services.actor import Actor

    login, password = server.make_staff("consultant", full_name="心理 花子")
    admin_login, _ = server.make_staff("admin")
    with server.app.app_context():
        counsellor = db.session.scalar(sa.select(Staff).where(Staff.login == login))
        admin = db.session.scalar(sa.select(Staff).where(Staff.login == admin_login))
        specialist.save_kind(
            Actor(admin, "127.0.0.1"),
            None,
            specialist.KindInput(
                name="心理カウンセラー",
                name_en="Psychological counsellor",
                description="公認心理師がお話を伺います。",
                description_en="A certified psychologist listens to you.",
                specialist_id=counsellor.id,
                weekdays=[0, 1, 2, 3, 4],
                opens=time(13, 0),
                closes=time(16, 0),
                slot_minutes=60,
                capacity=1,
                questions="* 今、いちばん困っていること | What troubles you most at the moment",
            ),
        )
        db.session.commit()
        db.session.remove()
    return login, password


def test_book_a_specialist_session_in_english(
    mail_live_server, smtp_server, new_page, console_watch
):
    server = mail_live_server
    login, password = _counsellor_kind(server)
    page: Page = new_page()
    page.goto(f"{server.url}/booking/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Specialist session", level=2)).to_be_visible()
    expect(page.get_by_text("A certified psychologist listens to you.")).to_be_visible()
    assert_accessible(page, "booking index with specialist sessions (en)")
    page.get_by_role("link", name="See free times: Psychological counsellor").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"Psychological counsellor")
    )
    page.get_by_role("navigation", name=re.compile("Weeks|週の切り替え")).locator("a").last.click()
    slot = page.locator(".slot-list a").first
    expect(slot).to_be_visible()
    start = slot_start(slot.get_attribute("href"))
    assert start.time() in (time(13, 0), time(14, 0), time(15, 0))
    slot.click()

    expect(page.get_by_role("group", name="Questions before your session")).to_be_visible()
    assert_accessible(page, "details with the intake question (en)")
    page.get_by_label(re.compile("^Name")).fill("Hanako Yamada")
    page.get_by_label(re.compile("^Reading of your name")).fill("やまだ はなこ")
    page.get_by_label(re.compile("^Email")).fill("hanako@example.jp")
    page.get_by_label(re.compile("^What you would like to consult about")).fill(
        "I would like to talk about stress at work."
    )
    page.get_by_role("checkbox").check()
    # The required question left empty first: refused, next to the question, nothing booked.
    console_watch.expect(r"status of 422 .*/booking/details")
    page.get_by_role("button", name=re.compile("^Book")).click()
    answer = page.get_by_label(re.compile("What troubles you most at the moment"))
    expect(answer).to_have_accessible_description(re.compile("Please answer this question."))
    answer.fill("I cannot sleep well.")
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name=re.compile("^Book")).click()

    expect(page.get_by_role("status")).to_contain_text("Your booking is confirmed.")
    expect(page.get_by_text("Psychological counsellor")).to_be_visible()
    [(_, message)] = delivered(server, smtp_server, 1)
    event = event_of(invitation_of(message))
    assert "Psychological counsellor" in str(event["SUMMARY"])
    assert event.start == start

    # The counsellor's own list shows the session and the answer.
    staff_page = new_page()
    log_in(staff_page, server.url, login, password)
    staff_page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="担当の専門相談"
    ).click()
    expect(staff_page.get_by_role("heading", level=1)).to_contain_text("担当の専門相談")
    expect(staff_page.get_by_text("I cannot sleep well.")).to_be_visible()
    expect(staff_page.get_by_text("Hanako Yamada（やまだ はなこ）")).to_be_visible()
