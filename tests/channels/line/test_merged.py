"""LINE after a merge (issue 16): a message from the contact of a ticket merged into another
lands on the survivor; a contact whose citizen was merged writes on the surviving citizen's open
case; after an administrator's undo the messages go where they went before. Signed webhook
bodies through the real endpoint, the worker, and the merge pages."""

from __future__ import annotations

import sqlalchemy as sa

from channels.line.models import LineContact
from consult.extensions import db
from consult.models import Channel, EntryKind, MergeRecord, Ticket, TimelineEntry
from consult.services import citizens, tickets
from consult.services.actor import SYSTEM, Actor
from tests.channels.line.conftest import body_of, new_staff, post_webhook, run_worker, text_event
from tests.channels.line.test_processing import OPEN
from tests.helpers import sign_in


def _send(client, app, text: str, minute: int) -> None:
    assert post_webhook(client, body_of(text_event(text, at=OPEN + minute * 60_000))).status_code
    run_worker(app)


def _messages(ticket_id: int) -> list[str]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(TimelineEntry.body)
            .where(TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.MESSAGE_IN)
            .order_by(TimelineEntry.id)
        )
    )


def _count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Ticket))


def _undo_last(app) -> None:
    record = db.session.scalar(sa.select(MergeRecord.id).order_by(MergeRecord.id.desc()))
    admin = sign_in(app.test_client(), new_staff("admin"))
    assert admin.post(f"/admin/merges/{record}/undo").status_code == 302


def test_a_message_to_a_merged_line_ticket_lands_on_the_survivor(line_client, line_app):
    _send(line_client, line_app, "国保の保険料について", 0)
    by_line = db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
    line_id, line_number = by_line.id, by_line.number
    consultant = new_staff()
    by_phone = tickets.create_ticket(
        Actor(consultant), channel=Channel.PHONE, subject="国保（電話）", first_note="電話で"
    )
    phone_id, phone_number = by_phone.id, by_phone.number
    db.session.commit()
    supervisor = sign_in(line_app.test_client(), new_staff("supervisor"))
    merged = supervisor.post(
        f"/tickets/{line_number}/merge", data={"target": phone_number, "confirmed": "1"}
    )
    assert merged.status_code == 302
    _send(line_client, line_app, "減免の書類は何が要りますか", 1)
    assert _count() == 2  # no new ticket
    assert _messages(phone_id) == ["減免の書類は何が要りますか"]
    page = supervisor.get(f"/tickets/{phone_number}").get_data(as_text=True)
    assert "減免の書類は何が要りますか" in page
    _undo_last(line_app)
    _send(line_client, line_app, "取り消しのあとです", 2)
    assert _count() == 2
    assert _messages(line_id)[-1] == "取り消しのあとです"
    assert _messages(phone_id) == ["減免の書類は何が要りますか"]


def test_a_merged_citizens_line_messages_land_on_the_survivors_open_case(line_client, line_app):
    _send(line_client, line_app, "はじめての相談です", 0)
    by_line = db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
    line_id = by_line.id
    duplicate = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="池田 和子"))
    kept = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="池田 和子", phone="090-2681-0001")
    )
    contact = db.session.scalar(sa.select(LineContact))
    contact.citizen_id = duplicate.id
    by_line.citizen_id = duplicate.id
    consultant = new_staff()
    at_counter = tickets.create_ticket(
        Actor(consultant), channel=Channel.COUNTER, subject="窓口で", citizen=kept
    )
    counter_id = at_counter.id
    tickets.close(Actor(consultant), by_line, "窓口でお答えしました")
    kept_id, duplicate_id = kept.id, duplicate.id
    db.session.commit()
    supervisor = sign_in(line_app.test_client(), new_staff("supervisor"))
    merged = supervisor.post(
        f"/citizens/{kept_id}/merge", data={"other_id": duplicate_id, "confirmed": "1"}
    )
    assert merged.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(sa.select(LineContact.citizen_id)) == kept_id
    _send(line_client, line_app, "窓口の件の続きです", 1)
    assert _count() == 2
    assert _messages(counter_id) == ["窓口の件の続きです"]
    assert _messages(line_id) == ["はじめての相談です"]
    _undo_last(line_app)
    db.session.expire_all()
    assert db.session.scalar(sa.select(LineContact.citizen_id)) == duplicate_id
    _send(line_client, line_app, "別の相談です", 2)
    assert _count() == 3  # the contact's own case is closed: a new LINE ticket, as before
    assert _messages(counter_id) == ["窓口の件の続きです"]
