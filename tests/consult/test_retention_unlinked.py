"""Records that belong to no case, on both databases: a cancelled booking, an ignored and a
quarantined mail, LINE events and users without a case, messages sent to no case, a copy that
never crossed between the zones. They go by their own date and class (`unlinked_years`), are
listed by kind with counts and no personal data, go on approval (one kind held back stays),
and are recorded in the 廃棄簿; afterwards no trace of them is left in the database, the data
folder or the search index, the statistics are unchanged, and what is newer stays."""

# The LINE fixtures are imported, and named as parameters: ruff sees a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import sqlalchemy as sa

from channels.booking import services as booking_services
from channels.booking.models import Booking, BookingStatus
from channels.email import tasks as email_tasks
from channels.email.models import InboundMail, InboundStatus
from channels.line.models import LineContact, LineDelivery, LineEvent, LineSubscription
from consult.extensions import db
from consult.models import DisposalRecord, OutboxMessage, OutboxStatus
from consult.services import retention
from consult.services.actor import Actor
from consult.transfer.models import TransferItem
from tests.channels.booking.helpers import slot_in
from tests.channels.line.conftest import (  # noqa: F401 (fixtures)
    body_of,
    fake_line,
    follow_event,
    line_app,
    line_client,
    new_staff,
    post_webhook,
    run_worker,
)
from tests.consult.test_retention import _all_text, _data_files, _statistics
from tests.helpers import sign_in

TODAY = date(2026, 12, 1)
LONG_AGO = datetime(2019, 5, 1, 3, 0, tzinfo=UTC)

BOOKER = "迷子 予約太郎"
BOOKER_KANA = "まいご よやくたろう"
BOOKER_MAIL = "maigo-yoyaku@example.jp"
BOOKING_TEXT = "来なかった予約の内緒の相談"
AUTO_REPLY = "自動応答の中の内緒の住所"
BROKEN_MAIL = "差出人のない内緒のメール"
STRAY_USER = "U" + "5a" * 16
KEPT_USER = "U" + "6b" * 16  # opted in to the notices: stays, unlinked
KEPT_NAME = "お知らせ登録者の表示名"
RELAY_COPY = "中継に残った内緒の写し"
MARKERS = [
    "迷子",
    "予約太郎",
    "よやくたろう",
    "maigo-yoyaku",
    "来なかった予約",
    "自動応答の中の内緒",
    "差出人のない内緒",
    STRAY_USER,
    KEPT_NAME,
    "中継に残った",
]
RECENT = "最近の予約の相談内容"  # a booking of this year: not due


def _auto_reply() -> bytes:
    return (
        "From: robot@example.jp\r\nTo: soudan@example.lg.jp\r\n"
        "Subject: =?UTF-8?B?5LiN5Zyo?=\r\nAuto-Submitted: auto-replied\r\n"
        "Message-ID: <maigo-auto-1@example.jp>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{AUTO_REPLY}\r\n"
    ).encode()


def _no_sender() -> bytes:
    return (
        "To: soudan@example.lg.jp\r\nSubject: test\r\n"
        "Message-ID: <maigo-broken-1@example.jp>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{BROKEN_MAIL}\r\n"
    ).encode()


def _book(content: str, name: str = BOOKER, kana: str = BOOKER_KANA, email=BOOKER_MAIL):
    booking = booking_services.create_booking(
        Actor(None, "127.0.0.1"),
        booking_services.BookingInput(
            mode="counter",
            starts_at=slot_in(7),
            name=name,
            kana=kana,
            content=content,
            email=email,
        ),
    )
    db.session.commit()
    return booking


