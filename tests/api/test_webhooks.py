"""Webhooks out to a real HTTP receiver on 127.0.0.1: signed, retried after a 500, stopped when
revoked, and personal data only for hooks that may have it."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from api import webhooks
from api.models import ApiWebhookAttempt, ApiWebhookDelivery, DeliveryStatus
from consult import worker
from consult.extensions import db
from consult.services.actor import SYSTEM
from consult.timeutil import utcnow
from tests.helpers import serve_in_thread


class Receiver:
    """An HTTP server that records each POST and answers with the next planned status."""

    def __init__(self):
        self.received: list[dict] = []
        self.plan: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.plan.pop(0) if receiver.plan else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = serve_in_thread(self.server)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What the README tells a receiver to do."""
    timestamp = headers["X-Madoguchi-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Madoguchi-Signature"])


def deliver(app):
    """One round of the worker's `webhooks` lane, as `madoguchi worker --lane webhooks` runs it."""
    lanes = worker.tasks_by_lane(app, {"webhooks"})
    assert [task.name for task in lanes["webhooks"]] == ["api.webhooks"]
    return worker.run_once(app, {"webhooks"})["api.webhooks"]


def make_due_now():
    db.session.execute(sa.update(ApiWebhookDelivery).values(next_attempt_at=utcnow()))
    db.session.commit()


def test_signed_deliveries_of_the_events_asked_for(app, receiver, make_ticket):
    _hook, secret = webhooks.create_hook(
        SYSTEM, name="福祉システム", url=receiver.url, events=["ticket.created", "ticket.closed"]
    )
    db.session.commit()
    ticket = make_ticket(subject="山田さんの相談")
    from consult.services import tickets

    tickets.change_status(SYSTEM, ticket, "in_progress")  # not asked for
    tickets.close(SYSTEM, ticket, "案内しました")
    db.session.commit()
    assert deliver(app) == {"delivered": 2}
    events = [r["headers"]["X-Madoguchi-Event"] for r in receiver.received]
    assert events == ["ticket.created", "ticket.closed"]
    for item in receiver.received:
        assert verify(secret, item["headers"], item["body"])
        assert not verify(secret, item["headers"], item["body"] + b" ")
        payload = json.loads(item["body"])
        assert payload["ticket"]["number"] == ticket.number
        assert "subject" not in payload["ticket"]  # no personal-data scope
    # Delivered bodies are not kept; the log keeps the attempts.
    rows = db.session.scalars(sa.select(ApiWebhookDelivery)).all()
    assert all(r.body is None and r.status == DeliveryStatus.DELIVERED for r in rows)
    assert [a.status_code for a in db.session.scalars(sa.select(ApiWebhookAttempt))] == [204, 204]


def test_personal_data_only_to_a_hook_with_that_scope(app, receiver, make_ticket):
    webhooks.create_hook(
        SYSTEM, name="個人情報あり", url=receiver.url, events=["ticket.created"], personal=True
    )
    db.session.commit()
    make_ticket(subject="相談の件名")
    deliver(app)
    assert json.loads(receiver.received[0]["body"])["ticket"]["subject"] == "相談の件名"


def test_a_protected_persons_whereabouts_never_reach_a_hook(app, receiver, make_staff):
    """支援措置: a LINE chat's first message becomes the subject; a hook with the personal-data
    scope gets the subject and the name, never the address or the number it may hold."""
    from consult.models import Channel
    from consult.services import citizens, protection, tickets
    from consult.services.actor import Actor

    person = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="鈴木 静香", phone="090-5555-7777")
    )
    person.address = "香川県高松市紫雲町9番9号"
    protection.protect(Actor(make_staff("supervisor")), person, "DV等支援措置の申出")
    webhooks.create_hook(
        SYSTEM, name="個人情報あり", url=receiver.url, events=["ticket.created"], personal=True
    )
    db.session.commit()
    tickets.create_ticket(
        SYSTEM,
        channel=Channel.LINE,
        subject="LINE：香川県高松市紫雲町9番9号に越しました 09055557777",
        citizen=person,
    )
    db.session.commit()
    deliver(app)
    sent = json.loads(receiver.received[0]["body"])["ticket"]
    assert sent["citizen_name"] == "鈴木 静香"
    assert sent["subject"] == "LINE：［非表示］に越しました ［非表示］"


def test_a_500_is_retried_after_the_back_off(app, receiver, make_ticket):
    webhooks.create_hook(SYSTEM, name="不調", url=receiver.url, events=["ticket.created"])
    db.session.commit()
    receiver.plan = [500]
    make_ticket()
    assert deliver(app) == {"retry": 1}
    row = db.session.scalars(sa.select(ApiWebhookDelivery)).one()
    assert row.status == DeliveryStatus.PENDING and row.last_error == "HTTP 500"
    assert row.next_attempt_at > utcnow() + timedelta(seconds=20)  # the queue's back-off
    assert deliver(app) == {}  # not due yet
    make_due_now()
    assert deliver(app) == {"delivered": 1}
    assert len(receiver.received) == 2
    first, second = receiver.received
    assert first["body"] == second["body"]  # the same event, resent
    codes = [a.status_code for a in db.session.scalars(sa.select(ApiWebhookAttempt))]
    assert codes == [500, 204]


