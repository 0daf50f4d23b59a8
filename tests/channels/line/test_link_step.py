"""A citizen's LINE message is always recorded; linking is an explicit step (issue 14, item 1).

Every message here is a real webhook body, signed, through the real endpoint; answers go to
the fake Messaging API, where what LINE would show the citizen (texts, quick replies) is read.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from channels.line.models import LineContact
from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from consult.services import citizens, tickets
from consult.services.actor import SYSTEM
from tests.channels.line.conftest import (
    USER,
    body_of,
    event_id,
    follow_event,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.channels.line.test_processing import OPEN
from tests.helpers import sign_in

LOOKS_LIKE_A_CODE = [
    "請求書のお客様番号 2025-123456 、請求額は 123456 円でした。",
    "0120-555555 内線 333333",
]


def postback_event(data: str, at: int) -> dict:
    return {
        "type": "postback",
        "mode": "active",
        "timestamp": at,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"rt-{at}",
        "postback": {"data": data},
    }


def _send(line_client, line_app, *events) -> None:
    post_webhook(line_client, body_of(*events))
    run_worker(line_app)


def _line_tickets() -> list[Ticket]:
    db.session.remove()
    return list(
        db.session.scalars(
            sa.select(Ticket).where(Ticket.channel == Channel.LINE).order_by(Ticket.id)
        )
    )


def _received(ticket: Ticket) -> list[str]:
    return [e.body for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN]


def _contact() -> LineContact:
    db.session.remove()
    return db.session.scalar(sa.select(LineContact))


def _quick_replies(fake_line) -> list[dict]:
    """The quick-reply buttons of the last message LINE was asked to show."""
    requests = fake_line.pushes + fake_line.replies
    last = max(requests, key=fake_line.requests.index)
    message = last.json["messages"][-1]
    return [item["action"] for item in (message.get("quickReply") or {}).get("items", [])]


def _counter_ticket_with_code(line_client) -> tuple[str, str, int]:
    citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="高松 花子"))
    counter = tickets.create_ticket(
        SYSTEM, channel=Channel.COUNTER, subject="窓口での相談", citizen=citizen
    )
    db.session.commit()
    number, citizen_id = counter.number, citizen.id
    sign_in(line_client, new_staff())
    page = line_client.post(f"/channels/line/tickets/{number}/link-code").get_data(as_text=True)
    code = re.search(r'id="link-code">(\d{6})<', page).group(1)
    # What the consultant reads out tells the citizen to tap the button first.
    assert "「相談番号と連携する」" in page
    db.session.remove()
    return number, code, citizen_id


@pytest.mark.parametrize("text", LOOKS_LIKE_A_CODE)
def test_a_message_that_looks_like_a_link_code_is_recorded_as_a_consultation(
    line_client, line_app, fake_line, text
):
    _send(line_client, line_app, text_event(text, at=OPEN))
    [ticket] = _line_tickets()
    assert _received(ticket) == [text]
    sent = fake_line.sent_texts()
    assert not any("正しくない" in s for s in sent)
    assert f"相談番号 {ticket.number}" in sent[-1]  # the usual acknowledgement
    assert _contact().citizen_id is None


def test_a_number_and_code_sent_without_the_step_link_nothing(line_client, line_app, fake_line):
    number, code, _citizen_id = _counter_ticket_with_code(line_client)
    _send(line_client, line_app, text_event(f"{number} {code}", at=OPEN))
    [ticket] = _line_tickets()
    assert _received(ticket) == [f"{number} {code}"]
    assert _contact().citizen_id is None
    assert not any("連携が完了" in s or "正しくない" in s for s in fake_line.sent_texts())


def test_the_greeting_offers_the_link_step_as_a_quick_reply(line_client, line_app, fake_line):
    _send(line_client, line_app, follow_event(at=OPEN))
    [greeting] = fake_line.sent_texts()
    assert "「相談番号と連携する」" in greeting
    [action] = _quick_replies(fake_line)
    assert action["type"] == "postback" and action["label"] == "相談番号と連携する"
    assert action["data"] == "action=link"


def test_linking_through_the_explicit_step(line_client, line_app, fake_line):
    number, code, citizen_id = _counter_ticket_with_code(line_client)
    # The citizen taps 「相談番号と連携する」 and is asked for the number and the code.
    _send(line_client, line_app, postback_event("action=link", OPEN))
    assert "相談番号と6桁のコード" in fake_line.sent_texts()[-1]
    assert _line_tickets() == []  # a tap opens no ticket
    # A wrong code: refused, nothing linked, the message is on the citizen's ticket.
    wrong = "000000" if code != "000000" else "111111"
    _send(line_client, line_app, text_event(f"{number} {wrong}", at=OPEN + 1))
    assert "正しくない" in fake_line.sent_texts()[-1]
    assert [a["data"] for a in _quick_replies(fake_line)] == ["action=link"]
    assert _contact().citizen_id is None
    [ticket] = _line_tickets()
    assert _received(ticket) == [f"{number} {wrong}"]
    # The step again, with full-width digits as a phone keyboard may send them.
    _send(line_client, line_app, postback_event("action=link", OPEN + 2))
    fullwidth = f"{number} {code}".translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    _send(line_client, line_app, text_event(fullwidth, at=OPEN + 3))
    assert _contact().citizen_id == citizen_id
    assert "連携が完了しました" in fake_line.sent_texts()[-1]
    [ticket] = _line_tickets()
    assert _received(ticket) == [f"{number} {wrong}", fullwidth]
    assert ticket.citizen_id == citizen_id
    assert any(e.kind == EntryKind.CITIZEN_LINK for e in ticket.timeline)
    # The code works once.
    _send(line_client, line_app, postback_event("action=link", OPEN + 4))
    _send(line_client, line_app, text_event(f"{number} {code}", at=OPEN + 5))
    assert "正しくない" in fake_line.sent_texts()[-1]
    # A consultation after the step is just a consultation, and so is anything after it.
    _send(line_client, line_app, postback_event("action=link", OPEN + 6))
    _send(line_client, line_app, text_event("引っ越しの手続き", at=OPEN + 7))
    _send(line_client, line_app, text_event(LOOKS_LIKE_A_CODE[1], at=OPEN + 8))
    assert not any("正しくない" in s for s in fake_line.sent_texts()[-2:])
    [ticket] = _line_tickets()
    assert _received(ticket)[-2:] == ["引っ越しの手続き", LOOKS_LIKE_A_CODE[1]]


def test_the_step_lapses_after_thirty_minutes(line_client, line_app, fake_line):
    number, code, _citizen_id = _counter_ticket_with_code(line_client)
    _send(line_client, line_app, postback_event("action=link", OPEN))
    late = OPEN + 31 * 60 * 1000
    _send(line_client, line_app, text_event(f"{number} {code}", at=late))
    assert _contact().citizen_id is None
    [ticket] = _line_tickets()
    assert _received(ticket) == [f"{number} {code}"]
