"""The public booking flow over HTTP: book, mail with invitation, manage link, move, cancel."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from icalendar import Calendar

from channels.booking import services
from channels.booking.models import Booking, BookingSlot, BookingStatus, Mode
from consult.extensions import db
from consult.models import OutboxMessage
from consult.settings import override as override_settings
from consult.timeutil import TOKYO

from .helpers import form_data, set_capacity, slot_in


def _ics(message: OutboxMessage) -> Calendar:
    import base64

    attachment = message.headers["attachments"][0]
    cal = Calendar.from_ical(base64.b64decode(attachment["data"]))
    assert not cal.errors
    return cal


def _book(client, start, **overrides):
    return client.post("/booking/details", data=form_data(start, **overrides))


def test_index_and_slots_pages(client):
    page = client.get("/booking/")
    assert page.status_code == 200
    assert "相談の予約" in page.get_data(as_text=True)
    slots = client.get("/booking/slots?mode=counter&week=1")
    text = slots.get_data(as_text=True)
    assert slots.status_code == 200
    assert "/booking/details?mode=counter" in text


def test_book_confirm_mail_move_cancel(client, app):
    start = slot_in(7)
    response = _book(client, start)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    manage = response.headers["Location"]
    page = client.get(manage).get_data(as_text=True)
    booking = db.session.scalar(sa.select(Booking))
    assert booking.reference in page
    assert "予約を受け付けました" in page
    assert booking.email == "hanako@example.jp"
    assert booking.phone == "0878392111"
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert mail.recipient == "hanako@example.jp"
    assert booking.reference in mail.subject
    assert "/booking/manage/" in mail.body
    assert mail.headers["attachments"][0]["content_type"].startswith(
        "text/calendar; method=REQUEST"
    )
    cal = _ics(mail)
    assert cal["METHOD"] == "REQUEST"
    event = cal.events[0]
    assert str(event["UID"]) == booking.uid
    assert event.start == start and str(event.start.tzinfo) == "Asia/Tokyo"
    assert event.end == start + timedelta(minutes=30)
    assert "DTSTAMP" in event and int(event["SEQUENCE"]) == 0

    # Move, through the manage link.
    token = manage.rsplit("/", 1)[1].split("?")[0]
    target = slot_in(8)
    moved = client.post(f"/booking/manage/{token}/move", data={"start": f"{target:%Y-%m-%dT%H:%M}"})
    assert moved.status_code == 303, moved.get_data(as_text=True)[:1000]
    db.session.expire_all()
    booking = db.session.get(Booking, booking.id)
    assert booking.starts_at == target
    mails = list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))
    cal2 = _ics(mails[-1])
    assert cal2["METHOD"] == "REQUEST"
    assert str(cal2.events[0]["UID"]) == booking.uid
    assert int(cal2.events[0]["SEQUENCE"]) == 1
    assert cal2.events[0].start == target
    slots = {s.starts_at: s.booked for s in db.session.scalars(sa.select(BookingSlot))}
    assert slots[start] == 0 and slots[target] == 1

    cancelled = client.post(f"/booking/manage/{token}/cancel")
    assert cancelled.status_code == 303
    db.session.expire_all()
    booking = db.session.get(Booking, booking.id)
    assert booking.status is BookingStatus.CANCELLED
    mails = list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))
    cal3 = _ics(mails[-1])
    assert cal3["METHOD"] == "CANCEL"
    assert str(cal3.events[0]["UID"]) == booking.uid
    assert int(cal3.events[0]["SEQUENCE"]) == 2
    assert "取消済み" in client.get(f"/booking/manage/{token}").get_data(as_text=True)


def test_full_slot_offers_nearest(client, app):
    set_capacity(Mode.VIDEO, 1)
    start = slot_in(9)
    assert _book(client, start, mode="video").status_code == 303
    second = _book(client, start, mode="video", email="other@example.jp")
    text = second.get_data(as_text=True)
    assert second.status_code == 409
    assert "満席" in text
    assert "/booking/details?mode=video" in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_bad_input_books_nothing(client, app):
    override_settings(app, BOOKING_RATE_LIMIT="100 per minute")
    start = slot_in(7)
    cases = [
        (
            form_data(start, email="not-an-email", phone=""),
            "メールアドレスの形式が正しくありません",
        ),
        (form_data(start, content="あ" * 10_000), "2,000文字以内"),
        (form_data(start, consent=""), "同意が必要"),
        (form_data(start, email="", phone=""), "どちらか"),
        (form_data(start, phone="12345"), "電話番号の形式"),
        (form_data(start - timedelta(days=8)), "過去の日時"),
        (form_data(slot_in(7, start.time().replace(hour=3))), "受付時間外"),
        (form_data(slot_in(7, start.time().replace(minute=10))), "受付時間外"),
        (form_data(slot_in(60)), "8週間先"),
    ]
    for data, message in cases:
        response = client.post("/booking/details", data=data)
        text = response.get_data(as_text=True)
        assert response.status_code in (400, 422), (message, response.status_code)
        assert message in text, message
    bot = client.post("/booking/details", data=form_data(start, website="http://spam"))
    assert bot.status_code == 400
    garbage = client.post("/booking/details", data={**form_data(start), "start": "2026-13-45T99"})
    assert garbage.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_tampered_or_expired_manage_link(client, app):
    assert _book(client, slot_in(7)).status_code == 303
    booking = db.session.scalar(sa.select(Booking))
    token = services.manage_token(booking)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "nonsense", token + "x"):
        page = client.get(f"/booking/manage/{bad}")
        text = page.get_data(as_text=True)
        assert page.status_code == 404
        assert "リンクが正しくないか" in text
        assert booking.name not in text and booking.reference not in text
        assert client.post(f"/booking/manage/{bad}/cancel").status_code == 404
    try:
        services.booking_from_token(token, max_age=-1)
    except services.NotFound as error:
        assert "有効期限" in error.message
    else:
        raise AssertionError("an expired token was accepted")
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status is BookingStatus.BOOKED


def test_english_pages_and_mail(client, app):
    page = client.get("/booking/?lang=en").get_data(as_text=True)
    assert "Book a consultation" in page
    response = _book(client, slot_in(7))
    assert response.status_code == 303
    manage = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Booking reference" in manage
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert "Your consultation is booked" in mail.subject
    assert "Booking reference" in mail.body
    booking = db.session.scalar(sa.select(Booking))
    assert booking.language == "en"
    assert re.search(r"\d{2}:\d{2}", mail.body)


def test_escaping_of_script(client, app, login_as):
    response = _book(client, slot_in(7), name="<script>alert(1)</script>")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


def test_reminder_the_day_before(app, client):
    assert _book(client, slot_in(1)).status_code == 303
    assert _book(client, slot_in(3), email="b@example.jp").status_code == 303
    db.session.commit()
    assert services.send_reminders() == 1
    assert services.send_reminders() == 0
    db.session.commit()
    subjects = [m.subject for m in db.session.scalars(sa.select(OutboxMessage))]
    assert sum("明日のご相談予約" in s for s in subjects) == 1


def test_time_shown_in_tokyo(client, app):
    start = slot_in(7)
    response = _book(client, start)
    text = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{start.astimezone(TOKYO):%H:%M}" in text


def test_rate_limit_per_address(client, app):
    start = slot_in(7)
    answers = [
        client.post("/booking/details", data=form_data(start, consent="")).status_code
        for _ in range(11)
    ]
    assert answers[:10] == [422] * 10
    assert answers[10] == 429
