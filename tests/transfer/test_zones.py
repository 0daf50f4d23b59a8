"""The relay and the core as two servers with two databases, over real HTTP, signed."""

from __future__ import annotations

import json

import requests
import sqlalchemy as sa

from channels.line import tasks as line_tasks
from channels.line.models import LineDelivery, LineEvent
from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.services import outbox
from consult.transfer import client, signing
from consult.transfer.models import TransferItem, TransferReceived
from tests.channels.line.conftest import body_of, new_staff, text_event
from tests.channels.line.fake_line import sign
from tests.helpers import sign_in
from tests.transfer.conftest import KEY, settle


def send_line(relay, text: str, **kw) -> requests.Response:
    body = body_of(text_event(text, **kw))
    return requests.post(
        relay.url + "/channels/line/webhook",
        data=body.encode(),
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        timeout=10,
    )


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def core_round():
    """One round of the core's transfer task, then its LINE processing."""
    db.session.commit()
    report = client.run_round()
    settle()
    line_tasks.worker_task()
    db.session.commit()
    return report


def line_tickets() -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.LINE)))


def words(ticket: Ticket) -> list[str]:
    return [entry.body for entry in ticket.timeline if entry.kind == EntryKind.MESSAGE_IN]


def test_line_message_becomes_a_ticket_on_the_core_and_the_reply_leaves_through_the_relay(
    relay, core, fake_line
):
    assert send_line(relay, "国民健康保険の相談です").status_code == 200
    with relay.context():
        # Stored as it came, processed nowhere on the relay.
        assert count(LineDelivery) == 1
        assert count(LineEvent) == 0
        assert count(Ticket) == 0
    assert line_tickets() == []

    report = core_round()
    assert report.pulled == 1 and report.link_down is None
    [ticket] = line_tickets()
    assert words(ticket) == ["国民健康保険の相談です"]
    with relay.context():
        assert count(LineDelivery) == 0  # the relay keeps nothing once the core has it

    staff = new_staff(display_name="やまだ / Yamada")
    web = core.test_client()
    sign_in(web, staff)
    answer = web.post(
        f"/channels/line/tickets/{ticket.number}/reply", data={"body": "窓口は2階です。"}
    )
    assert answer.status_code == 302
    fake_line.requests.clear()
    outbox.run_once()  # the core's outbox hands the message to the transfer, not to LINE
    assert fake_line.requests == []
    assert core_round().pushed >= 1
    assert fake_line.requests == []  # the relay delivers at its own worker's round
    with relay.context():
        outbox.run_once()
    texts = [text for push in fake_line.pushes for text in push.texts]
    assert "［やまだ / Yamada］\n窓口は2階です。" in texts
    with relay.context():
        # Delivered (the reply, and the acknowledgement before it); outcomes wait for the core.
        statuses = set(db.session.scalars(sa.select(OutboxMessage.status)))
        assert statuses == {OutboxStatus.DELIVERED}
    core_round()  # the core takes the outcome and acknowledges it
    with relay.context():
        assert count(OutboxMessage) == 0  # the relay forgets the address and the words
    db.session.expire_all()
    assert count(TransferItem) == 0  # nothing waits on the core


def test_a_batch_replayed_changes_nothing(relay, core):
    assert send_line(relay, "一回だけ届くはず").status_code == 200
    with relay.context():
        from consult.transfer.services import outgoing

        batch = outgoing(100)
        db.session.commit()
    core_round()
    assert len(line_tickets()) == 1
    # The same items again (a lost acknowledgement, a replayed batch): nothing changes.
    from consult.transfer.services import receive

    result = receive(batch)
    db.session.commit()
    assert result.applied == 0 and result.accepted == [batch[0]["id"]]
    line_tasks.worker_task()
    db.session.commit()
    [ticket] = line_tickets()
    assert words(ticket) == ["一回だけ届くはず"]
    assert count(LineDelivery) == 1
    assert count(TransferReceived) == 1


def _signed_post(relay, path: str, data: dict, headers: dict | None = None):
    body = json.dumps(data).encode()
    signed = signing.sign_request(KEY, "POST", path, body)
    signed.update(headers or {})
    return requests.post(relay.url + path, data=body, headers=signed, timeout=10), signed


