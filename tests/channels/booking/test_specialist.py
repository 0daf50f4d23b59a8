"""Specialist sessions (専門相談) over HTTP: the administrator's page, booking a kind with its
intake questions in Japanese and English, the holiday-only 経営相談会, the desk's day view and
the specialist's own list."""

from __future__ import annotations

import base64
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from icalendar import Calendar

from channels.booking import specialist
from channels.booking.models import Booking, BookingSlot, Mode, SessionKind
from consult.extensions import db
from consult.models import AuditEvent, OutboxMessage
from consult.services import calendar
from consult.services.actor import Actor
from consult.services.calendar import DayType
from consult.settings import override as override_settings
from consult.timeutil import TOKYO, tokyo_today
from tests.helpers import sign_in

from .helpers import assert_three_seats_taken, crowd_books, form_data

QUESTIONS = (
    "* 今、いちばん困っていることは | What troubles you most at the moment?\n"
    "以前に相談したことは | Have you consulted anyone before?"
)


def weekday_ahead(days: int = 7) -> date:
    """An ordinary weekday at least `days` ahead, the centre open (no holiday, no year-end)."""
    day = tokyo_today() + timedelta(days=days)
    while calendar.day_type(day) is not DayType.WEEKDAY or calendar.centre_hours(day) is None:
        day += timedelta(days=1)
    return day


def day_off_ahead(days: int = 7) -> date:
    """A weekend day or holiday at least `days` ahead: a day the 経営相談会 may be held."""
    day = tokyo_today() + timedelta(days=days)
    while calendar.day_type(day) is DayType.WEEKDAY:
        day += timedelta(days=1)
    return day


def make_kind(admin, **overrides) -> SessionKind:
    values = {
        "name": "心理カウンセラー",
        "name_en": "Psychological counsellor",
        "mode": "counter",
        "weekdays": [0, 1, 2, 3, 4],
        "opens": time(13, 0),
        "closes": time(16, 0),
        "slot_minutes": 60,
        "capacity": 1,
        "questions": QUESTIONS,
    }
    values.update(overrides)
    kind = specialist.save_kind(Actor(admin, "127.0.0.1"), None, specialist.KindInput(**values))
    db.session.commit()
    return kind


def kind_form(start: datetime, kind: SessionKind, **overrides) -> dict:
    data = form_data(start, mode=kind.mode.value, kind=str(kind.id))
    data.update({"answer_0": "眠れない日が続いています", "answer_1": ""})
    data.update(overrides)
    return data


def _ics(message: OutboxMessage) -> Calendar:
    return Calendar.from_ical(base64.b64decode(message.headers["attachments"][0]["data"]))


def test_admin_page_adds_a_kind_and_refuses_bad_input(app, make_staff):
    admin = make_staff("admin")
    web = sign_in(app, admin)
    page = web.get("/booking/admin/kinds/new")
    assert page.status_code == 200 and "専門相談を追加" in page.get_data(as_text=True)
    good = {
        "name": "家計相談",
        "name_en": "Household budget consultation",
        "mode": "phone",
        "specialist_id": "",
        "weekdays": ["1", "3"],
        "dates": "",
        "opens": "10:00",
        "closes": "12:00",
        "slot_minutes": "30",
        "capacity": "2",
        "questions": "* 毎月の収入と支出の状況 | Your monthly income and spending",
        "active": "y",
    }
    bad_cases = [
        ({"opens": "25:00"}, "開始時刻は 10:00 の形"),
        ({"closes": "10:10"}, "1回の長さ以上あと"),
        ({"capacity": "0"}, "定員は1〜50"),
        ({"weekdays": [], "dates": ""}, "曜日か実施日を選んでください"),
        ({"dates": "2027-02-30"}, "2027-01-11 の形"),
        ({"mode": "fax"}, "相談の方法の選択肢から選んでください"),
        ({"name": ""}, "名称"),
        ({"questions": "* | English only"}, "質問の文を入力してください"),
    ]
    for change, message in bad_cases:
        response = web.post("/booking/admin/kinds/new", data={**good, **change})
        text = response.get_data(as_text=True)
        assert response.status_code == 422, change
        assert message in text, (change, text[-3000:])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SessionKind)) == 0

    saved = web.post("/booking/admin/kinds/new", data=good)
    assert saved.status_code == 302
    kind = db.session.scalar(sa.select(SessionKind))
    assert (kind.name, kind.mode, kind.weekdays, kind.capacity) == ("家計相談", Mode.PHONE, "13", 2)
    assert kind.questions == [
        {
            "label": "毎月の収入と支出の状況",
            "label_en": "Your monthly income and spending",
            "required": True,
        }
    ]
    listing = web.get("/booking/admin/kinds").get_data(as_text=True)
    assert "家計相談" in listing and "毎週 火・木" in listing
    # The edit page shows what was saved; a second kind with the same name is refused.
    edit = web.get(f"/booking/admin/kinds/{kind.id}").get_data(as_text=True)
    assert "* 毎月の収入と支出の状況 | Your monthly income and spending" in edit
    again = web.post("/booking/admin/kinds/new", data=good)
    assert again.status_code == 422
    assert "同じ名称の専門相談がすでにあります" in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SessionKind)) == 1
    assert web.get("/booking/admin/kinds/999999").status_code == 404


