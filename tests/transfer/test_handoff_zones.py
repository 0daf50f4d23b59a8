"""The external bodies' handoff link on the relay: the page is a copy the core sends, what the
external body does there is kept on the relay only as items for the core, which applies them
through the same services as on one server and audits each opening."""

from __future__ import annotations

import re

import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, Channel, OutboxMessage
from consult.services import citizens, tickets
from consult.services import staff as staff_service
from consult.services.actor import Actor
from consult.transfer.models import RelayCopy, TransferItem
from handoff import services
from handoff.models import HandoffState, Response
from tests.channels.line.conftest import new_staff
from tests.transfer.test_booking_zones import core_round
from tests.transfer.test_zones import count


def _external_handoff(response=Response.WRITTEN):
    consultant = Actor(new_staff("consultant"), "127.0.0.1")
    body = staff_service.create_department(
        None,
        code="kagawa-shohi",
        name="香川県消費生活センター",
        is_external=True,
        email="c@pref.example.jp",
    )
    citizen = citizens.create_citizen(
        consultant, citizens.CitizenInput(name="高松 一郎", phone="090-1234-5678")
    )
    ticket = tickets.create_ticket(
        consultant, channel=Channel.COUNTER, subject="架空請求", citizen=citizen
    )
    [handoff] = services.create(
        consultant,
        ticket,
        [
            services.Request(
                body.id, "架空請求のはがきについて事業者への確認をお願いします。", response
            )
        ],
    )
    db.session.commit()
    mail = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.body.contains("/x/handoff/"))
    )
    path = re.search(r"(/x/handoff/\S+)", mail.body).group(1)
    return consultant, handoff, ticket, path


def audits(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == action)
    )


def test_an_external_body_answers_on_the_relay_and_the_core_records_it(relay, core):
    _consultant, handoff, ticket, path = _external_handoff()
    handoff_id, number = handoff.id, ticket.number
    assert core.test_client().get(path).status_code == 404  # the core serves it no more
    assert requests.get(relay.url + path, timeout=10).status_code == 404  # not sent yet
    core_round()

    page = requests.get(relay.url + path, timeout=10)
    assert page.status_code == 200
    assert "架空請求のはがきについて" in page.text and "香川県消費生活センター" in page.text
    assert number in page.text and "090-1234-5678" in page.text
    assert "高松" not in page.text  # the name is never shared with an external body
    tampered = requests.get(relay.url + path[:-3] + "AAA", timeout=10)
    assert tampered.status_code == 404 and "架空請求" not in tampered.text

    refused = requests.post(relay.url + path, data={"record-author_name": "消費 太郎"}, timeout=10)
    assert refused.status_code == 422
    done = requests.post(
        relay.url + path,
        data={
            "record-author_name": "消費 太郎",
            "record-action": "事業者に連絡しました",
            "record-outcome": "請求を取り下げるとの回答",
        },
        timeout=10,
    )
    assert done.status_code == 200 and "送信しました" in done.text
    closed = requests.get(relay.url + path, timeout=10)
    assert "受付を終了しています" in closed.text and "090-1234-5678" not in closed.text
    with relay.context():
        # For the core: three uses of the link (a refused form keeps nothing, as on one
        # server) and the record.
        assert count(TransferItem) == 4

    core_round()
    db.session.expire_all()
    handoff = db.session.get(type(handoff), handoff_id)
    assert handoff.state == HandoffState.DONE
    assert "消費生活センター 消費 太郎" in (handoff.accepted_by_name or "")
    # Each use audited at the core, and each view of the contact (not the closed page's).
    assert audits("external_link_use") == 3 and audits("external_view_contact") == 2
    with relay.context():
        assert count(TransferItem) == 0
        # Closed at the core: the relay keeps no page (no summary, no phone) for the link.
        [copy] = db.session.scalars(
            sa.select(RelayCopy).where(RelayCopy.kind == "handoff.links")
        ).all()
        assert copy.data["page"]["active"] is False and copy.data["page"]["contact"] is None


def test_a_link_revoked_at_the_core_is_refused_on_the_relay(relay, core):
    consultant, handoff, _ticket, path = _external_handoff()
    core_round()
    assert requests.get(relay.url + path, timeout=10).status_code == 200
    services.revoke_links(consultant, handoff)
    db.session.commit()
    core_round()
    revoked = requests.get(relay.url + path, timeout=10)
    assert revoked.status_code == 410 and "無効になっています" in revoked.text
    assert "架空請求" not in revoked.text
    posted = requests.post(
        relay.url + path, data={"record-author_name": "x", "record-action": "y"}, timeout=10
    )
    assert posted.status_code == 410


def test_the_joint_session_is_answered_on_the_relay(relay, core):
    from datetime import datetime, time

    from consult.timeutil import TOKYO
    from handoff import joint
    from handoff.models import SessionAnswer, SessionMode
    from tests.channels.booking.test_specialist import weekday_ahead

    consultant, handoff, _ticket, path = _external_handoff(Response.JOINT)
    starts_at = datetime.combine(weekday_ahead(), time(14, 0), TOKYO)
    joint.schedule(consultant, handoff, starts_at=starts_at, minutes=60, mode=SessionMode.COUNTER)
    db.session.commit()
    handoff_id = handoff.id
    core_round()
    page = requests.get(relay.url + path, timeout=10)
    assert "合同相談のご案内" in page.text and "14:00〜15:00" in page.text
    ics = requests.get(relay.url + path + "/session.ics", timeout=10)
    assert ics.status_code == 200 and "BEGIN:VEVENT" in ics.text
    answered = requests.post(
        relay.url + path,
        data={"session-by_name": "消費 花子", "accept": "1", "session-note": ""},
        allow_redirects=False,
        timeout=10,
    )
    assert answered.status_code == 302
    core_round()
    db.session.expire_all()
    session = db.session.get(type(handoff), handoff_id).session
    assert (session.answer, session.answered_by_name) == (SessionAnswer.ACCEPTED, "消費 花子")
    # The relay's page shows the answer at the next round.
    core_round()
    assert "消費 花子" in requests.get(relay.url + path, timeout=10).text
