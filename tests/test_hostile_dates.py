"""Year 0001 and year 9999 in every date and date-time input: a clear answer, never a 500.

Python's datetime refuses to move 0001-01-01 00:00 in Tokyo to UTC ("date value out of range"),
and 9999-12-31 plus a slot overflows the other way; PostgreSQL and SQLite alike never see them.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.booking.models import Booking
from consult.extensions import db
from handoff.models import Handoff, Response, Urgency
from tests.channels.booking.helpers import form_data, slot_in

EARLY, LATE = "0001-01-01T00:00", "9999-12-31T23:59"
EARLY_DAY, LATE_DAY = "0001-01-01", "9999-12-31"
RANGE_MESSAGE = "2000年1月1日から2100年12月31日までの日付で入力してください。"


def _bookings() -> int:
    return db.session.scalar(sa.select(sa.func.count(Booking.id)))


def test_public_booking_of_year_1_or_9999_is_refused_with_the_usual_message(client):
    expected = {EARLY: "過去の日時は予約できません。", LATE: "予約できるのは8週間先までです。"}
    for start, message in expected.items():
        response = client.get(f"/booking/details?mode=phone&start={start}&lang=ja")
        assert response.status_code == 422, (start, response.status_code)
        assert message in response.get_data(as_text=True)
        response = client.post(
            "/booking/details?lang=ja", data={**form_data(slot_in(7)), "start": start}
        )
        assert response.status_code == 422, (start, response.status_code)
        assert message in response.get_data(as_text=True)
        response = client.get(f"/booking/details?mode=phone&start={start}&lang=en")
        assert response.status_code == 422, (start, response.status_code)
    assert _bookings() == 0


def test_staff_booking_of_year_1_or_9999_is_refused(client, login_as):
    login_as("consultant")
    data = {"mode": "phone", "name": "山田 花子", "kana": "やまだ はなこ", "phone": "0878392111"}
    for start in (EARLY, LATE):
        response = client.post(
            "/booking/staff/new", data={**data, "start": start, "content": "相談"}
        )
        assert response.status_code == 422, (start, response.status_code)
    assert _bookings() == 0


def test_report_periods_in_year_1_or_9999_are_refused(client, login_as):
    login_as("supervisor")
    for first, last in ((EARLY_DAY, "0001-12-31"), ("9999-01-01", LATE_DAY)):
        response = client.get(f"/reports?start={first}&end={last}")
        assert response.status_code == 422, (first, response.status_code)
        assert "期間は" in response.get_data(as_text=True)
        response = client.get(f"/reports/quarterly?start={first}&end={last}")
        assert response.status_code == 422, (first, response.status_code)
        response = client.get(f"/reports/export/tickets.csv?start={first}&end={last}")
        assert response.status_code in (400, 422), (first, response.status_code)
        response = client.get(f"/handoffs/overview?start={first}&end={last}")
        assert response.status_code in (200, 422), (first, response.status_code)
        assert "期間は" in response.get_data(as_text=True)


def test_date_filters_of_staff_pages_in_year_1_or_9999_fall_back(client, login_as):
    login_as("admin")
    assert client.get(f"/admin/audit?since={EARLY_DAY}&until={LATE_DAY}").status_code == 200
    client.post("/logout")
    login_as("consultant")
    for day in (EARLY_DAY, LATE_DAY):
        assert client.get(f"/booking/staff/day?date={day}").status_code == 200, day
        assert client.get(f"/booking/staff/week?date={day}").status_code == 200, day


def test_staff_forms_refuse_dates_outside_2000_to_2100(
    client, login_as, make_ticket, make_department
):
    login_as("consultant")
    ticket = make_ticket()
    department = make_department()
    for moment in (EARLY, LATE):
        response = client.post(
            "/phone/new",
            data={
                "first_note": "保険料の相談",
                "duration_minutes": "5",
                "callback_needed": "y",
                "callback_due_at": moment,
            },
        )
        assert response.status_code == 422, (moment, response.status_code)
        assert RANGE_MESSAGE in response.get_data(as_text=True)
        response = client.post(
            "/incidents/new",
            data={"occurred_at": moment, "description": "大声で威圧された", "categories": "abuse"},
        )
        assert response.status_code == 422, (moment, response.status_code)
        assert RANGE_MESSAGE in response.get_data(as_text=True)
        response = client.post(
            f"/tickets/{ticket.number}/handoffs",
            data={
                "departments": str(department.id),
                "summary": "ご相談の内容",
                "response": Response.VISIT.value,
                "urgency": Urgency.NORMAL.value,
                "due_at": moment,
            },
        )
        assert response.status_code in (302, 422), (moment, response.status_code)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Handoff.id))) == 0
    client.post("/logout")
    login_as("admin")
    for day in (EARLY_DAY, LATE_DAY):
        response = client.post("/admin/calendar/exceptions", data={"day": day, "closed": "y"})
        assert response.status_code == 422, (day, response.status_code)
        assert RANGE_MESSAGE in response.get_data(as_text=True)
        response = client.post(
            "/admin/calendar/rota",
            data={"first": EARLY_DAY, "last": day, "departments": str(department.id)},
        )
        assert response.status_code == 422, (day, response.status_code)
        assert RANGE_MESSAGE in response.get_data(as_text=True)
