"""What the relay does with what it holds: each message's outcome goes back to the core (a
failure shows on the core as on one server), and whatever the core has not taken within
MADOGUCHI_RELAY_HOLD_DAYS is forgotten on the relay by its own worker."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from channels.booking.models import Booking
from channels.email import tasks as mail_tasks
from channels.email.models import InboundMail
from channels.line.models import LineDelivery
from consult.extensions import db
from consult.models import AuditEvent, EntryKind, OutboxMessage, OutboxStatus, Role
from consult.services import outbox
from consult.timeutil import utcnow
from consult.transfer import services
from consult.transfer.models import TransferItem, TransferReceived
from consult.worker import tasks_by_lane
from tests.channels.line.conftest import new_staff
from tests.helpers import sign_in
from tests.transfer.test_booking_zones import book_on_relay
from tests.transfer.test_zones import MAIL, core_round, count, line_tickets, send_line

LINE_REFUSAL = "The property, 'to', in the request is invalid."


def _ticket_with_reply(relay, core, text: str):
    """A LINE ticket on the core and a consultant's reply to it, handed to the relay."""
    assert send_line(relay, "子どもの医療費助成について").status_code == 200
    core_round()
    [ticket] = line_tickets()
    # What the core sent on its own first (the acknowledgement of receipt), delivered and
    # reported, so the relay holds the reply alone.
    outbox.run_once()
    core_round()
    with relay.context():
        outbox.run_once()
    core_round()
    with relay.context():
        assert count(OutboxMessage) == 0
    staff = new_staff()
    web = core.test_client()
    sign_in(web, staff)
    answer = web.post(f"/channels/line/tickets/{ticket.number}/reply", data={"body": text})
    assert answer.status_code == 302
    outbox.run_once()  # the core's outbox hands the message to the transfer
    assert core_round().pushed >= 1
    [message] = [
        row
        for row in db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)
        )
        if text in row.body
    ]
    return ticket, message.id, web


def test_a_reply_the_relay_could_not_deliver_shows_failed_on_the_core_and_can_be_sent_again(
    relay, core, fake_line
):
    ticket, message_id, web = _ticket_with_reply(relay, core, "申請書は窓口でお渡しします。")
    # LINE refuses the push for good: the relay's outbox gives the message up.
    fake_line.script("/v2/bot/message/push", (400, {"message": LINE_REFUSAL}))
    with relay.context():
        outbox.run_once()
        [held] = db.session.scalars(sa.select(OutboxMessage)).all()
        assert held.status == OutboxStatus.FAILED
        batch = services.outgoing(100)  # what the core's next pull takes
        db.session.commit()
    assert [item["kind"] for item in batch] == [services.OUTCOME]

    assert core_round().pulled == 1
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    assert message.status == OutboxStatus.FAILED
    assert "LINEが受け付けませんでした（400）" in message.last_error
    assert LINE_REFUSAL in message.last_error
    # As on one server: the ticket says so, and so do the failed items and the command line.
    page = web.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "送信に失敗しました" in page and "送信失敗" in page
    assert "LINEが受け付けませんでした（400）" in page
    admin = core.test_client()
    sign_in(admin, new_staff(Role.ADMIN.value))
    failed_page = admin.get("/admin/queue").get_data(as_text=True)
    assert "LINEの送信" in failed_page and ticket.number in failed_page
    cli = core.test_cli_runner().invoke(args=["queue", "failed", "--json"])
    assert cli.exit_code == 0, cli.output
    [listed] = json.loads(cli.output)
    assert listed["id"] == f"outbox:{message_id}"
    assert "LINEが受け付けませんでした（400）" in listed["reason"]

    # The core has the outcome: the relay forgets the address and the words.
    with relay.context():
        assert count(OutboxMessage) == 0
        # The item's id too, so the same message sent again is taken anew.
        applied = db.session.scalars(sa.select(TransferReceived.id)).all()
        assert not [item for item in applied if item.startswith(f"outbox:{message_id}:")]
    # The same outcome again (a lost acknowledgement, a replayed batch) changes nothing.
    result = services.receive(batch)
    db.session.commit()
    assert result.applied == 0
    db.session.expire_all()
    failures = [e for e in ticket.timeline if e.kind == EntryKind.DELIVERY]
    assert len(failures) == 1

    # An administrator sends it again from the failed items; this time LINE takes it.
    retried = admin.post(f"/admin/queue/outbox:{message_id}/retry", data={})
    assert retried.status_code == 302
    outbox.run_once()
    assert core_round().pushed == 1
    fake_line.requests.clear()
    with relay.context():
        outbox.run_once()
    [push] = fake_line.pushes
    assert any("申請書は窓口でお渡しします。" in text for text in push.texts)
    core_round()
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    assert message.status == OutboxStatus.DELIVERED and message.delivered_at is not None
    with relay.context():
        assert count(OutboxMessage) == 0
    assert ticket.number not in admin.get("/admin/queue").get_data(as_text=True)