def test_book_a_specialist_session_end_to_end(app, client, make_staff):
    counsellor = make_staff("officer", full_name="心理 花子")
    kind = make_kind(make_staff("admin"), specialist_id=counsellor.id)
    day = weekday_ahead()
    start = datetime.combine(day, time(14, 0), TOKYO)

    index = client.get("/booking/").get_data(as_text=True)
    assert "専門相談" in index and "心理カウンセラー" in index
    assert f"/booking/slots?kind={kind.id}" in index
    slots = client.get(f"/booking/slots?kind={kind.id}&week=1").get_data(as_text=True)
    assert "心理カウンセラー" in slots
    assert f"kind={kind.id}" in slots
    # Only the kind's own hours: 13:00, 14:00, 15:00; never the counter's 09:00.
    first_week = client.get(f"/booking/slots?kind={kind.id}&week=0").get_data(as_text=True)
    assert ">09:00<" not in first_week and ">09:00<" not in slots
    details = client.get(f"/booking/details?kind={kind.id}&start={start:%Y-%m-%dT%H:%M}").get_data(
        as_text=True
    )
    assert "今、いちばん困っていることは" in details and "以前に相談したことは" in details

    response = client.post("/booking/details", data=kind_form(start, kind))
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    booking = db.session.scalar(sa.select(Booking))
    assert booking.kind_id == kind.id
    assert booking.intake == [
        {"label": "今、いちばん困っていることは", "answer": "眠れない日が続いています"},
        {"label": "以前に相談したことは", "answer": ""},
    ]
    manage = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "心理カウンセラー" in manage
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert "心理カウンセラー" in mail.body
    event = _ics(mail).events[0]
    assert str(event["SUMMARY"]) == "市民相談センター ご相談予約（心理カウンセラー・窓口）"
    assert event.start == start and event.end == start + timedelta(minutes=60)
    # The kind's seat, apart from the counter's: the slot row carries the kind.
    slot = db.session.scalar(sa.select(BookingSlot))
    assert (slot.kind_key, slot.booked) == (kind.id, 1)

    # The desk sees it in the day view, apart from the rooms' grid.
    desk = sign_in(app, make_staff("consultant"))
    day_view = desk.get(f"/booking/staff/day?date={day.isoformat()}").get_data(as_text=True)
    assert "専門相談" in day_view and "心理カウンセラー" in day_view and "心理 花子" in day_view
    detail = desk.get(f"/booking/staff/b/{booking.id}").get_data(as_text=True)
    assert "眠れない日が続いています" in detail

    # The specialist sees their own list, with the intake answers; the view is audited.
    mine = sign_in(app.test_client(), counsellor)
    own = mine.get(f"/booking/staff/specialist?date={tokyo_today().isoformat()}")
    text = own.get_data(as_text=True)
    assert own.status_code == 200
    assert booking.reference in text and "眠れない日が続いています" in text and "山田 花子" in text
    assert db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.object_type == "booking", AuditEvent.detail == "専門相談の一覧")
    )
    # Another member of staff holds no kind and sees nobody's session.
    other = sign_in(app.test_client(), make_staff("officer"))
    theirs = other.get("/booking/staff/specialist").get_data(as_text=True)
    assert "担当している専門相談はありません" in theirs and booking.reference not in theirs

    # Checking in makes a ticket that names the kind and carries the answers.
    checked = desk.post(f"/booking/staff/b/{booking.id}/check-in")
    assert checked.status_code == 302
    ticket_page = desk.get(checked.headers["Location"]).get_data(as_text=True)
    assert "心理カウンセラー" in ticket_page and "眠れない日が続いています" in ticket_page


def test_capacity_of_the_kind_and_the_counter_are_apart(app, client, make_staff):
    override_settings(app, BOOKING_RATE_LIMIT="100 per minute")
    kind = make_kind(make_staff("admin"), capacity=1)
    start = datetime.combine(weekday_ahead(), time(13, 0), TOKYO)
    assert client.post("/booking/details", data=kind_form(start, kind)).status_code == 303
    full = client.post("/booking/details", data=kind_form(start, kind, email="b@example.jp"))
    assert full.status_code == 409
    text = full.get_data(as_text=True)
    assert "満席" in text and f"kind={kind.id}" in text
    # The counter's own slot at the same time still has its seats.
    counter = client.post("/booking/details", data=form_data(start, email="c@example.jp"))
    assert counter.status_code == 303
    rows = {(s.kind_key, s.booked) for s in db.session.scalars(sa.select(BookingSlot))}
    assert rows == {(kind.id, 1), (0, 1)}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 2