def test_the_relay_refuses_unsigned_wrongly_signed_stale_and_replayed_requests(relay, core):
    assert send_line(relay, "個人の相談内容").status_code == 200
    path = "/relay/v1/pull"
    unsigned = requests.post(relay.url + path, json={"limit": 10}, timeout=10)
    assert unsigned.status_code == 401
    assert "個人の相談内容" not in unsigned.text

    body = json.dumps({"limit": 10}).encode()
    wrong = signing.sign_request("another-key-" + "x" * 40, "POST", path, body)
    assert requests.post(relay.url + path, data=body, headers=wrong, timeout=10).status_code == 401

    import time

    stale = signing.sign_request(KEY, "POST", path, body, now=time.time() - 3600)
    assert requests.post(relay.url + path, data=body, headers=stale, timeout=10).status_code == 401

    first, headers = _signed_post(relay, path, {"limit": 10})
    assert first.status_code == 200
    assert "個人の相談内容" in first.content.decode()
    replayed = requests.post(relay.url + path, data=body, headers=headers, timeout=10)
    assert replayed.status_code == 401

    # A signed acknowledgement replayed, or one whose body was changed, deletes nothing.
    ack, ack_headers = _signed_post(relay, "/relay/v1/ack", {"ids": []})
    assert ack.status_code == 200
    forged = json.dumps({"ids": [first.json()["items"][0]["id"]]}).encode()
    assert (
        requests.post(
            relay.url + "/relay/v1/ack", data=forged, headers=ack_headers, timeout=10
        ).status_code
        == 401
    )
    with relay.context():
        assert count(LineDelivery) == 1


def test_a_link_down_for_a_while_loses_nothing(relay, core, fake_line):
    port = int(relay.url.rsplit(":", 1)[1])
    relay.stop()  # the link is down: the core's rounds fail and keep everything
    report = core_round()
    assert report.link_down
    relay.start(port)
    for n in range(3):
        assert (
            send_line(relay, f"回線が切れていた間の相談{n}", user="U" + f"{n:032d}").status_code
            == 200
        )
    relay.stop()
    assert core_round().link_down
    assert line_tickets() == []
    relay.start(port)
    core_round()
    assert sorted(words(t)[0] for t in line_tickets()) == [
        f"回線が切れていた間の相談{n}" for n in range(3)
    ]
    with relay.context():
        assert count(LineDelivery) == 0


def test_staff_pages_are_absent_on_the_relay_and_public_ones_on_the_core(relay, core):
    for path in (
        "/login",
        "/tickets",
        "/admin/",
        "/today",
        "/booking/staff/day",
        "/api/v1/tickets",
    ):
        assert requests.get(relay.url + path, timeout=10, allow_redirects=False).status_code == 404
    assert requests.get(relay.url + "/booking/", timeout=10).status_code == 200
    web = core.test_client()
    assert web.get("/booking/").status_code == 404
    assert web.get("/faq").status_code == 404
    assert web.post("/channels/line/webhook", data=b"{}").status_code in (404, 405)
    assert web.post("/relay/v1/pull", data=b"{}").status_code == 404
    assert web.get("/login").status_code == 200


MAIL = (
    "From: =?UTF-8?B?5bGx55SwIOiKseWtkA==?= <hanako@example.jp>\r\n"
    "To: soudan@example.lg.jp\r\n"
    "Subject: =?UTF-8?B?5L+d6IKy5ZyS44Gu55u46KuH?=\r\n"
    "Message-ID: <zones-mail-1@example.jp>\r\n"
    "Date: Tue, 24 Nov 2026 10:00:00 +0900\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "保育園の入園について相談したいです。\r\n"
).encode()


def test_mail_received_by_the_relay_becomes_a_ticket_on_the_core(relay, core):
    from channels.email import tasks as mail_tasks
    from channels.email.models import InboundMail

    with relay.context():
        outcome = mail_tasks.ingest(MAIL, source="stdin")  # `madoguchi mail ingest`
        assert outcome.ticket is None  # stored only: nothing is parsed in the internet zone
        assert count(InboundMail) == 1
        assert count(Ticket) == 0
    core_round()
    mail_tasks.process_pending()
    db.session.commit()
    [ticket] = db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.EMAIL)).all()
    assert any("保育園の入園" in (e.body or "") for e in ticket.timeline)
    with relay.context():
        assert count(InboundMail) == 0  # taken: row and bytes gone from the relay
        data = relay.app.config["MADOGUCHI"]["DATA_DIR"]
        from pathlib import Path

        assert not list((Path(data) / "raw").rglob("*.eml"))
    # The MTA delivering the same mail again to the relay: one ticket still.
    with relay.context():
        mail_tasks.ingest(MAIL, source="stdin")
    core_round()
    mail_tasks.process_pending()
    db.session.commit()
    assert count(InboundMail) == 1
