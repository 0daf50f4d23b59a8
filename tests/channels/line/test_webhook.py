"""The webhook: signature, storage of the raw body, deduplication, ignored events, 503."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa

from channels.line import tasks
from channels.line.models import EventStatus, LineDelivery, LineEvent
from consult.extensions import db
from consult.models import Ticket
from tests.channels.line.conftest import (
    body_of,
    fixture_text,
    post_webhook,
    text_event,
)
from tests.channels.line.fake_line import sign


def _expand():
    """What the worker does first: the stored bodies become event rows."""
    db.session.remove()
    while tasks.expand_pending():
        pass
    db.session.remove()


def _counts():
    db.session.remove()
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)),
        db.session.scalar(sa.select(sa.func.count()).select_from(LineEvent)),
    )


def test_valid_signature_stores_raw_body_and_answers_200(line_client):
    body = body_of(text_event("<script>alert(1)</script> 住民票について"))
    response = post_webhook(line_client, body)
    assert response.status_code == 200
    db.session.remove()
    delivery = db.session.scalar(sa.select(LineDelivery))
    assert delivery.body == body  # exactly what LINE sent
    assert delivery.expanded_at is None
    assert _counts() == (1, 0)  # the webhook wrote the body only
    _expand()
    delivery = db.session.scalar(sa.select(LineDelivery))
    assert delivery.expanded_at is not None and delivery.event_count == 1
    event = db.session.scalar(sa.select(LineEvent))
    assert event.status == EventStatus.PENDING and event.event_type == "message"
    # Answered before processing: no ticket yet.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0


def test_tampered_body_and_missing_header_get_400_and_store_nothing(line_client):
    body = body_of(text_event("こんにちは"))
    tampered = body.replace("こんにちは", "さようなら")
    assert post_webhook(line_client, tampered, signature=sign(body)).status_code == 400
    assert post_webhook(line_client, body, signature=None).status_code == 400
    assert post_webhook(line_client, body, signature=sign(body, "wrong-secret")).status_code == 400
    assert _counts() == (0, 0)


def test_verification_ping_with_no_events_gets_200(line_client):
    body = json.dumps({"destination": "U" + "0" * 32, "events": []})
    assert post_webhook(line_client, body).status_code == 200
    _expand()
    assert _counts() == (1, 0)  # kept like any signed body; nothing to process


def test_redelivered_event_is_stored_once(line_client):
    event = text_event("同じイベント")
    assert post_webhook(line_client, body_of(event)).status_code == 200
    again = dict(event, deliveryContext={"isRedelivery": True})
    for _ in range(4):
        assert post_webhook(line_client, body_of(again)).status_code == 200
    _expand()
    deliveries, events = _counts()
    assert deliveries == 5 and events == 1  # every body kept, the event once


def test_java_redelivery_fixture_is_stored_as_redelivery(line_client):
    data = json.loads(fixture_text("java-webhook-redelivery.json"))
    # SDK 3.27 needs quoteToken on text messages; the fixture predates it.
    data["events"][0]["message"]["quoteToken"] = "q"
    body = json.dumps(data)
    assert post_webhook(line_client, body).status_code == 200
    _expand()
    event = db.session.scalar(sa.select(LineEvent))
    assert event.webhook_event_id == "01G2KZKG2DS765NMRH3GZFD8AP"
    assert event.is_redelivery is True and event.status == EventStatus.PENDING


def test_unknown_event_types_are_ignored_and_logged(line_client, caplog):
    body = fixture_text("java-unknown.json")  # the exact bytes of LINE's fixture
    caplog.set_level(logging.INFO, logger="madoguchi.line")
    assert post_webhook(line_client, body).status_code == 200
    _expand()
    statuses = {e.event_type: e.status for e in db.session.scalars(sa.select(LineEvent))}
    assert statuses and all(s == EventStatus.IGNORED for s in statuses.values())
    assert "line event ignored" in caplog.text


def test_python_sdk_fixture_all_event_types(line_client, line_app):
    """LINE's 28-event body: known user events are kept, groups, rooms and unknown ignored."""
    data = json.loads(fixture_text("python-webhook.v3.json"))
    for n, event in enumerate(data["events"]):
        event["webhookEventId"] = f"fixture-{n:02d}"  # the fixture reuses one id for all
    body = json.dumps(data)
    assert post_webhook(line_client, body).status_code == 200
    _expand()
    rows = list(db.session.scalars(sa.select(LineEvent).order_by(LineEvent.id)))
    assert len(rows) == 28
    pending = [r.event_type for r in rows if r.status == EventStatus.PENDING]
    assert "follow" in pending and "unfollow" in pending and "postback" in pending
    ignored = {r.event_type for r in rows if r.status == EventStatus.IGNORED}
    assert {"join", "leave", "memberJoined", "undefined"} <= ignored