def test_business_consultation_only_on_the_chosen_days(app, client, make_staff):
    override_settings(app, BOOKING_RATE_LIMIT="100 per minute")
    chosen = day_off_ahead(8)
    kind = make_kind(
        make_staff("admin"),
        name="経営相談会（よろず支援拠点）",
        name_en="Business consultation day (Yorozu Support Centre)",
        weekdays=[],
        dates_only=True,
        dates=chosen.isoformat(),
        opens=time(10, 0),
        closes=time(12, 0),
        questions="* 業種 | Your line of business",
    )
    slots = specialist.kind_slots(kind)
    assert slots and {s.starts_at.date() for s in slots} == {chosen}
    assert [f"{s.starts_at:%H:%M}" for s in slots] == ["10:00", "11:00"]
    week = (chosen - tokyo_today()).days // 7
    page = client.get(f"/booking/slots?kind={kind.id}&week={week}").get_data(as_text=True)
    assert f"start={chosen:%Y-%m-%d}T10:00" in page
    # The administrator adds a second date, keeping the first: both are offered.
    admin = sign_in(app, make_staff("admin"))
    form = {
        "name": kind.name,
        "name_en": kind.name_en,
        "mode": "counter",
        "specialist_id": "",
        "dates_only": "y",
        "dates": f"{chosen.isoformat()}\n{(chosen + timedelta(days=7)).isoformat()}",
        "opens": "10:00",
        "closes": "12:00",
        "slot_minutes": "60",
        "capacity": "1",
        "questions": "* 業種 | Your line of business",
        "active": "y",
    }
    assert admin.post(f"/booking/admin/kinds/{kind.id}", data=form).status_code == 302
    db.session.expire_all()
    assert [d.day for d in db.session.get(SessionKind, kind.id).dates] == [
        chosen,
        chosen + timedelta(days=7),
    ]
    # Saving again with one date only keeps that one.
    form["dates"] = chosen.isoformat()
    assert admin.post(f"/booking/admin/kinds/{kind.id}", data=form).status_code == 302
    db.session.expire_all()
    kind = db.session.get(SessionKind, kind.id)
    assert [d.day for d in kind.dates] == [chosen]

    other_day = chosen + timedelta(days=1)
    refused = client.post(
        "/booking/details",
        data=kind_form(datetime.combine(other_day, time(10, 0), TOKYO), kind, answer_0="飲食業"),
    )
    assert refused.status_code == 422
    assert "選択された日時にはこの専門相談を行っていません" in refused.get_data(as_text=True)
    wrong_hour = client.post(
        "/booking/details",
        data=kind_form(datetime.combine(chosen, time(13, 0), TOKYO), kind, answer_0="飲食業"),
    )
    assert "この専門相談を行っていません" in wrong_hour.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    booked = client.post(
        "/booking/details",
        data=kind_form(datetime.combine(chosen, time(10, 0), TOKYO), kind, answer_0="飲食業"),
    )
    assert booked.status_code == 303
    assert db.session.scalar(sa.select(Booking)).intake == [{"label": "業種", "answer": "飲食業"}]


