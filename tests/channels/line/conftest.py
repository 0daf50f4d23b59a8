"""LINE fixtures: the fake Messaging API, an app pointed at it, and signed webhook bodies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from flask import has_app_context

from consult.extensions import db
from tests.channels.line.fake_line import SECRET, TOKEN, sign, start_fake_line

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "line"
USER = "U" + "4af4980629" * 3 + "ab"  # a made-up LINE user id (33 characters)


@pytest.fixture
def fake_line():
    fake, server = start_fake_line()
    yield fake
    server.shutdown()


def line_settings(fake_line, **overrides) -> dict:
    """The settings of an app pointed at the fake Messaging API (a test may add its own)."""
    return {
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "LINE_API_HOST": fake_line.url,
        "LINE_PROCESS_AFTER_RESPONSE": False,
        "LINE_BURST_QUIET_MS": 0,  # a test's webhook is always "just now": no pacing here
        "PUBLIC_URL": "https://soudan.example.lg.jp",
        **overrides,
    }


@pytest.fixture
def line_app(app_factory, fake_line):
    app = app_factory(**line_settings(fake_line))
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def line_client(line_app):
    return line_app.test_client()


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


_ids = {"n": 0}


def event_id() -> str:
    _ids["n"] += 1
    return f"01TESTEVENT{_ids['n']:015d}"


def now_ms(offset_ms: int = 0) -> int:
    return int(time.time() * 1000) + offset_ms


def text_event(text: str, *, user: str = USER, at: int | None = None, **kw) -> dict:
    """A text message event built with LINE's own model classes (so required fields are there)."""
    from linebot.v3.webhooks import (
        DeliveryContext,
        MessageEvent,
        TextMessageContent,
        UserSource,
    )

    event = MessageEvent(
        source=UserSource(userId=user),
        timestamp=at or now_ms(),
        mode="active",
        webhookEventId=kw.get("event_id") or event_id(),
        deliveryContext=DeliveryContext(isRedelivery=kw.get("redelivery", False)),
        replyToken=kw.get("reply_token"),
        message=TextMessageContent(
            id=str(kw.get("message_id", "100001")), text=text, quoteToken="q"
        ),
    )
    return json.loads(event.to_json())


def follow_event(*, user: str = USER, at: int | None = None) -> dict:
    from linebot.v3.webhooks import DeliveryContext, FollowDetail, FollowEvent, UserSource

    event = FollowEvent(
        source=UserSource(userId=user),
        timestamp=at or now_ms(),
        mode="active",
        webhookEventId=event_id(),
        deliveryContext=DeliveryContext(isRedelivery=False),
        replyToken="follow-reply-token",
        follow=FollowDetail(isUnblocked=False),
    )
    return json.loads(event.to_json())


def body_of(*events: dict) -> str:
    return json.dumps({"destination": "U" + "0" * 32, "events": list(events)}, ensure_ascii=False)


def post_webhook(client, body: str, signature: str | None = "sign"):
    # The webhook writes on its own connection, as it does in production; the test's session
    # must not hold SQLite's write lock (BEGIN IMMEDIATE) meanwhile.
    if has_app_context():
        db.session.commit()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return client.post("/channels/line/webhook", data=body.encode("utf-8"), headers=headers)


def run_worker(app) -> None:
    """One worker round: LINE events and media, then the outbox."""
    from channels.line import tasks
    from consult.services import outbox

    tasks.worker_task()
    outbox.run_once()
    db.session.remove()


_staff = {"n": 0}


def new_staff(role: str = "consultant", **kw):
    """A member of staff in the LINE app's own database session (the shared make_staff
    fixture builds a second app, whose open transaction would lock SQLite here)."""
    from consult.services import staff as staff_service
    from tests.helpers import PASSWORD

    _staff["n"] += 1
    department_id = None
    if role == "officer":
        department_id = staff_service.create_department(
            None, code=f"line-dept{_staff['n']}", name=f"テスト課{_staff['n']}"
        ).id
    staff = staff_service.create_staff(
        None,
        login=f"line-{role}{_staff['n']}",
        full_name=kw.get("full_name", f"試験 太郎{_staff['n']}"),
        display_name=kw.get("display_name", "しけん / Shiken"),
        role=role,
        password=PASSWORD,
        department_id=department_id,
        branch_office_id=kw["branch_office"].id if kw.get("branch_office") else None,
    )
    db.session.commit()
    return staff
