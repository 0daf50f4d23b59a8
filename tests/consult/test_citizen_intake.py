"""Intake never silently duplicates a citizen (issue 16): through the real forms, a strong
match asks "this person or a new one" once more, keeps what was typed, and creates nothing
until the consultant chooses."""

from __future__ import annotations

import sqlalchemy as sa

from channels.booking.models import Booking, BookingStatus
from consult.extensions import db
from consult.models import Channel, Citizen, Ticket
from consult.services import citizens
from consult.services.actor import SYSTEM, Actor
from tests.channels.booking.helpers import form_data, slot_in
from tests.helpers import sign_in

MESSAGE = "登録済みの相談者と一致する可能性があります。"


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _ikeda() -> Citizen:
    citizen = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="池田 和子", kana="いけだ かずこ", phone="090-2681-0001")
    )
    db.session.commit()
    return citizen


COUNTER = {
    "room": "1",
    "name": "池田　和子",
    "kana": "イケダ カズコ",
    "phone": "０９０－２６８１－０００１",
    "first_note": "年金の手続きについて。息子さんと来庁。",
    "subject": "年金の手続き",
}


def test_counter_asks_once_more_and_keeps_what_was_typed(app, client, login_as):
    login_as("consultant")
    ikeda = _ikeda()
    citizens_before, tickets_before = _count(Citizen), _count(Ticket)
    response = client.post("/counter/new", data=COUNTER)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert MESSAGE in html and "この方として受け付ける：池田 和子" in html
    assert f'name="citizen_choice" value="{ikeda.id}"' in html
    assert 'name="citizen_choice" value="new"' in html
    assert "年金の手続きについて。息子さんと来庁。" in html and 'value="年金の手続き"' in html
    assert (_count(Citizen), _count(Ticket)) == (citizens_before, tickets_before)
    # Sending again without a choice asks again: never a duplicate.
    assert client.post("/counter/new", data=COUNTER).status_code == 422
    assert (_count(Citizen), _count(Ticket)) == (citizens_before, tickets_before)
    # This person: the ticket is hers, no new citizen.
    response = client.post("/counter/new", data={**COUNTER, "citizen_choice": str(ikeda.id)})
    assert response.status_code == 302
    ticket = db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))
    assert ticket.citizen_id == ikeda.id and _count(Citizen) == citizens_before
    # A new person, once chosen: created.
    response = client.post("/counter/new", data={**COUNTER, "citizen_choice": "new"})
    assert response.status_code == 302 and _count(Citizen) == citizens_before + 1


def test_counter_with_the_live_lookups_choice_goes_straight_through(app, client, login_as):
    login_as("consultant")
    ikeda = _ikeda()
    response = client.post("/counter/new", data={**COUNTER, "citizen_id": str(ikeda.id)})
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc())).citizen_id == ikeda.id


def test_counter_without_a_strong_match_creates_the_citizen(app, client, login_as):
    login_as("consultant")
    _ikeda()
    before = _count(Citizen)
    # Same name, another phone: another person, not asked.
    response = client.post("/counter/new", data={**COUNTER, "phone": "090-2681-0002"})
    assert response.status_code == 302 and _count(Citizen) == before + 1


def test_counter_birth_date_is_stored_and_a_bad_one_refused(app, client, login_as):
    login_as("consultant")
    data = {**COUNTER, "name": "大西 健一", "kana": "", "phone": "", "birth_date": "1961-03-04"}
    assert client.post("/counter/new", data=data).status_code == 302
    ticket = db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))
    assert ticket.citizen.birth_date.isoformat() == "1961-03-04"
    before = _count(Ticket)
    response = client.post("/counter/new", data={**data, "birth_date": "1961-02-30"})
    assert response.status_code == 422
    assert "生年月日は西暦で「1975-01-31」のように入力してください。" in response.get_data(
        as_text=True
    )
    assert _count(Ticket) == before


def test_phone_log_asks_this_person_or_a_new_one(app, client, login_as):
    login_as("consultant")
    ikeda = _ikeda()
    data = {
        "duration_minutes": "7",
        "name": "",
        "phone": "09026810001",
        "first_note": "介護保険の認定の結果について問い合わせ。",
    }
    before = (_count(Citizen), _count(Ticket))
    response = client.post("/phone/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and MESSAGE in html and "池田 和子" in html
    assert "介護保険の認定の結果について問い合わせ。" in html
    assert (_count(Citizen), _count(Ticket)) == before
    response = client.post("/phone/new", data={**data, "citizen_choice": str(ikeda.id)})
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc())).citizen_id == ikeda.id
    assert _count(Citizen) == before[0]


def test_registering_a_line_or_email_sender_asks_first(app, client, login_as, make_ticket):
    consultant = login_as("consultant")
    ikeda = _ikeda()
    ticket = make_ticket(
        actor=Actor(consultant, "127.0.0.1"), channel=Channel.LINE, subject="LINEでの相談"
    )
    db.session.commit()
    before = _count(Citizen)
    data = {"name": "池田和子", "email": "", "phone": "090 2681 0001"}
    response = client.post(f"/tickets/{ticket.number}/citizen", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and MESSAGE in html
    assert "この方として紐付ける：池田 和子" in html and 'value="池田和子"' in html
    assert _count(Citizen) == before
    response = client.post(
        f"/tickets/{ticket.number}/citizen", data={**data, "citizen_choice": str(ikeda.id)}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).citizen_id == ikeda.id and _count(Citizen) == before


def test_booking_check_in_shows_the_candidates_and_asks(app, client, make_staff):
    known = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="山田 花子", phone="087-839-2111")
    )
    db.session.commit()
    response = client.post("/booking/details", data=form_data(slot_in(2)))
    assert response.status_code == 303
    booking = db.session.scalar(sa.select(Booking).order_by(Booking.id.desc()))
    desk = sign_in(app.test_client(), make_staff("consultant"))
    page = desk.get(f"/booking/staff/b/{booking.id}").get_data(as_text=True)
    assert "この方として受け付ける：山田 花子" in page
    before = _count(Citizen)
    desk.post(f"/booking/staff/b/{booking.id}/check-in")
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status is BookingStatus.BOOKED
    assert _count(Citizen) == before
    response = desk.post(
        f"/booking/staff/b/{booking.id}/check-in", data={"citizen_choice": str(known.id)}
    )
    assert response.status_code == 302
    db.session.expire_all()
    booking = db.session.get(Booking, booking.id)
    assert booking.status is BookingStatus.CHECKED_IN
    assert booking.ticket.citizen_id == known.id and _count(Citizen) == before