def _build(app, client) -> dict:
    # A booking cancelled long ago, never a case; its confirmation and cancellation mails.
    old = _book(BOOKING_TEXT)
    booking_services.cancel_booking(Actor(None, "127.0.0.1"), old)
    db.session.commit()
    recent = _book(RECENT, name="今年 予約", kana="ことし よやく", email="kotoshi@example.jp")
    recent_id, old_id = recent.id, old.id
    # Mail that never became a case: an auto-reply (ignored) and one with no sender
    # (quarantined).
    ignored = email_tasks.ingest(_auto_reply()).inbound
    broken = email_tasks.ingest(_no_sender()).inbound
    assert ignored.status == InboundStatus.IGNORED and ignored.ticket_id is None
    assert broken.status == InboundStatus.QUARANTINED and broken.ticket_id is None
    # LINE: two users who only followed the account; one opted in to the notices.
    post_webhook(client, body_of(follow_event(user=STRAY_USER), follow_event(user=KEPT_USER)))
    run_worker(app)
    kept = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == KEPT_USER))
    kept.display_name = KEPT_NAME
    db.session.add(LineSubscription(contact_id=kept.id, topic="interest", value="consumer"))
    # A copy that waited to cross between the zones and was never taken.
    db.session.add(
        TransferItem(
            id="outbox:stray:1",
            kind="outbox",
            payload={"body": RELAY_COPY, "recipient": BOOKER_MAIL},
            created_at=LONG_AGO,
        )
    )
    db.session.commit()
    # Everything but the recent booking is dated back to 2019.
    booking = db.session.get(Booking, old_id)
    booking.starts_at = booking.ends_at = booking.created_at = LONG_AGO
    booking.cancelled_at = LONG_AGO
    for mail in db.session.scalars(sa.select(InboundMail)):
        mail.received_at = LONG_AGO
    for row in db.session.scalars(sa.select(LineEvent)):
        row.received_at = LONG_AGO
    for row in db.session.scalars(sa.select(LineDelivery)):
        row.received_at = LONG_AGO
    for row in db.session.scalars(sa.select(LineContact)):
        row.created_at = row.followed_at = LONG_AGO
        row.first_message_at = None
    for message in db.session.scalars(sa.select(OutboxMessage)):
        assert message.ticket_id is None
        if BOOKER_MAIL in message.recipient or message.recipient in (STRAY_USER, KEPT_USER):
            message.created_at = LONG_AGO
            message.status = OutboxStatus.DELIVERED
    db.session.commit()
    return {"recent": recent_id, "old": old_id}