def test_given_up_after_the_maximum_and_listed_for_administrators(app, receiver, make_ticket):
    from consult.services import queue
    from consult.settings import override

    override(app, API_WEBHOOK_MAX_ATTEMPTS=2)
    webhooks.create_hook(SYSTEM, name="停止中", url=receiver.url, events=["ticket.created"])
    db.session.commit()
    receiver.plan = [503, 503]
    make_ticket()
    deliver(app)
    make_due_now()
    assert deliver(app) == {"failed": 1}
    failed = queue.failed_items()
    assert [item.label for item in failed] == ["Webhook送信"]
    assert "停止中" in failed[0].description


def test_a_revoked_hook_gets_nothing_more(app, receiver, make_ticket):
    hook, _ = webhooks.create_hook(SYSTEM, name="解約", url=receiver.url, events=["ticket.created"])
    db.session.commit()
    make_ticket()
    deliver(app)
    receiver.plan = [500]
    make_ticket()
    deliver(app)  # fails once, waits for a retry
    webhooks.revoke_hook(SYSTEM, hook.id)
    db.session.commit()
    make_ticket()
    make_due_now()
    assert deliver(app) == {}
    assert len(receiver.received) == 2
    statuses = [
        r.status
        for r in db.session.scalars(sa.select(ApiWebhookDelivery).order_by(ApiWebhookDelivery.id))
    ]
    assert statuses == [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]


def test_unreachable_receiver_is_a_retry_not_a_crash(app, make_ticket):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhooks.create_hook(
        SYSTEM, name="不通", url=f"http://127.0.0.1:{port}/", events=["ticket.created"]
    )
    db.session.commit()
    make_ticket()
    assert deliver(app) == {"retry": 1}
    attempt = db.session.scalars(sa.select(ApiWebhookAttempt)).one()
    assert attempt.status_code is None and attempt.error


def test_handoff_requested_and_answered(app, receiver, make_ticket, make_department, make_staff):
    from consult.services.actor import Actor
    from handoff import services as handoff_services
    from handoff.models import Response

    webhooks.create_hook(
        SYSTEM,
        name="担当課システム",
        url=receiver.url,
        events=["handoff.requested", "handoff.answered"],
    )
    db.session.commit()
    department = make_department()
    officer = make_staff("officer", department=department)
    ticket = make_ticket()
    [handoff] = handoff_services.create(
        Actor(make_staff("consultant")),
        ticket,
        [handoff_services.Request(department.id, "折り返しをお願いします。", Response.CALLBACK)],
    )
    db.session.commit()
    handoff_services.add_information(Actor(make_staff("consultant")), handoff, "追加の情報です。")
    db.session.commit()
    handoff_services.accept(Actor(officer), handoff)
    handoff_services.finish(
        Actor(officer), handoff, handoff_services.Record(action="電話で説明", outcome="解決")
    )
    db.session.commit()
    deliver(app)
    payloads = [json.loads(item["body"]) for item in receiver.received]
    assert [p["event"] for p in payloads] == ["handoff.requested", "handoff.answered"]
    assert payloads[0]["handoff"] == {"id": handoff.id, "department_id": department.id}


def test_status_changed_from_the_desk_and_the_api(
    app, client, receiver, login_as, make_ticket, make_token
):
    """A hook subscribed to ticket.status_changed gets a signed body saying from what to what,
    whether the change was made on the desk's page or through the API; a hook that asked only
    for ticket.created gets none of it."""
    _hook, secret = webhooks.create_hook(
        SYSTEM, name="状態連携", url=receiver.url, events=["ticket.status_changed"]
    )
    webhooks.create_hook(SYSTEM, name="登録だけ", url=receiver.url, events=["ticket.created"])
    db.session.commit()
    ticket = make_ticket(subject="国民健康保険の手続き")
    deliver(app)
    receiver.received.clear()  # the other hook's ticket.created

    login_as("consultant")
    answer = client.post(
        f"/tickets/{ticket.number}/status",
        data={"status": "awaiting_reply", "reason": "書類の提出を待っています。"},
        follow_redirects=True,
    )
    assert "状態を変更しました。" in answer.get_data(as_text=True)
    api_answer = client.post(
        f"/api/v1/tickets/{ticket.number}/status",
        json={"status": "resolved"},
        headers=make_token(["tickets:write"]),
    )
    assert api_answer.status_code == 200, api_answer.get_json()
    assert deliver(app) == {"delivered": 2}

    assert [r["headers"]["X-Madoguchi-Event"] for r in receiver.received] == [
        "ticket.status_changed",
        "ticket.status_changed",
    ]
    payloads = []
    for item in receiver.received:
        assert verify(secret, item["headers"], item["body"])
        payloads.append(json.loads(item["body"]))
    assert [(p["ticket"]["number"], p["change"]) for p in payloads] == [
        (ticket.number, {"from": "received", "to": "awaiting_reply"}),
        (ticket.number, {"from": "awaiting_reply", "to": "resolved"}),
    ]
    assert [p["ticket"]["status"] for p in payloads] == ["awaiting_reply", "resolved"]
    assert all("subject" not in p["ticket"] for p in payloads)  # no personal-data scope
