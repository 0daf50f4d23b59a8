"""A handoff in two browsers: the consultant at the counter, the officer in the department.

The consultant's ticket page follows the officer (受付済, 向かっています, 対応記録) without a
reload.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.test_desk import log_in, receive_walk_in, ticket_number_of

pytestmark = pytest.mark.e2e

LIVE_MS = 3_000  # the promise: the counter sees the officer's step within 3 seconds


def make_department(live_server, name: str) -> int:
    from consult.services import staff as staff_service

    with live_server.app.app_context():
        department = staff_service.create_department(
            None, code="e2e-shimin", name=name, email="shimin@city.example.jp"
        )
        db.session.commit()
        department_id = department.id
        db.session.remove()
    return department_id


def test_the_officer_comes_to_the_counter(live_server, new_page, console_watch):
    department_id = make_department(live_server, "市民課")
    category = live_server.make_category("住民票・戸籍")
    consultant_login, password = live_server.make_staff("consultant")
    officer_login, _ = live_server.make_staff(
        "officer", department_id=department_id, full_name="市民 一郎"
    )

    desk = new_page()
    log_in(desk, live_server.url, consultant_login, password)
    receive_walk_in(desk, category, 2, "転入届の書き方がわからない")
    number = ticket_number_of(desk)

    desk.get_by_text("担当課に引き継ぐ").click()
    desk.get_by_label("引継ぎ先を絞り込む").fill("市民")
    desk.get_by_label("引継ぎ先（担当課・外部機関）").select_option(label="市民課")
    desk.get_by_label("担当課への伝達事項").fill("転入届の記載を窓口で一緒に確認してください。")
    desk.get_by_label("求める対応").select_option(label="来庁して対応")
    desk.get_by_role("button", name="引継ぎを依頼する").click()
    panel = desk.locator("#handoffs")
    expect(panel).to_contain_text("依頼中")
    expect(desk.locator(".ticket-head")).to_contain_text("引継中")

    desk.evaluate("window.__notReloaded = true")

    officer = new_page()
    log_in(officer, live_server.url, officer_login, password)
    expect(officer).to_have_url(re.compile(r"/handoffs"))
    officer.get_by_role("link", name=number).click()
    expect(officer.locator("main")).to_contain_text("転入届の記載を窓口で一緒に確認してください。")
    officer.get_by_role("button", name="受け付ける").click()
    expect(panel).to_contain_text("受付済", timeout=LIVE_MS)
    expect(panel).to_contain_text("市民 一郎", timeout=LIVE_MS)

    officer.get_by_label("到着までの時間（分）").fill("5")
    officer.get_by_role("button", name="窓口へ向かいます").click()
    expect(officer.locator(".flashes")).to_contain_text("向かっています")
    # The counter sees it coming, live.
    expect(panel).to_contain_text("向かっています", timeout=LIVE_MS)
    expect(panel).to_contain_text("約5分で到着予定", timeout=LIVE_MS)

    officer.get_by_role("button", name="窓口に到着しました").click()
    expect(panel).to_contain_text("到着", timeout=LIVE_MS)

    # A form answered with errors (422) is shown at its POST address; the live update must still
    # refresh the timeline, from the ticket's own address (a GET of the form's would be 405).
    console_watch.expect(r"status of 422 .*/tickets/[^/]+/note")
    # From the keyboard: the live refreshes just before can still move the button under a
    # mouse click's coordinates (the click then landed beside it, and nothing was sent).
    desk.get_by_role("button", name="メモを追加").press("Enter")
    expect(desk.locator("form .field__error").first).to_be_visible()
    assert desk.url.endswith("/note")
    desk.evaluate("window.__notReloaded = true")

    officer.get_by_label("対応内容").fill("転入届の記載を一緒に確認し、提出していただきました。")
    officer.get_by_label("結果", exact=True).fill("受理")
    officer.get_by_role("button", name="対応記録を登録して完了").click()
    expect(officer.locator(".flashes")).to_contain_text("対応記録を登録しました。")

    timeline = desk.locator("#timeline")
    expect(timeline).to_contain_text("対応内容：転入届の記載を一緒に確認し", timeout=LIVE_MS)
    expect(panel).to_contain_text("対応済", timeout=LIVE_MS)
    # The header's status badge follows too (it used to stay 引継中).
    expect(desk.locator(".ticket-head__meta")).to_contain_text("対応中", timeout=LIVE_MS)
    expect(desk.locator(".ticket-head__meta")).not_to_contain_text("引継中")
    assert desk.evaluate("window.__notReloaded === true"), "the ticket page was reloaded"
