"""Online booking in a real browser, with the keyboard only, in Japanese and in English.

A citizen chooses a purpose, a mode and a free slot, fills in the form (once with mistakes),
books, receives the confirmation at a real SMTP server on 127.0.0.1 with an iCalendar invitation,
moves the booking with the link from the mail and cancels it. axe-core checks WCAG 2.1 A/AA on
every public page visited; the console watch fails the test on any console error or CSP
violation. On SQLite and on PostgreSQL (the fixtures parametrize).
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from playwright.sync_api import Locator, Page, expect

from consult.extensions import db
from tests.e2e.conftest import assert_accessible

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")
MAX_TABS = 400


# --- keyboard ------------------------------------------------------------------------------------


def is_focused(target: Locator) -> bool:
    return target.evaluate("el => el === document.activeElement")


def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> int:
    """Press Tab (or Shift+Tab) until `target` has the focus; returns how many presses it took.

    Fails when the element cannot be reached with the keyboard.
    """
    expect(target).to_be_visible()
    key = "Shift+Tab" if backwards else "Tab"
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press(key)
        if is_focused(target):
            return presses
    raise AssertionError(f"{target} is not reachable with {key}")


def focused_outline(page: Page) -> str:
    """The focused element's outline, to check that the focus is visible."""
    return page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle + ' ' + s.outlineWidth; }"
    )


def type_into(page: Page, field: Locator, text: str) -> None:
    tab_to(page, field)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


# --- mail ----------------------------------------------------------------------------------------


def invitation_of(message: EmailMessage) -> Calendar:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            calendar = Calendar.from_ical(payload)  # bytes: never a path
            assert not calendar.errors
            return calendar
    raise AssertionError("no text/calendar part in the mail")


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def event_of(calendar: Calendar):
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def delivered(server, smtp_server, count: int) -> list[tuple[list[str], EmailMessage]]:
    report = server.deliver_mail()
    assert len(smtp_server.messages) == count, (report, smtp_server.messages)
    return smtp_server.messages


def slot_start(href: str) -> datetime:
    match = re.search(r"start=(\d{4}-\d\d-\d\dT\d\d)(?:%3A|:)(\d\d)", href)
    assert match, href
    return datetime.fromisoformat(f"{match.group(1)}:{match.group(2)}").replace(tzinfo=TOKYO)


def choose_slot(page: Page, index: int) -> datetime:
    """On a slots page: go to next week with the keyboard, then open the `index`-th free slot."""
    tab_to(
        page,
        page.get_by_role("navigation", name=re.compile("週の切り替え|Weeks")).locator("a").last,
    )
    week = int(re.search(r"week=(\d+)", page.url).group(1)) if "week=" in page.url else 0
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"week={week + 1}\b"))
    assert_accessible(page, "slots, week 2")
    slot = page.locator(".slot-list a").nth(index)
    start = slot_start(slot.get_attribute("href"))
    tab_to(page, slot)
    assert focused_outline(page).split()[0] != "none", "the focus is not visible on a slot"
    page.keyboard.press("Enter")
    return start


# --- the test ------------------------------------------------------------------------------------