def _age(days: int) -> None:
    """On the relay: everything it holds was received `days` ago."""
    then = utcnow() - timedelta(days=days)
    for table, column in (
        (LineDelivery.__table__, "received_at"),
        (InboundMail.__table__, "received_at"),
        (TransferItem.__table__, "created_at"),
        (OutboxMessage.__table__, "created_at"),
    ):
        db.session.execute(sa.update(table).values({column: then}))
    db.session.commit()


def test_the_relay_forgets_what_the_core_has_not_taken_after_the_hold_days(
    relay, core, fake_line, caplog
):
    from tests.channels.booking.helpers import slot_in

    # A reply delivered on the relay whose outcome the core never came for.
    _ticket_with_reply(relay, core, "面談の日時をご連絡します。")
    with relay.context():
        outbox.run_once()
    # Then the core is away: intake waits on the relay.
    assert send_line(relay, "まだ庁内に届いていない相談").status_code == 200
    assert book_on_relay(relay, slot_in(7)).status_code == 303
    with relay.context():
        mail_tasks.ingest(MAIL, source="stdin")
        data = Path(relay.app.config["MADOGUCHI"]["DATA_DIR"])
        assert list(data.rglob("*.eml"))
        assert (count(LineDelivery), count(InboundMail), count(OutboxMessage)) == (1, 1, 1)
        assert count(TransferItem) >= 1  # the booking, for the core

        # The relay's own worker runs it (its housekeeping lane), not the core.
        names = [t.name for ts in tasks_by_lane(relay.app).values() for t in ts]
        assert "transfer.housekeeping" in names

        # Within the hold days nothing the core has yet to take is touched.
        services.housekeeping()
        assert (count(LineDelivery), count(InboundMail), count(OutboxMessage)) == (1, 1, 1)

        _age(days=15)  # MADOGUCHI_RELAY_HOLD_DAYS is 14 by default
        assert send_line(relay, "今日届いた相談").status_code == 200  # fresh: kept
        with caplog.at_level(logging.INFO, logger="madoguchi.transfer"):
            counts = services.housekeeping()
        assert counts["line.delivery"] == 1 and counts["mail.inbound"] == 1
        assert counts["outbox"] == 1 and counts["items"] >= 1
        db.session.expire_all()
        assert count(LineDelivery) == 1  # only today's
        assert (count(InboundMail), count(OutboxMessage), count(TransferItem)) == (0, 0, 0)
        assert not list(data.rglob("*.eml"))
        [booking] = db.session.scalars(sa.select(Booking)).all()
        assert (booking.name, booking.email, booking.phone, booking.content) == ("", None, None, "")
        # Recorded by counts only: nothing of what was held.
        [event] = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "expire")
        ).all()
        assert event.object_type == "relay_hold" and "line.delivery=1" in event.detail
        said = event.detail + caplog.text
        for secret in ("まだ庁内", "山田", "hanako", "保育園", "面談の日時", "U0000"):
            assert secret not in said

    # The core, back: only today's message arrives.
    core_round()
    texts = [e.body for t in line_tickets() for e in t.timeline if e.kind == EntryKind.MESSAGE_IN]
    assert "今日届いた相談" in texts and "まだ庁内に届いていない相談" not in texts


def test_outcomes_cross_in_batch_files_too(relay, core, fake_line, tmp_path):
    from tests.transfer.test_files import run

    def carry(source, target, name: str):
        db.session.commit()  # this test's own reads end first (SQLite)
        path = tmp_path / name
        with source.app_context():
            assert run(source, "transfer", "export", "--out", str(path)).exit_code == 0
        with target.app_context():
            result = run(target, "transfer", "import", str(path))
            assert result.exit_code == 0, result.output
            db.session.remove()

    assert send_line(relay, "ファイル転送で届く相談").status_code == 200
    carry(relay.app, core, "intake.json")
    core_round()  # processes the LINE body (the link is not used for it: nothing waits there)
    [ticket] = line_tickets()
    outbox.run_once()  # the acknowledgement of receipt, handed to the transfer
    carry(core, relay.app, "out.json")
    with relay.context():
        waiting = count(OutboxMessage)
        assert waiting >= 1
    for _ in range(waiting):
        fake_line.script("/v2/bot/message/push", (400, {"message": LINE_REFUSAL}))
    with relay.context():
        outbox.run_once()
        assert set(db.session.scalars(sa.select(OutboxMessage.status))) == {OutboxStatus.FAILED}
    carry(relay.app, core, "outcomes.json")
    db.session.expire_all()
    failed = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id)
    ).all()
    assert failed and {m.status for m in failed} == {OutboxStatus.FAILED}
    assert any(
        e.kind == EntryKind.DELIVERY and "LINEが受け付けませんでした（400）" in e.body
        for e in ticket.timeline
    )
    carry(core, relay.app, "acks.json")  # the core's acknowledgements: the relay forgets
    with relay.context():
        assert count(OutboxMessage) == 0
