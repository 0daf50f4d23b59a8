"""Joint sessions (合同相談): the consultant sets a time, the invitee gets a calendar invitation
and answers, by the officer's page or the external link; every step is on the timeline."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from icalendar import Calendar

from consult.extensions import db
from consult.models import EntryKind, OutboxMessage, Staff, TimelineEntry
from consult.services import calendar, citizens, mail
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, ValidationFailed
from consult.settings import ConfigError
from consult.timeutil import TOKYO, tokyo_today
from handoff import joint, services
from handoff.models import Handoff, JointSession, Response, SessionAnswer, SessionMode
from tests.consult.http import call
from tests.helpers import sign_in

pytestmark = pytest.mark.usefixtures("joint_meeting")


@pytest.fixture
def case(app, make_staff, make_department, make_ticket):
    department = make_department(name="子育て支援課", email="kosodate@city.example.jp")
    external = make_department(
        name="よろず支援拠点", is_external=True, email="yorozu@pref.example.jp"
    )
    consultant = make_staff("consultant")
    officer = make_staff("officer", department=department, full_name="支援 花子")
    stranger = make_staff("officer")
    citizen = citizens.create_citizen(
        Actor(consultant),
        citizens.CitizenInput(name="山田 太郎", kana="やまだ たろう", phone="090-1234-5678"),
    )
    ticket = make_ticket(actor=Actor(consultant), subject="家計と事業の相談", citizen=citizen)
    db.session.commit()
    return {
        "department": department,
        "external": external,
        "consultant": consultant,
        "officer": officer,
        "stranger": stranger,
        "ticket": ticket,
    }


def _joint(case, department) -> Handoff:
    [handoff] = services.create(
        Actor(case["consultant"]),
        case["ticket"],
        [
            services.Request(
                department.id, "事業資金と家計の両面で一緒に聞いてほしい。", Response.JOINT
            )
        ],
    )
    db.session.commit()
    return handoff


def _business_day(after_days: int = 1):
    day = tokyo_today() + timedelta(days=after_days)
    while day.weekday() >= 5 or calendar.centre_hours(day) is None or calendar.holiday_name(day):
        day += timedelta(days=1)
    return day


def _form(handoff, day, at="14:00", minutes="60", mode="video") -> dict:
    prefix = f"session{handoff.id}-"
    return {
        f"{prefix}starts_at": f"{day.isoformat()}T{at}",
        f"{prefix}minutes": minutes,
        f"{prefix}mode": mode,
    }


def _invitations(recipient: str) -> list[tuple[OutboxMessage, Calendar]]:
    db.session.expire_all()
    found = []
    for message in db.session.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.recipient == recipient)
        .order_by(OutboxMessage.id)
    ):
        mime = message_from_bytes(mail.build_mime(message).as_bytes())
        for part in mime.walk():
            if part.get_content_type() == "text/calendar":
                found.append((message, Calendar.from_ical(part.get_payload(decode=True))))
    return found


def _timeline(ticket) -> list[str]:
    db.session.expire_all()
    return [
        e.body
        for e in db.session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.HANDOFF)
            .order_by(TimelineEntry.id)
        )
    ]


def test_a_video_session_is_set_moved_and_cancelled_with_the_invitees_calendar(
    app, case, joint_meeting
):
    handoff = _joint(case, case["department"])
    desk = sign_in(app, case["consultant"])
    day = _business_day()

    response = call(app, desk, "POST", f"/handoffs/{handoff.id}/session", data=_form(handoff, day))
    assert response.status_code == 302
    [(message, invite)] = _invitations("kosodate@city.example.jp")
    assert invite["METHOD"] == "REQUEST"
    [event] = invite.walk("VEVENT")
    assert event.start == datetime.combine(day, time(14, 0), TOKYO)
    assert event.end == datetime.combine(day, time(15, 0), TOKYO)
    assert int(event["SEQUENCE"]) == 0
    session = db.session.scalar(sa.select(JointSession))
    assert str(event["URL"]) == joint_meeting.replace("{code}", session.code)
    assert str(event["LOCATION"]) == session.meeting_url
    # The invitation names the case by its number only: no citizen, no case text.
    for text in (message.body, message.subject, invite.to_ical().decode()):
        assert "山田" not in text and "090-1234-5678" not in text and "事業資金" not in text
    assert f"/handoffs/{handoff.id}" in message.body
    assert "子育て支援課との合同相談を設定" in _timeline(case["ticket"])[-1]
    # The handoff is due when the session ends, not a business day after it was made.
    assert handoff.due_at == datetime.combine(day, time(15, 0), TOKYO)
    page = call(app, desk, "GET", f"/tickets/{case['ticket'].number}").get_data(as_text=True)
    assert "合同相談</strong>" in page and session.meeting_url in page and "回答待ち" in page

    # Moved: the same UID, a higher SEQUENCE, so the invitee's calendar moves the event.
    moved = _form(handoff, day, at="15:30", minutes="90")
    assert call(app, desk, "POST", f"/handoffs/{handoff.id}/session", data=moved).status_code == 302
    (_, first), (_, second) = _invitations("kosodate@city.example.jp")
    [event2] = second.walk("VEVENT")
    assert str(event2["UID"]) == str(first.walk("VEVENT")[0]["UID"])
    assert int(event2["SEQUENCE"]) == 1
    assert event2.end == datetime.combine(day, time(17, 0), TOKYO)
    assert "合同相談を変更" in _timeline(case["ticket"])[-1]

    # Cancelled: METHOD:CANCEL with the next SEQUENCE; the panel no longer shows the session.
    assert call(app, desk, "POST", f"/handoffs/{handoff.id}/session/cancel").status_code == 302
    cancelled = _invitations("kosodate@city.example.jp")[-1][1]
    assert cancelled["METHOD"] == "CANCEL"
    assert int(cancelled.walk("VEVENT")[0]["SEQUENCE"]) == 2
    assert "取り消しました" in _timeline(case["ticket"])[-1]
    page = call(app, desk, "GET", f"/tickets/{case['ticket'].number}").get_data(as_text=True)
    assert "合同相談</strong>" not in page and "合同相談の日時を設定" in page


def test_the_officer_answers_on_the_handoff_page(app, case):
    handoff = _joint(case, case["department"])
    joint.schedule(
        Actor(case["consultant"]),
        handoff,
        starts_at=datetime.combine(_business_day(), time(10, 0), TOKYO),
        minutes=60,
        mode=SessionMode.COUNTER,
    )
    db.session.commit()
    officer = sign_in(app, case["officer"])
    page = call(app, officer, "GET", f"/handoffs/{handoff.id}").get_data(as_text=True)
    assert "センターの窓口" in page and "この日時で参加します" in page
    ics = call(app, officer, "GET", f"/handoffs/{handoff.id}/session.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert Calendar.from_ical(ics.data)["METHOD"] == "REQUEST"

    # Another time needs what would suit: refused in Japanese, nothing changes.
    url = f"/handoffs/{handoff.id}/session/answer"
    refused = call(app, officer, "POST", url, data={"session-by_name": "支援 花子", "other": "1"})
    assert refused.status_code == 422
    assert "希望の日時などを入力してください" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert handoff.session.answer is SessionAnswer.PENDING

    data = {"session-by_name": "支援 花子", "accept": "1"}
    assert call(app, officer, "POST", url, data=data).status_code == 302
    db.session.expire_all()
    assert handoff.session.answer is SessionAnswer.ACCEPTED
    assert "子育て支援課（支援 花子）：合同相談" in _timeline(case["ticket"])[-1]
    assert "に参加します" in _timeline(case["ticket"])[-1]

    # An officer of another department sees nothing of it.
    stranger = sign_in(app, case["stranger"])
    assert call(app, stranger, "GET", f"/handoffs/{handoff.id}/session.ics").status_code == 404
    assert call(app, stranger, "POST", url, data=data).status_code == 404


def test_an_external_body_answers_through_its_link_and_gets_the_calendar(app, case):
    handoff = _joint(case, case["external"])
    desk = sign_in(app, case["consultant"])
    day = _business_day(2)
    form = _form(handoff, day, at="13:00", mode="counter")
    assert call(app, desk, "POST", f"/handoffs/{handoff.id}/session", data=form).status_code == 302
    message, invite = _invitations("yorozu@pref.example.jp")[-1]
    line = next(line for line in message.body.splitlines() if "/x/handoff/" in line)
    path = line[line.index("/x/handoff/") :]

    browser = app.test_client()
    page = browser.get(path).get_data(as_text=True)
    assert "合同相談のご案内" in page and "センターの窓口" in page
    ics = browser.get(f"{path}/session.ics")
    assert ics.status_code == 200
    assert Calendar.from_ical(ics.data).walk("VEVENT")[0]["UID"] == invite.walk("VEVENT")[0]["UID"]

    answered = browser.post(
        path,
        data={
            "session-by_name": "よろず 次郎",
            "session-note": "翌週の火曜午後なら可能です",
            "other": "1",
        },
    )
    assert answered.status_code == 302
    db.session.expire_all()
    assert handoff.session.answer is SessionAnswer.OTHER_TIME
    assert "翌週の火曜午後なら可能です" in _timeline(case["ticket"])[-1]
    page = call(app, desk, "GET", f"/tickets/{case['ticket'].number}").get_data(as_text=True)
    assert "別の日時を希望" in page and "翌週の火曜午後なら可能です" in page
    # A tampered link gives neither the page nor the calendar.
    assert browser.get(f"{path}x/session.ics").status_code == 404


def test_times_and_handoffs_that_cannot_have_a_session_are_refused(app, case):
    actor = Actor(case["consultant"])
    handoff = _joint(case, case["department"])
    day = _business_day()
    cases = [
        (datetime.now(TOKYO) - timedelta(hours=1), SessionMode.VIDEO, "現在より後"),
        (datetime.combine(day, time(20, 0), TOKYO), SessionMode.COUNTER, "開庁時間内"),
        (datetime.combine(day, time(8, 0), TOKYO), SessionMode.COUNTER, "開庁時間内"),
    ]
    for starts_at, mode, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            joint.schedule(actor, handoff, starts_at=starts_at, minutes=60, mode=mode)
    with pytest.raises(ValidationFailed, match="所要時間"):
        joint.schedule(
            actor,
            handoff,
            starts_at=datetime.combine(day, time(10, 0), TOKYO),
            minutes=7,
            mode=SessionMode.VIDEO,
        )
    [visit] = services.create(
        actor,
        case["ticket"],
        [services.Request(case["external"].id, "来庁して説明してほしい。", Response.VISIT)],
    )
    with pytest.raises(InvalidTransition, match="合同オンライン相談"):
        joint.schedule(
            actor,
            visit,
            starts_at=datetime.combine(day, time(10, 0), TOKYO),
            minutes=60,
            mode=SessionMode.VIDEO,
        )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(JointSession.id))) == 0

    # Over HTTP: the form answers in Japanese next to the field, with what was typed kept.
    desk = sign_in(app, case["consultant"])
    bad = _form(handoff, day, at="20:00", mode="counter")
    response = call(app, desk, "POST", f"/handoffs/{handoff.id}/session", data=bad)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "開庁時間内に設定してください" in text and f"{day.isoformat()}T20:00" in text
    assert db.session.scalar(sa.select(sa.func.count(JointSession.id))) == 0


def test_without_a_meeting_template_only_the_counter_is_offered(app_factory, case):
    plain = app_factory()
    handoff_id = _joint(case, case["department"]).id
    consultant_id = case["consultant"].id
    db.session.commit()  # SQLite: the other app's session must not wait on this one's lock
    with plain.app_context():
        handoff = db.session.get(Handoff, handoff_id)
        assert not joint.video_available()
        with pytest.raises(ValidationFailed, match="ひな形が設定されていない"):
            joint.schedule(
                Actor(db.session.get(Staff, consultant_id)),
                handoff,
                starts_at=datetime.combine(_business_day(), time(10, 0), TOKYO),
                minutes=60,
                mode=SessionMode.VIDEO,
            )
        db.session.rollback()


def test_a_meeting_template_without_its_code_stops_the_start(app_factory):
    with pytest.raises(ConfigError, match="HANDOFF_JOINT_MEETING_URL"):
        app_factory(HANDOFF_JOINT_MEETING_URL="https://meet.example.jp/fixed-room")
