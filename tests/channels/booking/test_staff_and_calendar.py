"""Staff side (day view, on-behalf booking, check-in, no-show, feeds) and the calendar rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from icalendar import Calendar

from channels.booking import services
from channels.booking.models import Booking, BookingStatus, Mode
from consult.extensions import db
from consult.models import AuditEvent, Channel, Ticket
from consult.services import calendar
from consult.services.actor import Actor
from consult.timeutil import TOKYO
from tests.helpers import sign_in

from .helpers import form_data, slot_in


def _book(client, start, **overrides):
    response = client.post("/booking/details", data=form_data(start, **overrides))
    assert response.status_code == 303, response.get_data(as_text=True)[:1000]
    return db.session.scalar(sa.select(Booking).order_by(Booking.id.desc()))


def test_day_view_check_in_makes_a_ticket(app, client, make_staff):
    start = slot_in(2)
    booking = _book(client, start, content="年金の書類を持っていきます")
    staff = make_staff("consultant")
    desk = app.test_client()
    sign_in(desk, staff)
    page = desk.get(f"/booking/staff/day?date={start.date().isoformat()}").get_data(as_text=True)
    assert "山田 花子" in page and "窓口1" in page
    assert db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.object_type == "booking")
    )
    response = desk.post(f"/booking/staff/b/{booking.id}/check-in")
    assert response.status_code == 302
    db.session.expire_all()
    booking = db.session.get(Booking, booking.id)
    assert booking.status is BookingStatus.CHECKED_IN
    ticket = db.session.get(Ticket, booking.ticket_id)
    assert ticket.channel is Channel.COUNTER
    assert response.headers["Location"].endswith(ticket.number)
    assert "年金の書類を持っていきます" in desk.get(f"/tickets/{ticket.number}").get_data(
        as_text=True
    )
    # A second check-in is refused and creates nothing.
    desk.post(f"/booking/staff/b/{booking.id}/check-in")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


def test_no_show_only_after_start(app, client, make_staff):
    booking = _book(client, slot_in(2))
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    try:
        services.mark_no_show(actor, booking)
    except services.ValidationFailed as error:
        assert "開始時刻の前" in error.message
    services.mark_no_show(actor, booking, now=booking.starts_at + timedelta(minutes=20))
    assert booking.status is BookingStatus.NO_SHOW


def test_staff_books_on_behalf_of_a_caller(app, make_staff):
    desk = app.test_client()
    sign_in(desk, make_staff("supervisor"))
    start = slot_in(5, time(11, 0))
    response = desk.post(
        "/booking/staff/new",
        data={
            "mode": "phone",
            "start": f"{start:%Y-%m-%dT%H:%M}",
            "category_id": "",
            "name": "佐藤 一郎",
            "kana": "さとう いちろう",
            "phone": "090-1234-5678",
            "email": "",
            "content": "相続の相談",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1500]
    booking = db.session.scalar(sa.select(Booking))
    assert booking.mode is Mode.PHONE and booking.phone == "09012345678"
    assert booking.created_by_id is not None


def test_video_url_is_mailed_when_set(app, client, make_staff):
    from consult.models import OutboxMessage

    booking = _book(client, slot_in(4), mode="video")
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    services.set_details(actor, booking, "https://meet.example.jp/abc", None)
    db.session.commit()
    last = db.session.scalar(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()))
    assert "https://meet.example.jp/abc" in last.body
    try:
        services.set_details(actor, booking, "javascript:alert(1)", None)
    except services.ValidationFailed as error:
        assert "https://" in error.message


def test_room_feed_secret_url_and_reset(app, client, make_staff):
    booking = _book(client, slot_in(3))
    staff = make_staff("consultant")
    actor = Actor(staff, "127.0.0.1")
    token = services.reset_feed(actor, "room", "counter:1")
    db.session.commit()
    feed = client.get(f"/booking/feeds/{token}.ics")
    assert feed.status_code == 200
    cal = Calendar.from_ical(feed.get_data())
    assert [str(e["UID"]) for e in cal.events] == [booking.uid]
    assert booking.name not in feed.get_data(as_text=True)  # no personal data in feeds
    new_token = services.reset_feed(actor, "room", "counter:1")
    db.session.commit()
    assert client.get(f"/booking/feeds/{token}.ics").status_code == 404
    assert client.get(f"/booking/feeds/{new_token}.ics").status_code == 200


def test_admin_exception_closes_the_day_everywhere(app, client, make_staff):
    admin = Actor(make_staff("admin"), "127.0.0.1")
    day = slot_in(10).date()
    calendar.save_exception(admin, day, True, None, None, "設備点検")
    db.session.commit()
    assert calendar.centre_hours(day) is None  # the kernel sees it too
    desk = app.test_client()
    sign_in(desk, make_staff("consultant"))
    page = desk.get(f"/booking/staff/day?date={day.isoformat()}").get_data(as_text=True)
    assert f"受付時間：{calendar.hours_text(day)}" in page and "は休業（設備点検）" in page
    slots = services.free_slots([Mode.COUNTER], start=day, days=1)[Mode.COUNTER]
    assert slots == []
    response = client.post("/booking/details", data=form_data(slot_in(10)))
    assert response.status_code == 422 and "受付時間外" in response.get_data(as_text=True)
    # An extra evening session on another day.
    other = slot_in(11).date()
    calendar.save_exception(admin, other, False, time(9, 0), time(19, 0), "臨時延長")
    db.session.commit()
    times = [
        s.starts_at.time()
        for s in services.free_slots([Mode.PHONE], start=other, days=1)[Mode.PHONE]
    ]
    assert time(18, 30) in times


def test_capacity_per_day_type_and_slot_length(app, make_staff):
    admin = Actor(make_staff("admin"), "127.0.0.1")
    table = {m: {"weekday": 0, "weekend": 0, "holiday": 0, "year_end": 0} for m in Mode}
    table[Mode.COUNTER] = {"weekday": 3, "weekend": 1, "holiday": 1, "year_end": 1}
    services.save_settings(admin, 60, table)
    db.session.commit()
    now = datetime(2026, 4, 27, 0, 0, tzinfo=UTC)
    result = services.free_slots(list(Mode), now=now, start=date(2026, 5, 6), days=1)
    counter = result[Mode.COUNTER]
    assert result[Mode.PHONE] == []
    # 2026-05-06 is 振替休日: holiday hours 9:00–15:00, capacity 1, 60-minute slots.
    assert [s.starts_at.hour for s in counter] == [9, 10, 11, 12, 13, 14]
    assert {s.capacity for s in counter} == {1}


def test_calendar_real_dates_in_slots(app):
    """振替休日 and 国民の休日 get holiday hours; 11/24 is a weekday; 12/29–1/3 year-end hours."""
    cases = [
        (date(2026, 5, 6), time(9, 0), time(15, 0)),
        (date(2026, 9, 22), time(9, 0), time(15, 0)),
        (date(2026, 11, 24), time(8, 30), time(17, 0)),
    ] + [(date(2026, 12, 29) + timedelta(days=n), time(9, 0), time(15, 0)) for n in range(6)]
    for day, first, last_end in cases:
        now = datetime.combine(day - timedelta(days=10), time(0), TOKYO)
        slots = services.free_slots([Mode.PHONE], now=now, start=day, days=1)[Mode.PHONE]
        assert slots[0].starts_at.time() == first, day
        assert slots[-1].ends_at.time() == last_end, day
    assert calendar.day_type(date(2027, 1, 3)) is calendar.DayType.YEAR_END


def test_duty_rota_in_turn_and_exported(app, make_staff, make_department, client):
    admin_staff = make_staff("admin")
    admin = Actor(admin_staff, "127.0.0.1")
    a, b = make_department(name="市民課"), make_department(name="福祉課")
    count = calendar.generate_rota(admin, date(2026, 12, 26), date(2027, 1, 4), [a.id, b.id])
    db.session.commit()
    # 12/26–27 weekend, 12/28 Monday is a weekday, 12/29–1/3 year-end: 8 closed days.
    assert count == 8
    assert calendar.duty_department_for(date(2026, 12, 26)).id == a.id
    assert calendar.duty_department_for(date(2026, 12, 27)).id == b.id
    assert calendar.duty_department_for(date(2026, 12, 28)) is None
    assert calendar.duty_department_for(date(2026, 12, 29)).id == a.id
    # The next run carries on the turn.
    calendar.generate_rota(admin, date(2027, 1, 9), date(2027, 1, 10), [a.id, b.id])
    db.session.commit()
    assert calendar.duty_department_for(date(2027, 1, 9)).id == a.id
    desk = app.test_client()
    sign_in(desk, admin_staff)
    ics = desk.get("/admin/calendar/rota.ics")
    assert ics.status_code == 200
    # The address administrators knew under booking still leads there.
    moved = desk.get("/booking/admin/rota.ics")
    assert moved.status_code == 308 and moved.headers["Location"] == "/admin/calendar/rota.ics"
    # the export covers the coming year from today; parse whatever it holds
    Calendar.from_ical(ics.get_data())


def test_tokyo_times_are_stored_in_utc(app, client):
    start = slot_in(6)
    booking = _book(client, start)
    assert booking.starts_at == start.astimezone(UTC)
    assert booking.starts_at.astimezone(TOKYO).hour == 10
