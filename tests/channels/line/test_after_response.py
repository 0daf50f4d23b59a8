"""Processing after the response, with the app behind a real HTTP server, on both databases.

Regression: on PostgreSQL the executemany INSERT .. ON CONFLICT reported rowcount -1, so the
webhook believed nothing was stored and never started the processing after its response.
"""

from __future__ import annotations

import time

import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from channels.line import tasks
from channels.line.models import EventStatus, LineEvent
from consult.extensions import db
from consult.models import EntryKind, TimelineEntry
from consult.settings import override as override_settings
from tests.channels.line.conftest import body_of, post_webhook, text_event
from tests.channels.line.fake_line import SECRET, TOKEN, sign
from tests.helpers import serve_in_thread


def test_a_redelivered_event_is_expanded_once(line_client):
    first, second = text_event("一件目"), text_event("二件目")
    assert post_webhook(line_client, body_of(first, second)).status_code == 200
    assert post_webhook(line_client, body_of(second, text_event("三件目"))).status_code == 200
    db.session.remove()
    assert tasks.expand_pending() == 2
    assert tasks.expand_pending() == 0  # nothing left, nothing expanded twice
    texts = [
        e.payload["message"]["text"]
        for e in db.session.scalars(sa.select(LineEvent).order_by(LineEvent.id))
    ]
    assert texts == ["一件目", "二件目", "三件目"]  # the redelivered one is skipped


def test_events_are_processed_after_the_response_under_a_real_server(app_factory, fake_line):
    app = app_factory(
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_HOST=fake_line.url,
        LINE_PROCESS_AFTER_RESPONSE=True,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_port}/channels/line/webhook"
        wanted = 0
        for n in range(3):
            user = f"U{n:032x}"
            events = [text_event(f"相談 {n}-{i}", user=user) for i in range(3)]
            body = body_of(*events)
            response = requests.post(
                url,
                data=body.encode("utf-8"),
                headers={"X-Line-Signature": sign(body), "Content-Type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 200
            wanted += len(events)
        deadline = time.monotonic() + 30
        count = 0
        with app.app_context():
            while time.monotonic() < deadline:
                count = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(TimelineEntry)
                    .where(TimelineEntry.kind == EntryKind.MESSAGE_IN)
                )
                db.session.remove()
                if count >= wanted:
                    break
                time.sleep(0.1)
            assert count == wanted  # no worker ran: the kick after each response did it
            statuses = set(db.session.scalars(sa.select(LineEvent.status)))
            assert statuses == {EventStatus.DONE}
            db.session.remove()
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_processing_waits_for_a_burst_but_never_starves(line_client, line_app):
    """While bodies keep arriving, processing steps aside, at most LINE_BURST_MAX_DEFER_MS."""
    override_settings(line_app, LINE_BURST_QUIET_MS=60_000, LINE_BURST_MAX_DEFER_MS=300)
    assert post_webhook(line_client, body_of(text_event("混雑時の相談"))).status_code == 200
    db.session.remove()
    started = time.monotonic()
    assert tasks.process_pending() == 1  # processed although the "burst" never ends
    assert time.monotonic() - started >= 0.3
    override_settings(line_app, LINE_BURST_QUIET_MS=0)
    assert post_webhook(line_client, body_of(text_event("静かな時の相談"))).status_code == 200
    db.session.remove()
    assert tasks.process_pending() == 1
    db.session.remove()
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TimelineEntry)
        .where(TimelineEntry.kind == EntryKind.MESSAGE_IN)
    )
    assert count == 2


def test_a_chunked_body_over_the_limit_gets_413_under_a_real_server(app_factory, fake_line):
    """No Content-Length to check first: the limit is enforced while reading."""
    import http.client

    from channels.line.intake import MAX_BODY
    from channels.line.models import LineDelivery

    app = app_factory(
        LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_HOST=fake_line.url
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = serve_in_thread(server)
    try:
        body = body_of(text_event("あ" * (MAX_BODY // 3 + 10))).encode("utf-8")
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        connection.request(
            "POST",
            "/channels/line/webhook",
            body=chunks,
            headers={"X-Line-Signature": sign(body.decode("utf-8"))},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 413
        connection.close()
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 0
            db.session.remove()
    finally:
        server.shutdown()
        thread.join(timeout=10)
