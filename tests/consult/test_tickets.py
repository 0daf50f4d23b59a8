from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, Status, Ticket, TimelineEntry
from consult.services import tickets
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, TicketClosed, ValidationFailed


@pytest.fixture
def actor(make_staff):
    return Actor(make_staff("consultant"), "127.0.0.1")


def test_numbers_are_consecutive_per_fiscal_year(app, actor):
    march = datetime(2027, 3, 31, 14, 59, tzinfo=UTC)  # 23:59 in Tokyo: still FY2026
    april = datetime(2027, 3, 31, 15, 0, tzinfo=UTC)  # 00:00 on 1 April in Tokyo: FY2027
    numbers = [
        tickets.create_ticket(actor, channel=Channel.PHONE, subject="件名", at=march).number,
        tickets.create_ticket(actor, channel=Channel.PHONE, subject="件名", at=march).number,
        tickets.create_ticket(actor, channel=Channel.PHONE, subject="件名", at=april).number,
    ]
    db.session.commit()
    assert numbers == ["2026-000001", "2026-000002", "2027-000001"]


def test_rolled_back_ticket_leaves_no_gap(app, actor):
    tickets.create_ticket(actor, channel=Channel.PHONE, subject="一件目")
    db.session.commit()
    tickets.create_ticket(actor, channel=Channel.PHONE, subject="取り消される")
    db.session.rollback()
    third = tickets.create_ticket(actor, channel=Channel.PHONE, subject="二件目")
    db.session.commit()
    assert third.number.endswith("-000002")


def test_status_moves_along_allowed_transitions(app, actor, make_ticket):
    ticket = make_ticket(actor=actor)
    tickets.change_status(actor, ticket, Status.IN_PROGRESS)
    tickets.change_status(actor, ticket, Status.HANDED_OFF)
    tickets.change_status(actor, ticket, Status.AWAITING_REPLY)
    tickets.change_status(actor, ticket, Status.RESOLVED, "書類を案内した")
    db.session.commit()
    labels = [e.data["label"] for e in ticket.timeline if e.kind == EntryKind.STATUS_CHANGE]
    assert labels == ["受付 → 対応中", "対応中 → 引継中", "引継中 → 回答待ち", "回答待ち → 解決"]
    assert ticket.resolution_summary == "書類を案内した"


def test_forbidden_transition_says_why_and_changes_nothing(app, actor, make_ticket):
    ticket = make_ticket(actor=actor)
    tickets.change_status(actor, ticket, Status.RESOLVED)
    db.session.commit()
    before = db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)))
    with pytest.raises(InvalidTransition) as caught:
        tickets.change_status(actor, ticket, Status.HANDED_OFF)
    assert "「解決」から「引継中」には変更できません" in caught.value.message
    db.session.rollback()
    assert db.session.get(Ticket, ticket.id).status == Status.RESOLVED
    assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == before


def test_close_requires_a_summary(app, actor, make_ticket):
    ticket = make_ticket(actor=actor)
    with pytest.raises(ValidationFailed, match="対応結果の要約を入力してください"):
        tickets.close(actor, ticket, "   ")
    tickets.close(actor, ticket, "転入手続きを案内し完了")
    db.session.commit()
    assert ticket.status == Status.CLOSED and not ticket.is_open
    assert ticket.closed_at is not None


def test_closed_ticket_cannot_be_edited_until_reopened(app, actor, make_ticket):
    ticket = make_ticket(actor=actor)
    tickets.close(actor, ticket, "完了")
    db.session.commit()
    with pytest.raises(TicketClosed):
        tickets.add_note(actor, ticket, "追記")
    with pytest.raises(ValidationFailed, match="再開の理由を入力してください"):
        tickets.reopen(actor, ticket, "")
    tickets.reopen(actor, ticket, "再度の来庁")
    tickets.add_note(actor, ticket, "追記")
    db.session.commit()
    assert ticket.status == Status.IN_PROGRESS and ticket.is_open


def test_timeline_is_append_only_in_the_database(app, actor, make_ticket):
    ticket = make_ticket(actor=actor, first_note="最初のメモ")
    entry_id = ticket.timeline[0].id
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(
            sa.text("UPDATE timeline_entry SET body = 'x' WHERE id = :id"), {"id": entry_id}
        )
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("DELETE FROM timeline_entry WHERE id = :id"), {"id": entry_id})
    db.session.rollback()
    assert db.session.get(TimelineEntry, entry_id).body == "最初のメモ"


def test_queue_pages_with_keyset(app, actor, make_ticket):
    for n in range(7):
        make_ticket(actor=actor, subject=f"相談{n}")
    first = tickets.queue(actor, tickets.QueueFilter(), page_size=3)
    assert [t.subject for t in first.tickets] == ["相談6", "相談5", "相談4"]
    second = tickets.queue(
        actor, tickets.QueueFilter(), after=tickets.Cursor.decode(first.next_cursor), page_size=3
    )
    assert [t.subject for t in second.tickets] == ["相談3", "相談2", "相談1"]
    back = tickets.queue(
        actor, tickets.QueueFilter(), before=tickets.Cursor.decode(second.prev_cursor), page_size=3
    )
    assert [t.subject for t in back.tickets] == ["相談6", "相談5", "相談4"]
