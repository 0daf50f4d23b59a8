"""Staff safety: the help button, the live feed, answers, incidents, long sessions, repeats."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    Channel,
    EntryKind,
    HelpAlert,
    Incident,
    LongSessionAlert,
    OutboxMessage,
    Ticket,
    TimelineEntry,
)
from consult.services import citizens, safety
from consult.services.actor import SYSTEM, Actor
from consult.timeutil import utcnow
from tests.consult.http import call
from tests.helpers import sign_in


def _entries(ticket_id: int) -> list[TimelineEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.SAFETY)
            .order_by(TimelineEntry.id)
        )
    )


def test_help_alert_reaches_responders_and_records_who_came(app, make_staff, make_ticket):
    consultant = make_staff("consultant", full_name="窓口 一郎")
    support = make_staff("support", full_name="安心 守")
    supervisor = make_staff("supervisor", full_name="責任 花子")
    officer = make_staff("officer")
    ticket = make_ticket(actor=Actor(consultant, "127.0.0.1"))
    desk, room, boss, other = (sign_in(app, s) for s in (consultant, support, supervisor, officer))

    # Before: nothing in the feed.
    assert call(app, room, "GET", "/alerts/live.json").get_json()["alerts"] == []

    response = call(
        app,
        desk,
        "POST",
        "/alerts",
        data={"place": "room2", "ticket": ticket.number},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    alert_id = response.get_json()["id"]

    # The email went out through the outbox in the same transaction, without citizen data.
    mails = list(db.session.scalars(sa.select(OutboxMessage)))
    assert [m.recipient for m in mails] == ["anshin-support@example.lg.jp"]
    assert "相談室2" in mails[0].subject and ticket.number in mails[0].body

    for client in (room, boss):
        feed = call(app, client, "GET", "/alerts/live.json?since=0").get_json()
        assert [a["place"] for a in feed["alerts"]] == ["相談室2（端末で選択）"]
        assert feed["alerts"][0]["ticket"] == ticket.number
        assert feed["alerts"][0]["new"] is True
        assert feed["responder"] is True
    # The officer has no feed at all.
    assert call(app, other, "GET", "/alerts/live.json").status_code == 403

    assert call(app, room, "POST", f"/alerts/{alert_id}/coming").status_code == 302
    assert call(app, room, "POST", f"/alerts/{alert_id}/coming").status_code == 302  # twice: once
    assert call(app, boss, "POST", f"/alerts/{alert_id}/arrived").status_code == 302

    mine = call(app, desk, "GET", "/alerts/live.json").get_json()
    assert mine["responder"] is False
    assert [(r["name"], r["label"]) for r in mine["alerts"][0]["responses"]] == [
        ("安心 守", "向かいます"),
        ("責任 花子", "到着"),
    ]
    bodies = [(e.author.full_name, e.body) for e in _entries(ticket.id)]
    assert bodies == [
        ("窓口 一郎", "応援要請：相談室2（端末で選択）"),
        ("安心 守", "向かいます（安心対応サポート室）"),
        ("責任 花子", "到着（センター責任者）"),
    ]
    # A consultant may not answer; closing ends the alert for everybody.
    assert call(app, desk, "POST", f"/alerts/{alert_id}/coming").status_code == 403
    assert call(app, desk, "POST", f"/alerts/{alert_id}/close").status_code == 302
    assert call(app, room, "GET", "/alerts/live.json").get_json()["alerts"] == []


def test_a_second_press_is_the_same_alert(app, make_staff):
    consultant = make_staff("consultant")
    desk = sign_in(app, consultant)
    for _ in range(3):
        assert call(app, desk, "POST", "/alerts", data={"place": "counter"}).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_bad_place_changes_nothing(app, make_staff):
    desk = sign_in(app, make_staff("consultant"))
    response = call(
        app, desk, "POST", "/alerts", data={"place": "roof"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "場所を選んでください。"
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 0


def test_polling_does_not_keep_an_idle_session_alive(app, make_staff):
    from consult.models import StaffSession

    support = make_staff("support")
    room = sign_in(app, support)
    session = db.session.scalar(sa.select(StaffSession).where(StaffSession.staff_id == support.id))
    old = utcnow() - timedelta(minutes=20)
    session.last_seen_at = old
    db.session.commit()
    assert call(app, room, "GET", "/alerts/live.json").status_code == 200
    db.session.expire_all()
    assert abs((session.last_seen_at - old).total_seconds()) < 1


def test_the_help_button_is_on_desk_pages_with_its_shortcut(app, make_staff, make_ticket):
    desk = sign_in(app, make_staff("consultant"))
    ticket = make_ticket()
    page = call(app, desk, "GET", f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="help-form"' in page and "Alt+H" in page
    assert f'name="ticket" value="{ticket.number}"' in page
    assert "js/alerts.js" in page
    counter = call(app, desk, "GET", "/counter/new").get_data(as_text=True)
    assert 'id="help-form"' in counter
    # Officers and administrators get neither the button nor the poll.
    admin = sign_in(app, make_staff("admin"))
    assert "/js/alerts.js" not in call(app, admin, "GET", "/admin/").get_data(as_text=True)


def test_incident_record_is_visible_to_readers_only(app, make_staff, make_ticket):
    consultant = make_staff("consultant", full_name="窓口 一郎")
    support = make_staff("support", full_name="安心 守")
    citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="山田 太郎"))
    ticket = make_ticket(actor=Actor(consultant, "127.0.0.1"), citizen=citizen)
    desk = sign_in(app, consultant)
    response = call(
        app,
        desk,
        "POST",
        "/incidents/new",
        data={
            "ticket": ticket.number,
            "occurred_at": "2026-01-05T14:05",
            "categories": ["abuse", "long_hold"],
            "description": "2時間にわたり大声で同じ要求を繰り返した",
            "involved_ids": [str(consultant.id)],
            "support_ids": [str(support.id)],
            "follow_ups": ["police", "physician"],
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/tickets/{ticket.number}")
    incident = db.session.scalar(sa.select(Incident))
    assert incident.citizen_id == citizen.id
    assert incident.category_labels == ["時間拘束", "暴言"]
    assert incident.follow_up_labels == ["警察へ相談", "産業医面談（職員）"]
    assert [s.full_name for s in incident.staff_in("support")] == ["安心 守"]
    # The timeline says a record exists, not what it holds.
    assert [e.body for e in _entries(ticket.id)] == ["カスハラ事案を記録しました"]

    # The consultant cannot read it; the support room can, and the view is audited.
    assert call(app, desk, "GET", f"/incidents/{incident.id}").status_code == 403
    assert call(app, desk, "GET", "/incidents").status_code == 403
    room = sign_in(app, support)
    page = call(app, room, "GET", f"/incidents/{incident.id}").get_data(as_text=True)
    assert "2時間にわたり大声で" in page and "警察へ相談" in page
    assert call(app, room, "GET", "/incidents/999999").status_code == 404

    # Staff see a caution on the citizen's next ticket; it never names the incident's content.
    later = make_ticket(citizen=citizen)
    page = call(app, desk, "GET", f"/tickets/{later.number}").get_data(as_text=True)
    assert "対応上の注意" in page and "2時間にわたり" not in page


def test_incident_without_category_is_refused_in_japanese(app, make_staff):
    desk = sign_in(app, make_staff("consultant"))
    response = call(
        app,
        desk,
        "POST",
        "/incidents/new",
        data={"occurred_at": "2026-01-05T14:05", "description": "暴言"},
    )
    assert response.status_code == 422
    assert "事案の分類を1つ以上選んでください。" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Incident.id))) == 0
    response = call(
        app,
        desk,
        "POST",
        "/incidents/new",
        data={"occurred_at": "2026-01-05T14:05", "description": "暴言", "categories": "nope"},
    )
    assert response.status_code == 422
    assert "選択肢から選んでください" in response.get_data(as_text=True)


def test_long_sessions_alert_once_per_threshold_and_supervisor_takes_over(
    app, make_staff, make_ticket
):
    consultant = make_staff("consultant", full_name="窓口 一郎")
    supervisor = make_staff("supervisor", full_name="責任 花子")
    supervisor.email = "sekinin@example.lg.jp"
    db.session.commit()
    started = utcnow() - timedelta(minutes=45)
    ticket = make_ticket(
        actor=Actor(consultant, "127.0.0.1"), channel=Channel.COUNTER, session_started_at=started
    )
    assert safety.check_long_sessions() == 1  # 30 minutes passed, 60 not yet
    assert safety.check_long_sessions() == 0  # the next round: nothing new
    assert safety.check_long_sessions(now=started + timedelta(minutes=61)) == 1
    rows = db.session.scalars(sa.select(LongSessionAlert.threshold_minutes)).all()
    assert sorted(rows) == [30, 60]
    # Each threshold is mailed once to the supervisors' work addresses, without citizen data.
    mails = list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [(m.recipient, m.subject) for m in mails] == [
        (supervisor.email, f"【長時間対応】{ticket.number}（30分超）"),
        (supervisor.email, f"【長時間対応】{ticket.number}（60分超）"),
    ]
    assert "窓口での相談が30分を超えています" in mails[0].body
    assert "担当：窓口 一郎" in mails[0].body and f"/tickets/{ticket.number}" in mails[0].body

    boss = sign_in(app, supervisor)
    feed = call(app, boss, "GET", "/alerts/live.json").get_json()
    assert {s["minutes"] for s in feed["long_sessions"]} == {30, 60}

    assert call(app, boss, "POST", f"/tickets/{ticket.number}/takeover").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).assignee_id == supervisor.id
    assert _entries(ticket.id)[-1].body == "交代：窓口 一郎 → 責任 花子"
    assert call(app, boss, "GET", "/alerts/live.json").get_json()["long_sessions"] == []
    # A consultant cannot take over.
    desk = sign_in(app, consultant)
    assert call(app, desk, "POST", f"/tickets/{ticket.number}/takeover").status_code == 403


def test_thresholds_come_from_the_administrators_settings(app, make_staff, make_ticket):
    admin = sign_in(app, make_staff("admin"))
    data = {
        "long_session_minutes": "10",
        "repeat_contacts": "2",
        "repeat_days": "7",
        "alert_mail_to": "room@example.lg.jp",
        "recording_policy": "録音しています。",
    }
    bad = call(app, admin, "POST", "/admin/safety", data={**data, "long_session_minutes": "abc"})
    assert bad.status_code == 422
    assert "1〜1440の数" in bad.get_data(as_text=True)
    assert safety.long_session_thresholds() == [30, 60]  # nothing changed
    assert call(app, admin, "POST", "/admin/safety", data=data).status_code == 302
    assert safety.long_session_thresholds() == [10]
    make_ticket(session_started_at=utcnow() - timedelta(minutes=11))
    assert safety.check_long_sessions() == 1
    # No supervisor has a work address: the alert address set above is told instead.
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [(m.recipient, "10分超" in m.subject) for m in mails] == [("room@example.lg.jp", True)]


def test_repeated_demands_flag_the_ticket_with_earlier_cases(
    app, make_staff, make_ticket, make_category
):
    category, other = make_category("税金"), make_category("ごみ")
    citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="山田 太郎"))
    earlier = [make_ticket(citizen=citizen, category_id=category.id) for _ in range(3)]
    make_ticket(citizen=citizen, category_id=other.id)  # another category: not counted
    desk = sign_in(app, make_staff("consultant"))
    page = call(app, desk, "GET", f"/tickets/{earlier[-1].number}").get_data(as_text=True)
    assert "繰り返しの相談" not in page  # 3 contacts: not more than 3
    latest = make_ticket(citizen=citizen, category_id=category.id)
    page = call(app, desk, "GET", f"/tickets/{latest.number}").get_data(as_text=True)
    assert "繰り返しの相談" in page and "同じ分類で4件" in page
    for t in earlier:
        assert t.number in page
    flags = safety.repeated_flags([latest, earlier[0]])
    assert flags == {latest.id: 4, earlier[0].id: 4}
    queue = call(app, desk, "GET", "/tickets").get_data(as_text=True)
    assert "繰り返し4件" in queue


def test_recording_policy_shows_on_counter_tickets(app, make_staff, make_ticket):
    desk = sign_in(app, make_staff("consultant"))
    ticket = make_ticket(channel=Channel.COUNTER)
    page = call(app, desk, "GET", f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "録音について" in page and "録音しています" in page
