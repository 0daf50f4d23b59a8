"""The basics in a browser: the 今日 page, a file attached and handed over, changing a password.

MADOGUCHI_TEST_SCREENSHOTS=docs/screenshots keeps the screenshots for the README."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.conftest import keep_screenshot
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99="
    b"\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _desk_day(live_server, login: str) -> list[str]:
    """Three cases of mine, one callback overdue and one due later today."""
    import sqlalchemy as sa

    from consult.models import Channel, Staff
    from consult.services import callbacks, tickets
    from consult.services.actor import Actor
    from consult.timeutil import utcnow

    with live_server.app.app_context():
        me = db.session.scalar(sa.select(Staff).where(Staff.login == login))
        actor = Actor(me, "127.0.0.1")
        subjects = ["国民健康保険料の減免について", "粗大ごみの出し方", "児童手当の申請"]
        made = [
            tickets.create_ticket(actor, channel=Channel.PHONE, subject=s, assignee=me)
            for s in subjects
        ]
        callbacks.schedule(actor, made[0], utcnow() - timedelta(minutes=20))
        callbacks.schedule(actor, made[1], utcnow() + timedelta(minutes=50))
        db.session.commit()
        numbers = [t.number for t in made]
        db.session.remove()
    return numbers


def test_today_attach_and_hand_over(live_server, new_page, console_watch):
    login, password = live_server.make_staff("consultant", full_name="窓口 花子")
    live_server.make_staff("consultant", full_name="同僚 次郎")
    numbers = _desk_day(live_server, login)
    page = new_page()
    log_in(page, live_server.url, login, password)
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="今日").click()
    expect(page.get_by_role("heading", name="自分の担当（対応中） 3件")).to_be_visible()
    overdue = page.locator("#today-callbacks li.is-overdue")
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text(numbers[0])
    expect(overdue).to_contain_text("期限切れ")
    assert overdue.evaluate("e => getComputedStyle(e).borderLeftStyle") == "solid"
    expect(page.get_by_role("heading", name="今日の予約（自分・未割り当て） 0件")).to_be_visible()
    expect(page.get_by_role("heading", name="回答を待っている引継ぎ 0件")).to_be_visible()
    keep_screenshot(page, "today.png")

    # Attach a photo of a document, then a file that is not allowed.
    page.locator("#today-my-cases").get_by_role("link", name=numbers[0]).click()
    page.get_by_text("ファイルを添付する").click()
    page.locator("#attachment-file").set_input_files(
        files=[{"name": "申請書の写真.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_role("button", name="添付する").click()
    expect(page.get_by_text("ファイルを添付しました。")).to_be_visible()
    expect(page.get_by_role("link", name="「申請書の写真.png」を表示")).to_be_visible()
    # Shown only in its converted form (無害化, tests/e2e/test_sanitise.py): no worker runs here.
    page.locator(".attachment-list").get_by_role("link", name="申請書の写真.png").click()
    expect(page.get_by_text("安全な形式に変換中です")).to_be_visible()
    page.go_back()
    page.get_by_text("ファイルを添付する").click()
    page.locator("#attachment-file").set_input_files(
        files=[{"name": "page.html", "mimeType": "text/html", "buffer": b"<script>1</script>"}]
    )
    console_watch.expect("422.*attachments")  # the refusal: 422, with the message
    page.get_by_role("button", name="添付する").click()
    expect(page.get_by_text("「page.html」は添付できない種類のファイルです。")).to_be_visible()

    # Hand the case to a colleague with a note.
    page.get_by_text("メモを付けて同僚に引き継ぐ").click()
    page.get_by_label("引き継ぐ相手").select_option(label="同僚 次郎（相談員）")
    page.get_by_label("引継ぎのメモ").fill("明日10時に折り返しの約束あり。")
    keep_screenshot(page, "ticket-attachment-handover.png")
    page.get_by_role("button", name="引き継ぐ").click()
    expect(page.get_by_text("相談を引き継ぎました。")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("同僚 次郎さんに引き継ぎました。")


def test_a_password_set_by_an_administrator_is_changed_first(live_server, new_page, console_watch):
    import sqlalchemy as sa

    from consult.models import Staff

    login, password = live_server.make_staff("consultant")
    with live_server.app.app_context():
        db.session.execute(
            sa.update(Staff).where(Staff.login == login).values(must_change_password=True)
        )
        db.session.commit()
        db.session.remove()
    page = new_page()
    log_in(page, live_server.url, login, password)
    expect(page.get_by_role("heading", name="パスワードの変更")).to_be_visible()
    page.goto(f"{live_server.url}/tickets")
    expect(page.get_by_role("heading", name="パスワードの変更")).to_be_visible()
    page.get_by_label("現在のパスワード").fill(password)
    page.get_by_label("新しいパスワード", exact=True).fill("my-own-password-2026")
    page.get_by_label("新しいパスワード（確認のためもう一度）").fill("my-own-password-2027")
    console_watch.expect("422.*account/password")
    page.get_by_role("button", name="パスワードを変更する").click()
    expect(page.get_by_text("確認のための入力と一致しません")).to_be_visible()
    keep_screenshot(page, "account-password.png")
    page.get_by_label("現在のパスワード").fill(password)
    page.get_by_label("新しいパスワード", exact=True).fill("my-own-password-2026")
    page.get_by_label("新しいパスワード（確認のためもう一度）").fill("my-own-password-2026")
    page.get_by_role("button", name="パスワードを変更する").click()
    expect(page.get_by_text("パスワードを変更しました。")).to_be_visible()
    page.goto(f"{live_server.url}/tickets")
    expect(page.get_by_role("heading", name="パスワードの変更")).to_have_count(0)
