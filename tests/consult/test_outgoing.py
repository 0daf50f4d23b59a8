"""Messages out have one owner (tickets.record_outgoing), automatic answers one policy
(consult.services.auto_answer), and the timeline's data a typed shape (consult.timeline)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, TimelineEntry
from consult.services import auto_answer, tickets
from consult.services.actor import Actor
from consult.timeline import Automatic, Delivery, DeliveryStatus, MessageOut
from consult.timeutil import TOKYO

NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO)  # Tuesday 22:00: closed
LATER_THAT_NIGHT = NIGHT + timedelta(hours=3)
NEXT_NIGHT = NIGHT + timedelta(days=1)
DAY = datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO)  # Wednesday 10:00: open


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _outgoing_entries() -> int:
    return _count(TimelineEntry, TimelineEntry.kind == EntryKind.MESSAGE_OUT)


def _record(ticket, automatic, **details):
    message, entry = tickets.record_outgoing(
        ticket,
        channel="line",
        recipient="line-contact:1",
        body="自動でお送りしています",
        automatic=automatic,
        **details,
    )
    db.session.commit()
    return message, entry


# --- record_outgoing and the six places ---------------------------------------------------------


def test_record_outgoing_queues_the_row_and_writes_the_entry_together(app, make_ticket, make_staff):
    ticket = make_ticket()
    staff = make_staff("consultant")
    message, entry = tickets.record_outgoing(
        ticket,
        channel="email",
        recipient="shimin@example.jp",
        subject="Re: 住民票",
        body="本文\n\n署名",
        entry_body="本文",
        headers={"message_id": "<x@example.lg.jp>"},
        author=staff,
    )
    db.session.commit()
    assert message.ticket_id == ticket.id and message.headers["message_id"] == "<x@example.lg.jp>"
    assert message.body == "本文\n\n署名" and entry.body == "本文"
    assert entry.author_id == staff.id and entry.kind == EntryKind.MESSAGE_OUT
    assert entry.details == MessageOut(channel="email", outbox_id=message.id, subject="Re: 住民票")


@pytest.fixture
def counted(monkeypatch):
    """Each call of tickets.record_outgoing, and what it added: one outbox row, one entry."""
    calls = []
    original = tickets.record_outgoing

    def counting(*args, **kwargs):
        rows, entries = _count(OutboxMessage), _outgoing_entries()
        result = original(*args, **kwargs)
        db.session.flush()
        calls.append((_count(OutboxMessage) - rows, _outgoing_entries() - entries))
        return result

    monkeypatch.setattr(tickets, "record_outgoing", counting)
    return calls


def _through_record_outgoing(counted, send) -> MessageOut:
    rows, entries = _count(OutboxMessage), _outgoing_entries()
    send()
    db.session.commit()
    assert counted == [(1, 1)], "one call of record_outgoing, one row and one entry"
    assert (_count(OutboxMessage) - rows, _outgoing_entries() - entries) == (1, 1)
    counted.clear()
    entry = db.session.scalar(
        sa.select(TimelineEntry)
        .where(TimelineEntry.kind == EntryKind.MESSAGE_OUT)
        .order_by(TimelineEntry.id.desc())
        .limit(1)
    )
    return entry.details


def test_the_three_email_places_go_through_record_outgoing(app, make_ticket, make_staff, counted):
    from channels.email import services as email
    from channels.email.models import EmailThread

    ticket = make_ticket(channel=Channel.EMAIL, subject="ごみの出し方")
    db.session.add(EmailThread(ticket=ticket, address="shimin@example.jp"))
    db.session.commit()
    actor = Actor(make_staff("consultant"), "127.0.0.1")

    reply = _through_record_outgoing(counted, lambda: email.send_reply(actor, ticket, "回答です"))
    assert reply.channel == "email" and reply.automatic is None
    ack = _through_record_outgoing(counted, lambda: email.send_ack(ticket))
    assert ack.automatic == Automatic.ACK
    assert db.session.get(EmailThread, ticket.id).ack_outbox_id == ack.outbox_id
    faq = _through_record_outgoing(
        counted,
        lambda: email.send_automatic(ticket, "FAQ", automatic=Automatic.FAQ, faq_entry_id=7),
    )
    assert (faq.automatic, faq.faq_entry_id) == (Automatic.FAQ, 7)
    automatic = db.session.get(OutboxMessage, faq.outbox_id)
    assert automatic.headers["extra"] == {"Auto-Submitted": "auto-replied"}
    assert db.session.get(OutboxMessage, reply.outbox_id).headers["extra"] == {}
    # The acknowledgement is once per ticket: a second call queues nothing.
    assert email.send_ack(ticket) is None and counted == []


def test_the_three_line_places_go_through_record_outgoing(app, make_ticket, make_staff, counted):
    from channels.line import services as line
    from channels.line.models import LineContact, LineTicket
    from channels.line.services import events

    ticket = make_ticket(channel=Channel.LINE, subject="LINE：相談")
    contact = LineContact(user_id="U" + "0" * 32, following=True)
    db.session.add_all([contact, LineTicket(ticket=ticket, contact=contact)])
    db.session.commit()
    actor = Actor(make_staff("consultant"), "127.0.0.1")

    reply = _through_record_outgoing(counted, lambda: line.send_reply(actor, ticket, "回答です"))
    assert reply.channel == "line" and reply.automatic is None
    sent = db.session.get(OutboxMessage, reply.outbox_id)
    assert sent.body.endswith("\n回答です") and sent.headers["retry_key"]
    faq = _through_record_outgoing(
        counted,
        lambda: line.send_automatic(ticket, "FAQ", automatic=Automatic.FAQ, faq_entry_id=3),
    )
    assert (faq.automatic, faq.faq_entry_id) == (Automatic.FAQ, 3)
    night = _through_record_outgoing(
        counted, lambda: events._auto_answer(contact, ticket, NIGHT, open_now=False, first=True)
    )
    assert night.automatic == Automatic.OUT_OF_HOURS
    assert night.auto_until == auto_answer.spell_end(NIGHT)
    # The same night, the policy says no: nothing is queued.
    events._auto_answer(contact, ticket, LATER_THAT_NIGHT, open_now=False, first=False)
    db.session.commit()
    assert counted == []


# --- the policy ------------------------------------------------------------------------------


def test_in_hours_only_the_first_message_is_acknowledged_once(app, make_ticket):
    ticket = make_ticket(channel=Channel.LINE)
    may = auto_answer.may_answer_automatically
    assert not may(ticket, Automatic.ACK, DAY, first_message=False)
    assert may(ticket, Automatic.ACK, DAY, first_message=True)
    _record(ticket, Automatic.ACK)
    assert not may(ticket, Automatic.ACK, DAY, first_message=True)


def test_out_of_hours_one_answer_per_closed_spell(app, make_ticket):
    ticket = make_ticket(channel=Channel.LINE)
    may = auto_answer.may_answer_automatically
    assert not may(ticket, Automatic.OUT_OF_HOURS, DAY)  # open: a consultant answers
    assert may(ticket, Automatic.OUT_OF_HOURS, NIGHT)
    _record(ticket, Automatic.OUT_OF_HOURS, auto_until=auto_answer.spell_end(NIGHT))
    assert not may(ticket, Automatic.OUT_OF_HOURS, LATER_THAT_NIGHT)  # the same spell
    assert may(ticket, Automatic.OUT_OF_HOURS, NEXT_NIGHT)  # the next one


def test_the_faq_answers_once_per_ticket_and_only_out_of_hours(app, make_ticket):
    ticket = make_ticket(channel=Channel.EMAIL)
    may = auto_answer.may_answer_automatically
    assert not may(ticket, Automatic.FAQ, DAY)
    assert may(ticket, Automatic.FAQ, NIGHT)
    # Other automatic answers do not count as the FAQ's, nor the FAQ's as theirs.
    _record(ticket, Automatic.OUT_OF_HOURS, auto_until=auto_answer.spell_end(NIGHT))
    assert may(ticket, Automatic.FAQ, NIGHT)
    _record(ticket, Automatic.FAQ, faq_entry_id=1)
    assert not may(ticket, Automatic.FAQ, NIGHT) and not may(ticket, Automatic.FAQ, NEXT_NIGHT)
    assert may(ticket, Automatic.ACK, DAY, first_message=True)


def test_never_an_automatic_reply_nor_a_closed_ticket(app, make_ticket, make_staff):
    ticket = make_ticket(channel=Channel.EMAIL)
    may = auto_answer.may_answer_automatically
    for kind, at in ((Automatic.ACK, DAY), (Automatic.OUT_OF_HOURS, NIGHT), (Automatic.FAQ, NIGHT)):
        assert may(ticket, kind, at, first_message=True)
        assert not may(ticket, kind, at, first_message=True, automatic_reply=True)
    tickets.close(Actor(make_staff("consultant"), "127.0.0.1"), ticket, "回答済み")
    db.session.commit()
    for kind, at in ((Automatic.ACK, DAY), (Automatic.OUT_OF_HOURS, NIGHT), (Automatic.FAQ, NIGHT)):
        assert not may(ticket, kind, at, first_message=True)


def test_rows_written_before_the_typed_shape_still_count(app, make_ticket):
    """Old rows carry flags (auto, auto_ack, auto_faq, auto_until): the one reader knows them."""
    ticket = make_ticket(channel=Channel.LINE)
    until = auto_answer.spell_end(NIGHT)
    for data in (
        {"channel": "email", "outbox_id": 1, "auto_ack": True},
        {"channel": "line", "outbox_id": 2, "auto": True, "auto_until": until.isoformat()},
        {"channel": "line", "outbox_id": 3, "auto": True, "auto_faq": 9, "label": "FAQ"},
    ):
        tickets.add_entry(ticket, EntryKind.MESSAGE_OUT, body="以前の自動送信", data=data)
    db.session.commit()
    ack, night, faq = auto_answer.sent_automatically(ticket)
    assert ack == MessageOut(channel="email", outbox_id=1, automatic=Automatic.ACK)
    assert night.automatic == Automatic.OUT_OF_HOURS and night.auto_until == until
    assert (faq.automatic, faq.faq_entry_id) == (Automatic.FAQ, 9)
    may = auto_answer.may_answer_automatically
    assert not may(ticket, Automatic.ACK, DAY, first_message=True)
    assert not may(ticket, Automatic.OUT_OF_HOURS, LATER_THAT_NIGHT)
    assert not may(ticket, Automatic.FAQ, NEXT_NIGHT)
    # LINE's in-hours answer to a first message was {"auto": true}: an acknowledgement.
    assert MessageOut(channel="line", automatic=Automatic.ACK) == (
        TimelineEntry(kind=EntryKind.MESSAGE_OUT, data={"channel": "line", "auto": True}).details
    )


def test_typed_data_is_written_for_its_own_kind_only(app, make_ticket):
    ticket = make_ticket()
    entry = tickets.add_entry(
        ticket,
        EntryKind.DELIVERY,
        body="送信に失敗しました",
        data=Delivery(DeliveryStatus.FAILED, 4),
    )
    db.session.commit()
    db.session.expire_all()
    assert entry.data == {"status": "failed", "outbox_id": 4}
    assert entry.details == Delivery(DeliveryStatus.FAILED, outbox_id=4)
    with pytest.raises(TypeError):
        tickets.add_entry(ticket, EntryKind.NOTE, data=MessageOut(channel="line"))


def test_the_ticket_page_labels_automatic_answers_from_the_typed_data(
    app, client, make_ticket, make_staff
):
    from tests.helpers import sign_in

    ticket = make_ticket(channel=Channel.LINE)
    _record(ticket, Automatic.FAQ, faq_entry_id=1)
    tickets.add_entry(  # an old row
        ticket, EntryKind.MESSAGE_OUT, body="以前", data={"auto": True, "channel": "line"}
    )
    db.session.commit()
    sign_in(client, make_staff("consultant"))
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert page.count('<span class="badge badge--auto">FAQ自動回答</span>') == 1
    assert page.count('<span class="badge badge--auto">自動送信</span>') == 1
