"""A LINE event that fails every attempt is given up with its reason, shown to administrators
(page and command) and put back by 再試行 (consult.services.queue)."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from channels.line import tasks
from channels.line.models import EventStatus, LineEvent
from consult.extensions import db
from consult.models import AuditEvent
from consult.settings import override as override_settings
from consult.timeutil import TOKYO
from tests.channels.line.conftest import (
    body_of,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.helpers import sign_in

OPEN = int(datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO).timestamp() * 1000)  # Tuesday 10:00


def _event() -> LineEvent:
    db.session.expire_all()
    return db.session.scalar(sa.select(LineEvent))


def test_a_failing_event_is_listed_and_retried_by_an_administrator(line_client, line_app):
    post_webhook(line_client, body_of(text_event("住民票について", at=OPEN)))
    tasks.expand_pending()
    good_payload = _event().payload
    bad = _event()
    bad.payload = dict(bad.payload, message="broken")  # crashes processing every time
    db.session.commit()
    override_settings(line_app, LINE_MAX_EVENT_ATTEMPTS=2)

    run_worker(line_app)
    event = _event()
    assert (event.status, event.attempts) == (EventStatus.PENDING, 1)  # waiting for its retry
    event.next_attempt_at = event.received_at  # the back-off is over
    db.session.commit()
    run_worker(line_app)
    event = _event()
    assert (event.status, event.attempts) == (EventStatus.FAILED, 2)
    assert "エラー" in event.last_error and event.claimed_by is None

    # The command lists it, with the reason and no personal data.
    runner = line_app.test_cli_runner()
    result = runner.invoke(args=["queue", "failed", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [item["id"] for item in listed] == [f"line-event:{event.id}"]
    assert listed[0]["kind"] == "LINE受信イベント" and listed[0]["attempts"] == 2
    assert "AttributeError" in listed[0]["reason"]
    assert "住民票" not in result.output and event.chat_key not in result.output

    # The administrators' page lists it too, and 再試行 puts it back (audited).
    admin = new_staff("admin")
    sign_in(line_client, admin)
    page = line_client.get("/admin/queue").get_data(as_text=True)
    assert "処理に失敗したもの" in page and f"line-event:{event.id}" in page
    assert "LINE受信イベント" in page and "住民票" not in page and event.chat_key not in page
    # The cause is fixed (here the stored event is repaired, as a fix of the code would).
    event.payload = good_payload
    db.session.commit()
    response = line_client.post(f"/admin/queue/line-event:{event.id}/retry")
    assert response.status_code == 302
    assert _event().status == EventStatus.PENDING
    assert db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == "queue", AuditEvent.object_id == f"line-event:{event.id}"
        )
    )
    run_worker(line_app)
    assert _event().status == EventStatus.DONE
    page = line_client.get("/admin/queue").get_data(as_text=True)
    assert "処理に失敗したものはありません。" in page
    result = runner.invoke(args=["queue", "failed"])
    assert "処理に失敗したものはありません。" in result.output


def test_events_claimed_by_a_stopped_worker_are_taken_back_within_seconds(line_client, line_app):
    from datetime import timedelta

    from consult.models import Ticket
    from consult.services import queue
    from consult.timeutil import utcnow

    post_webhook(
        line_client, body_of(text_event("一通目", at=OPEN), text_event("二通目", at=OPEN + 1))
    )
    tasks.expand_pending()
    first = db.session.scalar(sa.select(LineEvent).order_by(LineEvent.timestamp_ms))
    # A worker claimed the chat's first event and was killed (its heartbeat stopped).
    first.status, first.claimed_by = EventStatus.PROCESSING, "host:1:killed"
    first.claimed_at = utcnow() - timedelta(seconds=2)
    first_id = first.id
    db.session.commit()
    run_worker(line_app)
    assert _count_done() == 0  # not yet: the claim is two seconds old

    db.session.expire_all()
    first = db.session.get(LineEvent, first_id)
    first.claimed_at = utcnow() - timedelta(seconds=queue.STALE_SECONDS + 1)
    db.session.commit()
    run_worker(line_app)
    assert _count_done() == 2  # taken back, then the rest of the chat in order
    assert len(db.session.scalars(sa.select(Ticket)).all()) == 1


def _count_done() -> int:
    db.session.expire_all()
    done = db.session.scalars(sa.select(LineEvent).where(LineEvent.status == EventStatus.DONE))
    count = len(done.all())
    db.session.commit()
    return count
