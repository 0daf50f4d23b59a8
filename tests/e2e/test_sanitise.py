"""無害化 in a browser: the ticket page of a mail with a photo and an HTML file shows the photo
made anew and the HTML file's quarantine, in Japanese; the photo drawn is the converted one.

MADOGUCHI_TEST_SCREENSHOTS=docs/screenshots keeps the screenshots."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests import sanitise_files as files
from tests.e2e.conftest import keep_screenshot
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


def _mail_with_files(app) -> str:
    from channels.email import tasks as email_tasks
    from consult.services import safe_files

    def part(name: str, content_type: str, data: bytes) -> str:
        return (
            f"--b\r\nContent-Type: {content_type}\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(data).decode("ascii")
            + "\r\n"
        )

    raw = (
        "From: citizen@example.jp\r\nSubject: =?UTF-8?B?"
        + base64.b64encode("道路の陥没の写真".encode()).decode()
        + "?=\r\nMessage-ID: <e2e-sanitise@example.jp>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhello\r\n"
        + part("photo.jpg", "image/jpeg", files.jpeg_with_gps(640, 480))
        + part("invoice.html", "text/html", files.html())
        + "--b--\r\n"
    ).encode()
    with app.app_context():
        number = email_tasks.ingest(raw).ticket.number
        db.session.commit()
        while safe_files.convert_due(limit=10):
            pass
        db.session.remove()
    return number


def test_the_ticket_page_shows_the_converted_photo_and_the_quarantine_in_japanese(
    live_server, new_page
):
    login, password = live_server.make_staff("consultant", full_name="窓口 花子")
    number = _mail_with_files(live_server.app)
    page = new_page()
    log_in(page, live_server.url, login, password)
    page.goto(f"{live_server.url}/tickets/{number}")
    mail = page.locator(".mail__attachments")
    expect(mail).to_contain_text("photo.jpg")
    expect(mail).to_contain_text("変換済み")
    expect(mail).to_contain_text("隔離中")
    expect(mail).to_contain_text("HTMLファイルはスクリプトやリンクを含むことがあり")
    keep_screenshot(page, "sanitise-ticket.png")

    mail.get_by_role("link", name="photo.jpg").click()
    expect(page.get_by_role("heading", name="photo.jpg")).to_be_visible()
    expect(page.get_by_text("位置情報などのメタデータを取り除きました")).to_be_visible()
    image = page.get_by_role("img", name="1ページ目（変換後の画像）")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.safe-page').complete")
    assert image.evaluate("e => e.naturalWidth") == 640
    assert "/pages/1" in image.get_attribute("src")
    keep_screenshot(page, "sanitise-photo.png")

    page.go_back()
    page.locator(".mail__attachments").get_by_role("link", name="invoice.html").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("このファイルは隔離されています。")
    expect(alert).to_contain_text("原本は開けません")
    expect(page.get_by_role("link", name="原本をダウンロード")).to_have_count(0)
    keep_screenshot(page, "sanitise-quarantine.png")