def test_keyboard_booking_in_japanese_mail_move_cancel(
    mail_live_server, smtp_server, page: Page, console_watch
):
    server = mail_live_server
    category = server.make_category("介護・福祉")
    page.goto(f"{server.url}/booking/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="相談の予約", level=1)).to_be_visible()
    assert_accessible(page, "choose purpose and mode (ja)")

    # The skip link comes first and leads to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="本文へ移動")).to_be_focused()

    # Purpose: the select, with the arrow keys.
    purpose = page.get_by_label("相談の分類")
    tab_to(page, purpose)
    page.keyboard.press("ArrowDown")
    expect(purpose.locator("option:checked")).to_have_text(category)

    # Mode: the radio group; arrows move the choice (電話, then back to 窓口).
    counter = page.get_by_role("radio", name="窓口")
    page.keyboard.press("Tab")
    expect(counter).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="電話")).to_be_checked()
    page.keyboard.press("ArrowUp")
    expect(counter).to_be_checked()
    tab_to(page, page.get_by_role("button", name="空いている日時を見る"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("日時を選ぶ（窓口）")
    assert_accessible(page, "slots (ja)")
    first_start = choose_slot(page, 3)

    # The details form: first with mistakes.
    expect(page.get_by_role("heading", name="お客様の情報", level=1)).to_be_visible()
    assert_accessible(page, "details (ja)")
    type_into(page, page.get_by_label(re.compile("^氏名")), "山田 花子")
    type_into(page, page.get_by_label("メールアドレス"), "hanako@")
    submit = page.get_by_role("button", name="予約する")
    tab_to(page, submit)
    console_watch.expect(r"status of 422 .*/booking/details")  # the form with errors
    page.keyboard.press("Enter")

    expect(page.get_by_role("alert").first).to_contain_text("入力内容を確認してください。")
    kana = page.get_by_label("ふりがな")
    expect(kana).to_have_attribute("aria-invalid", "true")
    expect(kana).to_have_accessible_description(re.compile("ふりがなを入力してください。"))
    expect(page.get_by_label("メールアドレス")).to_have_accessible_description(
        re.compile("メールアドレスの形式が正しくありません。")
    )
    content = page.get_by_label("相談内容")
    expect(content).to_have_accessible_description(re.compile("相談内容を入力してください。"))
    consent = page.get_by_role("checkbox", name="個人情報の取扱いに同意します")
    expect(consent).to_have_accessible_description(
        re.compile("個人情報の取扱いへの同意が必要です。")
    )
    assert_accessible(page, "details with errors (ja)")
    with server.app.app_context():
        from channels.booking.models import Booking

        assert db.session.scalar(db.select(db.func.count()).select_from(Booking)) == 0
        db.session.remove()

    # Corrected, Shift+Tab back to a field already passed, consent with Space, Enter to send.
    type_into(page, kana, "やまだ はなこ")
    type_into(page, page.get_by_label("メールアドレス"), "ｈａｎａｋｏ@example.jp")
    type_into(page, page.get_by_label("電話番号"), "０８７－８３９－２１１１")
    type_into(page, content, "介護保険の申請について、必要な書類を知りたい")
    tab_to(page, consent)
    page.keyboard.press("Space")
    expect(consent).to_be_checked()
    tab_to(page, page.get_by_label("電話番号"), backwards=True)
    tab_to(page, submit)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="予約の確認", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("予約を受け付けました。")
    reference = page.locator(".booking-ref").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9-]{6,}", reference), reference
    expect(page.locator(".booking-summary")).to_contain_text("窓口")
    expect(page.locator(".booking-summary")).to_contain_text(
        f"{first_start.month}月{first_start.day}日"
    )
    assert_accessible(page, "confirmation (ja)")

    # The mail, through the outbox, at the local SMTP server.
    (rcpt, mail) = delivered(server, smtp_server, 1)[0]
    assert rcpt == ["hanako@example.jp"]
    assert "ご相談の予約を受け付けました" in mail["Subject"] and reference in mail["Subject"]
    body = text_of(mail)
    assert "山田 花子 様" in body and reference in body
    manage_url = re.search(r"http://127\.0\.0\.1:\d+/booking/manage/\S+", body).group(0)
    cal = invitation_of(mail)
    assert cal["METHOD"] == "REQUEST"
    event = event_of(cal)
    uid = str(event["UID"])
    assert event.start == first_start and event.start.tzinfo.key == "Asia/Tokyo"
    assert event["DTSTAMP"] and int(event.get("SEQUENCE", 0)) == 0
    assert "窓口" in str(event["SUMMARY"])

    # The link from the mail: move the booking.
    page.goto(manage_url)
    expect(page.get_by_role("heading", name="予約の確認", level=1)).to_be_visible()
    assert_accessible(page, "manage (ja)")
    tab_to(page, page.get_by_role("link", name="日時を変更する"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("現在の予約")).to_be_visible()
    assert_accessible(page, "move: slots (ja)")
    second_start = choose_slot(page, 6)
    assert second_start != first_start
    expect(page.get_by_role("heading", name="日時の変更", level=1)).to_be_visible()
    assert_accessible(page, "move: confirm (ja)")
    tab_to(page, page.get_by_role("button", name="この日時に変更する"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("予約の日時を変更しました")
    expect(page.locator(".booking-summary")).to_contain_text(f"{second_start:%H:%M}")
    assert_accessible(page, "moved (ja)")

    (_, moved) = delivered(server, smtp_server, 2)[1]
    assert "ご相談の予約を変更しました" in moved["Subject"]
    moved_event = event_of(invitation_of(moved))
    assert invitation_of(moved)["METHOD"] == "REQUEST"
    assert str(moved_event["UID"]) == uid
    assert int(moved_event["SEQUENCE"]) > int(event.get("SEQUENCE", 0))
    assert moved_event.start == second_start

    # Cancel.
    tab_to(page, page.get_by_role("button", name="予約を取り消す"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("予約を取り消しました。")
    expect(page.locator(".booking-summary")).to_contain_text("取消済み")
    expect(page.get_by_role("button", name="予約を取り消す")).to_have_count(0)
    assert_accessible(page, "cancelled (ja)")

    (_, cancelled) = delivered(server, smtp_server, 3)[2]
    assert "ご相談の予約を取り消しました" in cancelled["Subject"]
    cancel_cal = invitation_of(cancelled)
    assert cancel_cal["METHOD"] == "CANCEL"
    cancel_event = event_of(cancel_cal)
    assert str(cancel_event["UID"]) == uid
    assert int(cancel_event["SEQUENCE"]) > int(moved_event["SEQUENCE"])
    assert str(cancel_event["STATUS"]) == "CANCELLED"


def test_keyboard_booking_in_english_by_phone(
    mail_live_server, smtp_server, page: Page, console_watch
):
    server = mail_live_server
    page.goto(f"{server.url}/booking/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Book a consultation", level=1)).to_be_visible()
    assert_accessible(page, "choose purpose and mode (en)")

    tab_to(page, page.get_by_role("radio", name="At the counter"))
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="By phone")).to_be_checked()
    tab_to(page, page.get_by_role("button", name="See free times"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Choose a time")
    expect(page.get_by_role("heading", level=1)).to_contain_text("By phone")
    assert_accessible(page, "slots (en)")
    start = choose_slot(page, 2)
    expect(page.get_by_role("heading", name="Your details", level=1)).to_be_visible()
    assert_accessible(page, "details (en)")

    # Switching language keeps the chosen slot (the link carries the query).
    tab_to(page, page.get_by_role("link", name="日本語"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="お客様の情報", level=1)).to_be_visible()
    expect(page.locator(".booking-summary")).to_contain_text(f"{start.month}月{start.day}日")
    tab_to(page, page.get_by_role("link", name="English"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your details", level=1)).to_be_visible()

    # Errors in English, next to their fields: a phone consultation needs a phone number.
    type_into(page, page.get_by_label(re.compile("^Name")), "Emma Brown")
    type_into(page, page.get_by_label("Email address"), "emma@example.com")
    submit = page.get_by_role("button", name="Book")
    tab_to(page, submit)
    console_watch.expect(r"status of 422 .*/booking/details")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").first).to_contain_text("Please check what you entered.")
    phone = page.get_by_label("Phone number")
    expect(phone).to_have_accessible_description(
        re.compile("Please enter a phone number for a phone consultation.")
    )
    expect(page.get_by_label("Reading of your name")).to_have_accessible_description(
        re.compile("Please enter the reading of your name.")
    )
    assert_accessible(page, "details with errors (en)")

    # The language links on the error page still lead back to this slot.
    expect(page.get_by_role("link", name="日本語")).to_have_attribute(
        "href", re.compile(r"start=.*T.*&|start=")
    )

    type_into(page, page.get_by_label("Reading of your name"), "えま ぶらうん")
    type_into(page, phone, "090-1234-5678")
    type_into(
        page, page.get_by_label("What you would like to consult about"), "Moving-in procedures"
    )
    consent = page.get_by_role("checkbox", name="I agree to how my personal information is handled")
    tab_to(page, consent)
    page.keyboard.press("Space")
    tab_to(page, submit)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your booking", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your booking is confirmed.")
    expect(page.locator(".booking-summary")).to_contain_text("The centre will call you")
    reference = page.locator(".booking-ref").inner_text().strip()
    assert_accessible(page, "confirmation (en)")

    (rcpt, mail) = delivered(server, smtp_server, 1)[0]
    assert rcpt == ["emma@example.com"]
    assert mail["Subject"] == f"Your consultation is booked [{reference}]"
    body = text_of(mail)
    assert "Dear Emma Brown," in body and "The centre will call you" in body
    cal = invitation_of(mail)
    assert cal["METHOD"] == "REQUEST"
    event = event_of(cal)
    assert event.start == start and event.start.tzinfo.key == "Asia/Tokyo"
    assert "By phone" in str(event["SUMMARY"])
    manage_url = re.search(r"http://127\.0\.0\.1:\d+/booking/manage/\S+", body).group(0)

    page.goto(manage_url)
    expect(page.get_by_role("heading", name="Your booking", level=1)).to_be_visible()
    assert_accessible(page, "manage (en)")
    tab_to(page, page.get_by_role("link", name="Move to another time"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Current booking")).to_be_visible()
    assert_accessible(page, "move: slots (en)")
    new_start = choose_slot(page, 5)
    tab_to(page, page.get_by_role("button", name="Change to this time"))
    assert_accessible(page, "move: confirm (en)")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your booking has been moved.")
    assert_accessible(page, "moved (en)")
    (_, moved) = delivered(server, smtp_server, 2)[1]
    assert moved["Subject"] == f"Your booking has been moved [{reference}]"
    moved_event = event_of(invitation_of(moved))
    assert moved_event.start == new_start and moved_event["UID"] == event["UID"]
    assert int(moved_event["SEQUENCE"]) > int(event.get("SEQUENCE", 0))

    tab_to(page, page.get_by_role("button", name="Cancel the booking"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your booking has been cancelled.")
    expect(page.locator(".booking-summary")).to_contain_text("Cancelled")
    assert_accessible(page, "cancelled (en)")
    (_, cancelled) = delivered(server, smtp_server, 3)[2]
    assert cancelled["Subject"] == f"Your booking has been cancelled [{reference}]"
    assert invitation_of(cancelled)["METHOD"] == "CANCEL"


def fill_slot(server, start: datetime) -> None:
    """Other citizens take every seat of the slot (through the service)."""
    from channels.booking import services
    from consult.services.actor import SYSTEM

    with server.app.app_context():
        for n in range(20):
            data = services.BookingInput(
                mode="counter",
                starts_at=start,
                name=f"先客 {n}",
                kana="せんきゃく",
                content="先に予約",
                phone="087-839-2111",
            )
            try:
                services.create_booking(SYSTEM, data)
                db.session.commit()
            except services.SlotFull:
                db.session.rollback()
                break
        else:
            raise AssertionError("the slot never became full")
        db.session.remove()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_full_slot_invalid_link_and_privacy_pages(live_server, page: Page, console_watch, lang):
    server = live_server
    ja = lang == "ja"
    page.goto(f"{server.url}/booking/slots?mode=counter&week=1&lang={lang}")
    start = choose_slot(page, 4)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "お客様の情報" if ja else "Your details"
    )
    fill_slot(server, start)  # meanwhile, the slot fills up

    type_into(page, page.get_by_label(re.compile("^氏名" if ja else "^Name")), "高松 一郎")
    type_into(page, page.get_by_label("ふりがな" if ja else "Reading of your name"), "たかまつ")
    type_into(page, page.get_by_label("電話番号" if ja else "Phone number"), "087-811-2345")
    type_into(
        page,
        page.get_by_label("相談内容" if ja else "What you would like to consult about"),
        "年金",
    )
    tab_to(page, page.get_by_role("checkbox"))
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="予約する" if ja else "Book"))
    console_watch.expect(r"status of 409 .*/booking/details")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "満席です" if ja else "This time is fully booked"
    )
    nearest = page.locator(".slot-list a")
    expect(nearest.first).to_be_visible()
    assert_accessible(page, f"full slot ({lang})")
    # A nearest free slot leads straight back to the form.
    tab_to(page, nearest.first)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "お客様の情報" if ja else "Your details"
    )

    console_watch.expect(r"status of 404 .*/booking/manage/")
    page.goto(f"{server.url}/booking/manage/not-a-real-token")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "リンクが無効です" if ja else "This link is not valid"
    )
    assert_accessible(page, f"invalid link ({lang})")

    page.goto(f"{server.url}/booking/privacy")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert_accessible(page, f"privacy ({lang})")

    # No mode chosen: back to the first page, with the message.
    page.goto(f"{server.url}/booking/slots")
    expect(page.get_by_role("alert")).to_have_text(
        "相談の方法を選んでください。" if ja else "Please choose how you want to consult."
    )
    assert_accessible(page, f"first page with a message ({lang})")

    # A slot that cannot be read: the problem page.
    console_watch.expect(r"status of 400 .*/booking/details")
    page.goto(f"{server.url}/booking/details?mode=counter&start=yesterday")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "予約できませんでした" if ja else "The booking could not be made"
    )
    assert_accessible(page, f"problem ({lang})")