def test_not_configured_answers_503(app_factory):
    app = app_factory()  # no secret, no token
    with app.app_context():
        client = app.test_client()
        body = body_of(text_event("こんにちは"))
        response = post_webhook(client, body)
        assert response.status_code == 503
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 0
        db.session.remove()


def test_webhook_needs_no_csrf_token(app_factory, fake_line):
    from tests.channels.line.fake_line import SECRET, TOKEN

    app = app_factory(
        WTF_CSRF_ENABLED=True,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_HOST=fake_line.url,
        LINE_PROCESS_AFTER_RESPONSE=False,
    )
    with app.app_context():
        response = post_webhook(app.test_client(), body_of(text_event("CSRFなし")))
        assert response.status_code == 200
        db.session.remove()


def test_a_failed_expansion_loses_nothing_and_is_retried(line_client, monkeypatch):
    body = body_of(text_event("消えてはいけない相談"))
    assert post_webhook(line_client, body).status_code == 200

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "insert_events", broken)
    db.session.remove()
    try:
        tasks.expand_pending()
    except RuntimeError:
        db.session.rollback()
    monkeypatch.undo()
    db.session.remove()
    delivery = db.session.scalar(sa.select(LineDelivery))
    assert delivery.expanded_at is None  # still waiting, body intact
    _expand()
    [event] = db.session.scalars(sa.select(LineEvent))
    assert event.payload["message"]["text"] == "消えてはいけない相談"


def test_odd_events_in_a_signed_body_do_not_block_the_others(line_client):
    good = text_event("読める相談")
    odd_time = dict(text_event("時刻が読めない"), timestamp="yesterday")
    body = json.dumps({"destination": "U" + "0" * 32, "events": ["not an object", odd_time, good]})
    assert post_webhook(line_client, body).status_code == 200
    _expand()
    texts = {e.payload["message"]["text"]: e for e in db.session.scalars(sa.select(LineEvent))}
    assert set(texts) == {"読める相談", "時刻が読めない"}


def test_a_signed_body_that_is_not_a_webhook_is_kept_and_processed_as_empty(line_client, caplog):
    caplog.set_level(logging.WARNING, logger="madoguchi.line")
    for body in ("[1, 2]", '{"events": "none"}', "not json"):
        assert post_webhook(line_client, body).status_code == 200, body
    _expand()
    assert _counts() == (3, 0)
    assert not db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LineDelivery)
        .where(LineDelivery.expanded_at.is_(None))
    )
    assert "without an events list" in caplog.text


def test_webhook_answers_only_post(line_client):
    response = line_client.get("/channels/line/webhook")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert _counts() == (0, 0)


def test_oversized_or_undecodable_body_is_refused_and_nothing_stored(line_client):
    huge = body_of(text_event("あ" * (1024 * 1024)))
    assert post_webhook(line_client, huge).status_code == 413
    latin = body_of(text_event("相談")).encode("shift_jis")
    response = line_client.post(
        "/channels/line/webhook",
        data=latin,
        headers={"X-Line-Signature": sign(latin.decode("latin-1"))},
    )
    assert response.status_code == 400
    assert _counts() == (0, 0)


def test_a_body_that_cannot_be_stored_gets_500_and_stays_out_of_the_log(
    line_client, line_app, monkeypatch, caplog
):
    """LINE is told the delivery failed (it redelivers); the citizen's words are not logged."""
    from channels.line import intake

    def refuse(self, body):
        raise RuntimeError("disk full")

    monkeypatch.setattr(intake.WebhookIntake, "_store", refuse)
    caplog.set_level(logging.INFO, logger="madoguchi.line")
    response = post_webhook(line_client, body_of(text_event("秘密の相談内容")))
    assert response.status_code == 500
    assert "could not be stored" in caplog.text and "秘密の相談内容" not in caplog.text
    assert _counts() == (0, 0)
