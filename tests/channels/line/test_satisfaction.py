"""The satisfaction question on LINE (issue 19): a quick reply when a LINE case closes, sent
through the outbox to the fake Messaging API; the tap comes back as a signed webhook body to
the real endpoint, is stored without any link to the citizen, and is taken out of the kept raw
body (which carries the LINE user id)."""

from __future__ import annotations

from urllib.parse import parse_qs

import sqlalchemy as sa

from channels.line.models import LineDelivery, LineEvent
from consult.extensions import db
from consult.models import EntryKind
from consult.services import tickets
from consult.services.actor import Actor
from consult.voice.models import SatisfactionAnswer, SatisfactionInvite
from tests.channels.line.conftest import (
    USER,
    body_of,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.channels.line.test_link_step import _line_tickets, _quick_replies, postback_event
from tests.channels.line.test_processing import OPEN


def _close_line_case(line_client, line_app):
    post_webhook(line_client, body_of(text_event("ごみの収集日を教えてください", at=OPEN)))
    run_worker(line_app)
    [ticket] = _line_tickets()
    staff = new_staff()
    tickets.close(Actor(staff, "127.0.0.1"), ticket, "収集日を案内しました。")
    db.session.commit()
    run_worker(line_app)
    return ticket


def test_closing_a_line_case_asks_once_and_a_tap_answers_anonymously(
    line_client, line_app, fake_line
):
    from linebot.v3.messaging import PushMessageRequest

    ticket = _close_line_case(line_client, line_app)
    question = fake_line.pushes[-1]
    assert "対応にご満足いただけましたか" in question.texts[0]
    # The payload is what LINE's own SDK model accepts.
    PushMessageRequest.from_dict(question.json)
    actions = _quick_replies(fake_line)
    assert [a["label"] for a in actions] == ["満足", "やや満足", "ふつう", "やや不満", "不満"]
    assert all(a["type"] == "postback" for a in actions)
    data = {a["label"]: a["data"] for a in actions}
    assert parse_qs(data["やや満足"])["s"] == ["4"]
    db.session.remove()
    ticket = _line_tickets()[0]
    assert any(
        e.kind == EntryKind.MESSAGE_OUT and "満足度のおたずね" in e.body for e in ticket.timeline
    )

    post_webhook(line_client, body_of(postback_event(data["やや満足"], OPEN + 60_000)))
    run_worker(line_app)
    assert "ご回答ありがとうございました" in fake_line.sent_texts()[-1]
    db.session.remove()
    [answer] = db.session.scalars(sa.select(SatisfactionAnswer)).all()
    assert (answer.channel, answer.score, answer.comment) == ("line", 4, None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionInvite)) == 0

    # The kept raw input no longer holds the score or the token next to the LINE user id.
    token = parse_qs(data["やや満足"])["t"][0]
    for body in db.session.scalars(sa.select(LineDelivery.body)):
        assert token not in body and "s=4" not in body
    for payload in db.session.scalars(
        sa.select(LineEvent.payload).where(LineEvent.event_type == "postback")
    ):
        assert payload["source"]["userId"] == USER
        assert payload["postback"]["data"] == "action=satisfaction"

    # A second tap (another button of the same message): refused, nothing more stored.
    post_webhook(line_client, body_of(postback_event(data["不満"], OPEN + 120_000)))
    run_worker(line_app)
    assert "回答済み" in fake_line.sent_texts()[-1]
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionAnswer)) == 1


def test_a_reopened_and_closed_line_case_is_not_asked_twice(line_client, line_app, fake_line):
    _close_line_case(line_client, line_app)
    asked = [t for t in fake_line.sent_texts() if "ご満足いただけましたか" in t]
    assert len(asked) == 1
    ticket = _line_tickets()[0]
    staff = new_staff()
    tickets.reopen(Actor(staff, "127.0.0.1"), ticket, "追加の質問")
    tickets.close(Actor(staff, "127.0.0.1"), ticket, "回答しました。")
    db.session.commit()
    run_worker(line_app)
    assert len([t for t in fake_line.sent_texts() if "ご満足いただけましたか" in t]) == 1


def test_a_forged_satisfaction_postback_stores_nothing(line_client, line_app, fake_line):
    post_webhook(
        line_client, body_of(postback_event("action=satisfaction&s=5&t=forged.token", OPEN))
    )
    run_worker(line_app)
    assert "回答済み" in fake_line.sent_texts()[-1]
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionAnswer)) == 0
