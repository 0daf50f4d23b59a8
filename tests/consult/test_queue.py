"""The one work queue (consult.services.queue): claims of stopped processes are taken back within
seconds, never those of live ones; an interrupted send is said to be a possible resend; SMTP
waits have a limit. The real-process tests are in test_queue_processes.py."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, OutboxStatus, TimelineEntry
from consult.services import mail, outbox, queue
from consult.settings import override as override_settings
from consult.timeutil import utcnow
from tests.conftest import install_channel


def _message(id_: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, id_)


def _claimed_by(message_id: int, holder: str, *, ago: float, handed: bool) -> None:
    """As if `holder` had claimed the message `ago` seconds ago (and begun sending it)."""
    at = utcnow() - timedelta(seconds=ago)
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.SENDING,
            claimed_by=holder,
            claimed_at=at,
            handed_at=at if handed else None,
            attempts=1 if handed else 0,
        )
    )
    db.session.commit()


def test_a_stopped_holders_claim_is_taken_back_and_a_live_ones_is_not(app, make_ticket):
    sent = []
    install_channel(app, "test-q", lambda message: sent.append(message.headers["message_id"]))
    ticket = make_ticket(channel=Channel.EMAIL)
    dead = outbox.enqueue(
        channel="test-q", recipient="a@example.jp", body="1", headers={"message_id": "<d@x>"},
        ticket=ticket,
    )  # fmt: skip
    alive = outbox.enqueue(
        channel="test-q", recipient="b@example.jp", body="2", headers={"message_id": "<a@x>"}
    )
    recent = outbox.enqueue(
        channel="test-q", recipient="c@example.jp", body="3", headers={"message_id": "<r@x>"}
    )
    db.session.commit()
    # A worker killed while sending: no heartbeat for longer than STALE_SECONDS.
    _claimed_by(dead.id, "host:1:dead", ago=queue.STALE_SECONDS + 1, handed=True)
    # A worker still beating, sending for a long time: its claim stays its own.
    _claimed_by(alive.id, "host:2:alive", ago=60, handed=True)
    queue.beat("host:2:alive")
    # A claim made a moment ago by a process that has not beaten yet: not taken either.
    _claimed_by(recent.id, "host:3:new", ago=1, handed=False)

    report = outbox.run_once()

    assert report.delivered == 1 and sent == ["<d@x>"]  # the same Message-ID again
    taken = _message(dead.id)
    assert (taken.status, taken.attempts, taken.claimed_by) == (OutboxStatus.DELIVERED, 2, None)
    assert taken.handed_at is None
    note = db.session.scalar(
        sa.select(TimelineEntry).where(
            TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.DELIVERY
        )
    )
    assert note is not None and "送信済みの可能性があります" in note.body
    assert _message(alive.id).claimed_by == "host:2:alive"
    assert _message(recent.id).claimed_by == "host:3:new"


def test_a_holder_whose_claim_was_taken_back_does_not_finish_the_row(app):
    install_channel(app, "test-q2", lambda message: None)
    message = outbox.enqueue(channel="test-q2", recipient="a@example.jp", body="1")
    db.session.commit()
    mine = outbox.claim_due("host:9:me", 10)
    assert mine == [message.id]
    # Thought dead, its claim taken by another worker in the meantime.
    db.session.execute(
        sa.update(OutboxMessage).where(OutboxMessage.id == message.id).values(claimed_by="other")
    )
    db.session.commit()
    report = outbox.deliver_one(message.id, "host:9:me", 8)
    assert (report.delivered, report.failed, report.retried) == (0, 0, 0)
    stored = _message(message.id)
    assert (stored.status, stored.claimed_by, stored.attempts) == (OutboxStatus.SENDING, "other", 0)


def test_a_heartbeat_is_kept_while_the_process_works_and_removed_after(app):
    def beat_at(holder):
        db.session.expire_all()
        row = db.session.get(queue.WorkerHeartbeat, holder)
        at = row.beat_at if row is not None else None
        db.session.commit()  # read before: a look after would begin (and hold) SQLite's lock
        return at

    def soon(predicate):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.3)  # a look takes SQLite's write lock: leave the beats room
        return predicate()

    with queue.heartbeat(app, interval=0.2) as holder:
        assert soon(lambda: beat_at(holder) is not None)
        first = beat_at(holder)
        assert soon(lambda: beat_at(holder) > first)
    assert soon(lambda: beat_at(holder) is None)


@pytest.fixture
def silent_smtp():
    """A server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_an_smtp_server_that_never_answers_is_given_up_after_the_timeout(
    app, silent_smtp, security
):
    override_settings(
        app,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=silent_smtp,
        SMTP_SECURITY=security,
        SMTP_TIMEOUT_SECONDS=1,
    )
    message = mail.enqueue_mail(to="taro@example.jp", subject="件名", text="本文")
    db.session.commit()
    started = time.monotonic()
    with pytest.raises(outbox.TemporaryFailure):
        mail.deliver(message)
    assert time.monotonic() - started < 2.5  # one timeout, not one per step


@pytest.mark.parametrize(
    "key",
    [
        "outbox:99999999999999999999",  # past a 32-bit id: a database error before
        "outbox:abc",
        "outbox:１２",  # full-width digits
        "nope:1",
        "outbox:",
    ],
)
def test_a_retry_of_a_key_that_names_no_row_is_told_in_japanese(app, make_staff, key):
    from consult.models import AuditEvent
    from tests.helpers import sign_in

    admin = sign_in(app, make_staff("admin"))
    response = admin.post(f"/admin/queue/{key}/retry", follow_redirects=True)
    assert response.status_code == 200
    assert "見つかりません" in response.get_data(as_text=True)
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.object_type == "queue")
        )
        == 0
    )
