"""The help alert (issue 15): the room of the visit in progress, the device's choice otherwise,
one alert per press window even from two tabs at once, and escalation when no one answers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from channels.counter import services as counter
from consult import settings
from consult.extensions import db
from consult.models import Channel, EntryKind, HelpAlert, OutboxMessage, TimelineEntry
from consult.services import safety, tickets
from consult.services.actor import Actor
from consult.timeutil import utcnow
from tests.consult.http import call
from tests.helpers import sign_in


def _visit_in_room_3(consultant: Actor):
    visit = counter.receive(
        consultant,
        counter.WalkIn(category_id=None, room=1, first_note="来庁", anonymous=True),
    )
    counter.move(consultant, visit.ticket, "serve", room=3)
    db.session.commit()
    return visit.ticket


def test_the_alert_names_the_room_of_the_visit_in_progress_not_the_select(app, make_staff):
    """The bug: a consultant in 相談室3 raised an alert that said 相談室1 (the select's first)."""
    staff = make_staff("consultant")
    ticket = _visit_in_room_3(Actor(staff, "127.0.0.1"))
    desk = sign_in(app, staff)
    page = call(app, desk, "GET", f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "場所：相談室3（受付中）" in page

    response = call(
        app,
        desk,
        "POST",
        "/alerts",
        data={"place": "room1", "ticket": ticket.number},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    expected = f"相談室3（受付中の相談 {ticket.number}）"
    assert response.get_json()["place"] == expected
    alert = db.session.get(HelpAlert, response.get_json()["id"])
    assert alert.place == "room3"
    bodies = [
        e.body
        for e in db.session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.SAFETY)
            .order_by(TimelineEntry.id)
        )
    ]
    assert bodies == [f"応援要請：{expected}"]
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert mail.subject == f"【応援要請】{expected}"


def test_a_phone_call_or_no_visit_uses_the_device_choice_and_says_so(app, make_staff):
    staff = make_staff("consultant")
    actor = Actor(staff, "127.0.0.1")
    phone = tickets.create_ticket(actor, channel=Channel.PHONE, subject="電話の相談")
    alert = safety.raise_alert(actor, place="room2", ticket=phone)
    assert safety.place_text(alert) == "電話（端末で選択：相談室2）"
    safety.close_alert(actor, alert.id)
    # A counter visit already finished is no visit in progress: the device's choice counts.
    ticket = _visit_in_room_3(actor)
    counter.move(actor, ticket, "finish")
    again = safety.raise_alert(actor, place="room1", ticket=ticket)
    assert safety.place_text(again) == "相談室1（端末で選択）"


def test_a_second_press_within_a_minute_is_the_same_alert_then_a_new_one(app, make_staff):
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    first = safety.raise_alert(actor, place="counter")
    assert safety.raise_alert(actor, place="room2").id == first.id
    db.session.commit()
    # 61 s later the key is free again: a new press is a new alert.
    db.session.execute(sa.update(HelpAlert).values(raised_at=utcnow() - timedelta(seconds=61)))
    second = safety.raise_alert(actor, place="counter")
    assert second.id != first.id
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 2


def _escalated_mails():
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.subject.like("【応援要請・未応答】%"))
        )
    )


def test_an_unanswered_alert_escalates_once_over_two_worker_rounds(app, make_staff):
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    ticket = _visit_in_room_3(actor)
    alert = safety.raise_alert(actor, place="room1", ticket=ticket)
    db.session.commit()
    settings.override(app, SAFETY_ALERT_ESCALATE_SECONDS=30)
    assert safety.escalate_alerts() == 0  # not yet 30 s
    later = utcnow() + timedelta(seconds=31)
    # Two workers' rounds (the second after the first committed): one escalation.
    assert safety.escalate_alerts(now=later) == 1
    db.session.commit()
    assert safety.escalate_alerts(now=later + timedelta(seconds=5)) == 0
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(HelpAlert, alert.id).escalated_at is not None
    mails = _escalated_mails()
    assert [m.recipient for m in mails] == ["anshin-support@example.lg.jp"]
    assert f"相談室3（受付中の相談 {ticket.number}）" in mails[0].subject
    entries = db.session.scalars(
        sa.select(TimelineEntry.body).where(TimelineEntry.ticket_id == ticket.id)
    ).all()
    assert sum("未応答（エスカレーション済み）" in b for b in entries) == 1
    # The consultant's feed says so, and that no one answered yet.
    desk = sign_in(app, alert.raised_by)
    mine = call(app, desk, "GET", "/alerts/live.json").get_json()["alerts"][0]
    assert mine["escalated"] is True and mine["coming"] == []


def test_a_worker_that_read_the_alert_before_another_escalated_it_does_nothing(app, make_staff):
    """The conditional UPDATE is the guard, not the read: a second worker that listed the alert
    as due before the first committed finds it taken."""
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    safety.raise_alert(actor, place="room1")
    db.session.commit()
    later = utcnow() + timedelta(seconds=60)
    original = db.session.scalars
    due_ids = list(original(sa.select(HelpAlert.id).where(HelpAlert.escalated_at.is_(None))))
    assert safety.escalate_alerts(now=later) == 1
    db.session.commit()
    # Round of the second worker, with the stale list it read earlier.
    db.session.scalars = lambda *a, **k: iter(due_ids)
    try:
        assert safety.escalate_alerts(now=later) == 0
    finally:
        del db.session.scalars
    db.session.commit()
    assert len(_escalated_mails()) == 1


def test_an_answered_alert_never_escalates(app, make_staff):
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    support = Actor(make_staff("support", full_name="安心 守"), "127.0.0.1")
    alert = safety.raise_alert(actor, place="room1")
    safety.respond(support, alert.id, "coming")
    db.session.commit()
    assert safety.escalate_alerts(now=utcnow() + timedelta(minutes=5)) == 0
    assert _escalated_mails() == []
    desk = sign_in(app, alert.raised_by)
    mine = call(app, desk, "GET", "/alerts/live.json").get_json()["alerts"][0]
    assert mine["coming"] == ["安心 守"] and mine["escalated"] is False
