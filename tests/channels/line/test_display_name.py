"""The LINE profile's display name (issue 16): fetched by the worker from the Messaging API,
kept on the contact, found by the desk's search (a LINE sender nobody has registered is no
longer only 「匿名」), shown on the ticket page whose view is audited, refreshed when the user
writes again a week later; a profile LINE does not have changes nothing else."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from channels.line.models import LineContact
from consult.extensions import db
from consult.models import AuditEvent, Channel, EntryKind, Ticket
from consult.timeutil import utcnow
from tests.channels.line.conftest import (
    USER,
    body_of,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.channels.line.test_processing import OPEN
from tests.helpers import sign_in


def _send(client, app, text: str, minute: int = 0, user: str = USER) -> None:
    body = body_of(text_event(text, user=user, at=OPEN + minute * 60_000))
    assert post_webhook(client, body).status_code == 200
    run_worker(app)


def _search(client, q: str) -> str:
    return client.post("/tickets/search", data={"q": q}).get_data(as_text=True)


def test_the_display_name_is_fetched_searched_shown_and_audited(line_client, line_app, fake_line):
    fake_line.profiles[USER] = {"userId": USER, "displayName": "西村 みどり", "language": "ja"}
    _send(line_client, line_app, "国保の減免について")
    assert fake_line.calls(f"/v2/bot/profile/{USER}")
    contact = db.session.scalar(sa.select(LineContact))
    assert contact.display_name == "西村 みどり" and contact.profile_checked_at is not None
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
    assert ticket.citizen_id is None  # not registered: 「匿名」 on the queue
    staff = new_staff()
    desk = sign_in(line_app.test_client(), staff)
    for query in ("西村", "みどり", "西村みどり"):
        assert ticket.number in _search(desk, query), query
    assert db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "search", AuditEvent.staff_id == staff.id)
    )
    page = desk.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "LINEの表示名" in page and "西村 みどり" in page
    viewed = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "view",
            AuditEvent.object_id == ticket.number,
            AuditEvent.staff_id == staff.id,
        )
    )
    assert viewed is not None and "西村" not in (viewed.detail or "")
    # Asked once: the next message does not ask again.
    _send(line_client, line_app, "追加の質問です", 1)
    assert len(fake_line.calls(f"/v2/bot/profile/{USER}")) == 1


def test_a_name_changed_in_line_is_refreshed_when_the_user_writes_a_week_later(
    line_client, line_app, fake_line
):
    fake_line.profiles[USER] = {"userId": USER, "displayName": "はなこ"}
    _send(line_client, line_app, "相談です")
    db.session.execute(
        sa.update(LineContact).values(profile_checked_at=utcnow() - timedelta(days=8))
    )
    db.session.commit()
    fake_line.profiles[USER] = {"userId": USER, "displayName": "山本 花子"}
    _send(line_client, line_app, "続きです", 1)
    assert db.session.scalar(sa.select(LineContact.display_name)) == "山本 花子"
    desk = sign_in(line_app.test_client(), new_staff())
    number = db.session.scalar(sa.select(Ticket.number))
    assert number in _search(desk, "山本")
    assert number not in _search(desk, "はなこ")


def test_no_profile_or_a_hostile_name_breaks_nothing(line_client, line_app, fake_line):
    _send(line_client, line_app, "プロフィールのない人です")  # the fake answers 404
    contact = db.session.scalar(sa.select(LineContact))
    assert contact.display_name is None and contact.profile_checked_at is not None
    ticket = db.session.scalar(sa.select(Ticket))
    assert [e.body for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN] == [
        "プロフィールのない人です"
    ]
    other = "U" + "b" * 32
    fake_line.profiles[other] = {
        "userId": other,
        "displayName": "<script>x</script>\x00\u200b" * 20,
    }
    _send(line_client, line_app, "別の人です", 1, user=other)
    name = db.session.scalar(
        sa.select(LineContact.display_name).where(LineContact.user_id == other)
    )
    assert name is not None and "\x00" not in name and len(name) <= 100
    desk = sign_in(line_app.test_client(), new_staff())
    number = db.session.scalar(sa.select(Ticket.number).order_by(Ticket.id.desc()).limit(1))
    page = desk.get(f"/tickets/{number}").get_data(as_text=True)
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page


def test_once_linked_to_a_citizen_the_name_finds_the_citizens_other_cases(
    line_client, line_app, fake_line
):
    from consult.models import Channel
    from consult.services import citizens, tickets
    from consult.services.actor import SYSTEM, Actor

    fake_line.profiles[USER] = {"userId": USER, "displayName": "みどりの窓"}
    _send(line_client, line_app, "先日の件です")
    staff = new_staff()
    person = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="西村 緑"))
    line_ticket = db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
    tickets.link_citizen(Actor(staff), line_ticket, person)
    at_counter = tickets.create_ticket(
        Actor(staff), channel=Channel.COUNTER, subject="窓口での相談", citizen=person
    ).number
    line_number = line_ticket.number
    db.session.commit()
    desk = sign_in(line_app.test_client(), staff)
    assert at_counter not in _search(desk, "みどりの窓")
    linked = desk.post(f"/channels/line/tickets/{line_number}/link-contact")
    assert linked.status_code == 302
    found = _search(desk, "みどりの窓")
    assert at_counter in found and line_number in found