def test_intake_answers_are_required_and_checked(app, client, make_staff):
    override_settings(app, BOOKING_RATE_LIMIT="100 per minute")
    kind = make_kind(make_staff("admin"))
    start = datetime.combine(weekday_ahead(), time(15, 0), TOKYO)
    cases = [
        ({"answer_0": ""}, "この質問への回答を入力してください"),
        ({"answer_0": "   "}, "この質問への回答を入力してください"),
        ({"answer_1": "あ" * 501}, "回答は500文字以内"),
    ]
    for change, message in cases:
        response = client.post("/booking/details", data=kind_form(start, kind, **change))
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True)
    # A made-up or withdrawn kind books nothing.
    made_up = {**kind_form(start, kind), "kind": "999999"}
    assert client.post("/booking/details", data=made_up).status_code == 404
    kind.active = False
    db.session.commit()
    withdrawn = client.post("/booking/details", data=kind_form(start, kind))
    assert withdrawn.status_code == 404
    assert "現在予約を受け付けていません" in withdrawn.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    # Control characters are refused once (the form shows the cleaned text back); markup is
    # stored as text and shown escaped to the desk.
    kind.active = True
    db.session.commit()
    controls = client.post(
        "/booking/details", data=kind_form(start, kind, answer_0="ある\x00\x07こと")
    )
    assert controls.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    ok = client.post(
        "/booking/details", data=kind_form(start, kind, answer_0="<script>alert(1)</script>")
    )
    assert ok.status_code == 303
    booking = db.session.scalar(sa.select(Booking))
    assert booking.intake[0]["answer"] == "<script>alert(1)</script>"
    desk = sign_in(app, make_staff("consultant"))
    page = desk.get(f"/booking/staff/b/{booking.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page


def test_english_pages(app, client, make_staff):
    kind = make_kind(make_staff("admin"))
    start = datetime.combine(weekday_ahead(), time(13, 0), TOKYO)
    index = client.get("/booking/?lang=en").get_data(as_text=True)
    assert "Psychological counsellor" in index and "Specialist session" in index
    assert "See free times: Psychological counsellor" in index
    details = client.get(
        f"/booking/details?kind={kind.id}&start={start:%Y-%m-%dT%H:%M}&lang=en"
    ).get_data(as_text=True)
    assert "What troubles you most at the moment?" in details
    assert "Questions before your session" in details
    assert "今、いちばん困っていることは" not in details
    missing = client.post("/booking/details?lang=en", data=kind_form(start, kind, answer_0=""))
    assert "Please answer this question." in missing.get_data(as_text=True)
    booked = client.post("/booking/details?lang=en", data=kind_form(start, kind))
    assert booked.status_code == 303
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert "Specialist session: Psychological counsellor" in mail.body
    summary = str(_ics(mail).events[0]["SUMMARY"])
    assert (
        summary
        == "Citizens' Consultation Centre booking（Psychological counsellor・At the counter）"
    )


CLIENTS = 40


def test_forty_at_once_for_a_kind_of_three_seats(app, booking_server, make_staff):
    """Forty citizens press 予約する at once for a 家計相談 of capacity 3, over HTTP against
    gunicorn (4 workers, CSRF on): exactly 3 bookings, 37 満席 pages, no 5xx; the counter's own
    slot at the same time is untouched."""
    kind = make_kind(make_staff("admin"), name="家計相談", capacity=3, questions="")
    start = datetime.combine(weekday_ahead(), time(13, 0), TOKYO)
    kind_id = kind.id
    # Nothing may hold SQLite's lock while the server works: commit before the first request.
    db.session.commit()
    forms = [
        form_data(start, kind=str(kind_id), email=f"citizen{n}@example.jp", phone="")
        for n in range(CLIENTS)
    ]
    params = {"kind": kind_id, "start": forms[0]["start"]}
    slot = assert_three_seats_taken(crowd_books(booking_server, params, forms))
    assert slot.kind_key == kind_id
    free = specialist.kind_slots(kind, start=start.date(), days=1, include_full=True)
    assert [(s.starts_at, s.booked, s.free) for s in free if s.starts_at == start] == [
        (start, 3, 0)
    ]


def test_move_a_specialist_session_within_its_own_times(app, client, make_staff):
    override_settings(app, BOOKING_RATE_LIMIT="100 per minute")
    kind = make_kind(make_staff("admin"), capacity=1)
    day = weekday_ahead()
    start = datetime.combine(day, time(13, 0), TOKYO)
    response = client.post("/booking/details", data=kind_form(start, kind))
    assert response.status_code == 303
    token = response.headers["Location"].rsplit("/", 1)[1].split("?")[0]
    week = (day - tokyo_today()).days // 7
    choices = client.get(f"/booking/manage/{token}/slots?week={week}").get_data(as_text=True)
    assert f"start={day:%Y-%m-%d}T14:00" in choices and f"start={day:%Y-%m-%d}T09:00" not in choices
    # The counter's 09:00 is not the kind's: refused, nothing moved.
    refused = client.post(
        f"/booking/manage/{token}/move", data={"start": f"{day:%Y-%m-%d}T09:00", "version": "0"}
    )
    assert refused.status_code == 422
    assert "この専門相談を行っていません" in refused.get_data(as_text=True)
    moved = client.post(
        f"/booking/manage/{token}/move", data={"start": f"{day:%Y-%m-%d}T14:00", "version": "0"}
    )
    assert moved.status_code == 303, moved.get_data(as_text=True)[-1500:]
    db.session.expire_all()
    booking = db.session.scalar(sa.select(Booking))
    assert booking.starts_at == start + timedelta(hours=1)
    counters = {
        (s.kind_key, f"{s.starts_at.astimezone(TOKYO):%H:%M}"): s.booked
        for s in db.session.scalars(sa.select(BookingSlot))
    }
    assert counters == {(kind.id, "13:00"): 0, (kind.id, "14:00"): 1}
    mail = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert "心理カウンセラー" in str(_ics(mail).events[0]["SUMMARY"])