def _list_page(client, list_id: int) -> str:
    response = client.get(f"/records/lists/{list_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_records_without_a_case_go_by_their_own_date_on_approval(line_app, line_client):
    case = _build(line_app, line_client)
    assert _all_text(MARKERS) and _data_files(line_app, MARKERS)
    before = _statistics()
    supervisor = new_staff("supervisor")
    actor = Actor(supervisor, "127.0.0.1")
    # The class: one year by default, counted from the fiscal year after the record's date.
    assert retention.unlinked_years() == 1
    due = {row.kind: row.count for row in retention.unlinked_due(actor, TODAY)}
    assert due == {"booking": 1, "mail": 2, "line_event": 2, "line_contact": 2} | {
        "outbox": due["outbox"],
        "transfer": 1,
    }
    assert due["outbox"] >= 2  # the booking's confirmation and cancellation at least
    # Not yet due in 2019年度's own year nor the next: a record of 2019-05 goes from 2021-04-01.
    assert retention.unlinked_due(actor, date(2021, 3, 31)) == []
    assert retention.unlinked_due(actor, date(2021, 4, 1))
    # The month's list: the kinds with counts, no personal data on the page.
    listing = retention.prepare_list(actor, today=TODAY)
    db.session.commit()
    client = sign_in(line_app.test_client(), supervisor)
    page = _list_page(client, listing.id)
    assert "相談にならなかった予約" in page and "相談に結び付かない記録" in page
    assert not [m for m in [*MARKERS, RECENT] if m in page]
    # A kind held back stays; the others go on approval.
    retention.hold_back_unlinked(actor, listing, "transfer")
    retention.approve(actor, listing)
    db.session.commit()
    result = line_app.test_cli_runner().invoke(
        args=["records", "dispose", "--approved", "--json", "--today", TODAY.isoformat()]
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()
    outcome = json.loads(result.output)
    assert outcome["tickets"] == 0
    assert outcome["unlinked"]["booking"] == 1 and outcome["unlinked"]["mail"] >= 2
    assert "transfer" not in outcome["unlinked"]
    assert outcome["removed"]["mail_raw"] == 2 and outcome["removed"]["file"] >= 2
    # No trace, but the held-back copy and the opted-in user's id (kept for the notices).
    left = _all_text(MARKERS)
    assert left and all(hit.startswith("transfer_item.payload") for hit in left), left
    assert _data_files(line_app, MARKERS) == []
    kept = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == KEPT_USER))
    assert kept.citizen_id is None and kept.display_name is None
    assert (
        db.session.scalar(sa.select(LineContact).where(LineContact.user_id == STRAY_USER)) is None
    )
    # The recent booking is untouched; the old one keeps its slot, times and status.
    assert db.session.get(Booking, case["recent"]).content == RECENT
    old = db.session.get(Booking, case["old"])
    assert old.status == BookingStatus.CANCELLED and old.name == "" and old.email is None
    from consult.services import search

    assert search.matches(search.Query.parse("迷子")) == {}
    assert _statistics() == before
    # The 廃棄簿: one row per kind, with the approver, counts, no data.
    records = list(
        db.session.scalars(sa.select(DisposalRecord).where(DisposalRecord.kind == "unlinked"))
    )
    assert sorted(r.channel for r in records) == sorted(
        ["booking", "mail", "line_event", "line_contact", "outbox"]
    )
    assert all(r.approved_by_name == supervisor.full_name for r in records)
    assert all(r.retention_years == 1 and r.expired_on == date(2025, 3, 31) for r in records)
    register = client.get("/records/register").get_data(as_text=True)
    assert "相談に結び付かない記録" in register
    assert not [m for m in MARKERS if m in register]
    # The held-back kind goes once released on next month's list and approved again.
    page = _list_page(client, listing.id)
    assert "保留" in page and "廃棄済み" in page
    retention.hold_back_unlinked(actor, listing, "transfer", back=False)
    with_next = retention.prepare_list(actor, today=date(2027, 1, 5))
    retention.approve(actor, with_next)
    db.session.commit()
    result = line_app.test_cli_runner().invoke(
        args=["records", "dispose", "--approved", "--json", "--today", "2027-01-05"]
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert _all_text(MARKERS) == []


def test_the_class_is_an_administrators_setting_and_dry_run_changes_nothing(line_app, line_client):
    _build(line_app, line_client)
    admin = new_staff("admin")
    client = sign_in(line_app.test_client(), admin)
    page = client.get("/records/retention").get_data(as_text=True)
    assert "相談に結び付かない記録の保存期間" in page
    # Ten years: the 2019 records are not due on 2026-12-01 (due from 2030-04-01).
    retention.set_unlinked_years(Actor(admin, "127.0.0.1"), 10)
    db.session.commit()
    supervisor = new_staff("supervisor")
    actor = Actor(supervisor, "127.0.0.1")
    assert retention.unlinked_due(actor, TODAY) == []
    assert retention.unlinked_due(actor, date(2030, 4, 1))
    retention.set_unlinked_years(Actor(admin, "127.0.0.1"), 1)
    db.session.commit()
    listing = retention.prepare_list(actor, today=TODAY)
    retention.approve(actor, listing)
    db.session.commit()
    text = _all_text(MARKERS)
    result = line_app.test_cli_runner().invoke(
        args=["records", "dispose", "--approved", "--dry-run", "--json", "--today", "2026-12-01"]
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()
    outcome = json.loads(result.output)
    assert outcome["dry_run"] and outcome["unlinked"]["booking"] == 1
    assert _all_text(MARKERS) == text
