"""The first consultant to answer a LINE consultation becomes its 担当."""

from __future__ import annotations

from consult.extensions import db
from consult.models import EntryKind, Ticket
from tests.channels.line.conftest import new_staff
from tests.channels.line.test_delivery import _start
from tests.helpers import sign_in


def test_the_first_line_reply_makes_the_replier_the_owner(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    assert ticket.assignee_id is None
    first = new_staff(full_name="山田 太郎", display_name="やまだ / Yamada")
    sign_in(line_client, first)
    response = line_client.post(
        f"/channels/line/tickets/{ticket.number}/reply", data={"body": "窓口は2階です。"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == first.id
    second = new_staff(full_name="佐藤 花子", display_name="さとう / Sato")
    sign_in(line_client, second)
    line_client.post(
        f"/channels/line/tickets/{ticket.number}/reply", data={"body": "補足いたします。"}
    )
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == first.id
    owners = [e.data for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]
    assert owners == [{"assignee_id": first.id, "taken": True}]
