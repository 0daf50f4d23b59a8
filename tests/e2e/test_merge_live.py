"""Two consultants, two browsers (issue 16): a supervisor merges two citizens, and then the
duplicate ticket, while a consultant has that ticket open with a reply half written. The
consultant's page says what happened through the live channel, without a reload, and the
reply being written is still there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

LIVE_MS = 5_000
MAIL = (
    b"From: =?UTF-8?B?5rGg55Sw?= <kazuko@example.jp>\r\nTo: soudan@example.lg.jp\r\n"
    b"Subject: =?UTF-8?B?5LuL6K2344Gr44Gk44GE44Gm?=\r\nMessage-ID: <merge-live@example.jp>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
) + "母の介護について相談したいです。".encode()


def _setup(live_server) -> dict:
    """Two records of one person: the first with a phone case, the duplicate with a mail case."""
    from channels.email import tasks as mail_tasks
    from consult.models import Channel
    from consult.services import citizens, tickets
    from consult.services.actor import SYSTEM

    with live_server.app.app_context():
        kept = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(name="池田 和子", phone="090-2681-0001")
        )
        duplicate = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(name="池田 和子", email="kazuko@example.jp")
        )
        by_phone = tickets.create_ticket(
            SYSTEM, channel=Channel.PHONE, subject="介護の相談（電話）", citizen=kept
        )
        db.session.commit()
        by_mail = mail_tasks.ingest(MAIL).ticket
        assert by_mail.citizen_id == duplicate.id
        result = {
            "kept": kept.id,
            "duplicate": duplicate.id,
            "by_phone": by_phone.number,
            "by_mail": by_mail.number,
        }
        db.session.commit()
        db.session.remove()
    return result


def test_a_merge_reaches_the_open_page_of_its_ticket_and_keeps_the_reply_being_written(
    live_server, new_page
):
    data = _setup(live_server)
    supervisor_login, password = live_server.make_staff("supervisor")
    consultant_login, _ = live_server.make_staff("consultant")

    # B: the duplicate's mail case open, a reply half written, not sent.
    b = new_page()
    log_in(b, live_server.url, consultant_login, password)
    b.goto(f"{live_server.url}/tickets/{data['by_mail']}")
    expect(b.get_by_role("heading", name="返信する")).to_be_visible()
    draft = "池田様\n介護保険の申請は、市役所本庁舎1階の介護保険課で"
    b.get_by_label("返信本文").fill(draft)
    expect(b.locator("body")).to_have_attribute("data-live-state", "open", timeout=LIVE_MS)
    b.evaluate("window.__notReloaded = true")

    # A: merges the duplicate citizen into the first, in two steps.
    a = new_page()
    log_in(a, live_server.url, supervisor_login, password)
    a.goto(f"{live_server.url}/citizens/{data['kept']}")
    a.get_by_label(re.compile("統合する相談者の番号")).fill(str(data["duplicate"]))
    a.get_by_role("button", name="確認へ進む").click()
    expect(a.get_by_role("heading", name=re.compile("相談者の統合の確認"))).to_be_visible()
    a.get_by_role("button", name="統合する").click()
    expect(a.locator(".notice--success")).to_contain_text("統合しました")

    # B's page says so at once; the reply is still there, the page was not reloaded.
    notice = b.locator("#live-ticket-notice")
    expect(notice).to_contain_text(
        f"相談者番号 {data['duplicate']} は相談者番号 {data['kept']} に統合されました",
        timeout=LIVE_MS,
    )
    expect(notice.get_by_role("link", name="相談者を開く")).to_have_attribute(
        "href", f"/citizens/{data['kept']}"
    )
    expect(b.get_by_label("返信本文")).to_have_value(draft)

    # A: now the mail case itself into the phone case.
    a.goto(f"{live_server.url}/tickets/{data['by_mail']}")
    section = a.locator("section", has=a.locator("#merge-heading"))
    section.get_by_text("この相談を別の相談に統合する").click()
    section.get_by_label(re.compile("統合先の相談番号")).fill(data["by_phone"])
    section.get_by_role("button", name="確認へ進む").click()
    expect(a.get_by_role("heading", name=re.compile("相談の統合の確認"))).to_be_visible()
    a.get_by_role("button", name="統合する").click()
    expect(a).to_have_url(re.compile(rf"/tickets/{data['by_phone']}"))

    # B's page: the case moved, with a link to where it went; the reply is still not lost.
    expect(notice).to_contain_text(
        f"この相談は相談 {data['by_phone']} に統合されました。", timeout=LIVE_MS
    )
    expect(notice.get_by_role("link", name=f"相談 {data['by_phone']} を開く")).to_be_visible()
    expect(b.get_by_label("返信本文")).to_have_value(draft)
    assert b.evaluate("window.__notReloaded === true"), "the page was reloaded"
