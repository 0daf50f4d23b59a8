"""A consultant's day: who owns a case (担当), callbacks (折り返し), and finding any case."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from consult.services import tickets
from consult.services.actor import Actor


@pytest.fixture
def consultant(login_as):
    return login_as("consultant", full_name="窓口 花子")


def _newest() -> Ticket:
    db.session.expire_all()
    return db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))


def _mine(client) -> str:
    return client.get("/tickets?mine=1").get_data(as_text=True)


# --- ownership (担当) --------------------------------------------------------------------------


def test_counter_reception_makes_the_receiver_the_owner(client, consultant):
    response = client.post(
        "/counter/new", data={"room": "1", "name": "池田 和子", "first_note": "年金の相談"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    created = _newest()
    assert created.assignee_id == consultant.id
    assert created.number in _mine(client)
    page = client.get(f"/tickets/{created.number}").get_data(as_text=True)
    assert "窓口 花子" in page


def test_phone_log_makes_the_caller_taker_the_owner(client, consultant):
    response = client.post(
        "/phone/new",
        data={
            "name": "田中 一郎",
            "duration_minutes": "5",
            "recording_announced": "y",
            "first_note": "粗大ごみの出し方について",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    created = _newest()
    assert created.assignee_id == consultant.id
    assert created.number in _mine(client)


def test_someone_elses_case_is_not_in_my_queue(client, consultant, make_staff, make_ticket):
    colleague = make_staff("consultant")
    theirs = make_ticket(actor=Actor(colleague, "127.0.0.1"), assignee=colleague)
    assert theirs.number not in _mine(client)


def test_closing_an_unowned_case_makes_the_closer_its_owner(client, consultant, make_ticket):
    ticket = make_ticket(channel=Channel.EMAIL, subject="メールでの問い合わせ")
    assert ticket.assignee_id is None
    response = client.post(f"/tickets/{ticket.number}/close", data={"summary": "回答して完了"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == consultant.id
    taken = [e for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]
    assert [e.body for e in taken] == ["窓口 花子"]
    assert ticket.number in client.get("/tickets?mine=1&status=closed").get_data(as_text=True)


def test_closing_keeps_an_existing_owner(app, make_staff, make_ticket):
    owner, closer = make_staff("consultant"), make_staff("consultant")
    ticket = make_ticket(assignee=owner)
    tickets.close(Actor(closer, "127.0.0.1"), ticket, "完了")
    db.session.commit()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == owner.id
    assert not [e for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]


def test_owner_can_still_be_changed_explicitly(client, consultant, make_staff):
    colleague = make_staff("consultant")
    client.post("/counter/new", data={"room": "1", "anonymous": "y", "first_note": "相談"})
    created = _newest()
    response = client.post(
        f"/tickets/{created.number}/assign", data={"assignee_id": str(colleague.id)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert _newest().assignee_id == colleague.id
    assert created.number not in _mine(client)
