"""Out of hours, a LINE message that clearly matches a public FAQ entry gets its link."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from consult.services.actor import Actor
from consult.timeline import Automatic
from consult.timeutil import TOKYO
from tests.channels.line.conftest import (
    body_of,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)

NIGHT = int(datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO).timestamp() * 1000)  # Tuesday 22:00
LATER = NIGHT + 60_000
DAY = int(datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO).timestamp() * 1000)  # Wednesday 10:00


def publish(question: str, answer: str, keywords: str = ""):
    from faq import services

    author = Actor(new_staff("consultant"), "127.0.0.1")
    approver = Actor(new_staff("supervisor"), "127.0.0.1")
    entry = services.create_entry(
        author, question=question, answer=answer, keywords=keywords, visibility="public"
    )
    services.submit(author, entry)
    services.approve(approver, entry)
    db.session.commit()
    services.index().sync()
    return entry


def line_tickets() -> list[Ticket]:
    db.session.remove()
    return list(
        db.session.scalars(
            sa.select(Ticket).where(Ticket.channel == Channel.LINE).order_by(Ticket.id)
        )
    )


def faq_answers(ticket: Ticket):
    return [
        e
        for e in ticket.timeline
        if e.kind == EntryKind.MESSAGE_OUT and e.details.automatic == Automatic.FAQ
    ]


def test_a_clear_match_at_night_gets_the_entry_link_once(line_client, line_app, fake_line):
    entry_id = publish(
        "粗大ごみの出し方を知りたい",
        "粗大ごみは事前申込制です。粗大ごみ受付センターへお申し込みください。",
        keywords="粗大ごみ 申込み ソファ",
    ).id
    publish("住民票の写しを取りたい", "市民課の窓口またはコンビニで取得できます。")
    message = "ソファを捨てたいのですが、粗大ごみの出し方を教えてください"
    post_webhook(line_client, body_of(text_event(message, at=NIGHT)))
    run_worker(line_app)
    [ticket] = line_tickets()
    [answer] = faq_answers(ticket)
    assert answer.details.faq_entry_id == entry_id
    assert f"https://soudan.example.lg.jp/faq/{entry_id}" in answer.body
    assert "自動でお送りしています" in answer.body
    texts = fake_line.sent_texts()
    assert any(f"/faq/{entry_id}" in text for text in texts)
    # The consultant sees it marked on the ticket page.
    consultant = new_staff("consultant")
    from tests.helpers import sign_in

    sign_in(line_client, consultant)
    page = line_client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "FAQ自動回答" in page

    # A second message on the same ticket: no second automatic answer.
    post_webhook(line_client, body_of(text_event("粗大ごみの出し方をもう一度", at=LATER)))
    run_worker(line_app)
    [ticket] = line_tickets()
    assert len(faq_answers(ticket)) == 1


def test_no_automatic_answer_in_hours_or_for_a_weak_match(line_client, line_app, fake_line):
    publish("粗大ごみの出し方を知りたい", "事前申込制です。", keywords="粗大ごみ 申込み")
    post_webhook(line_client, body_of(text_event("粗大ごみの出し方を教えてください", at=DAY)))
    run_worker(line_app)
    [ticket] = line_tickets()
    assert faq_answers(ticket) == []  # the centre is open: a consultant answers

    from tests.channels.line.conftest import USER

    other = USER[:-2] + "cd"
    post_webhook(
        line_client, body_of(text_event("こんばんは。相談があります", user=other, at=NIGHT))
    )
    run_worker(line_app)
    tickets = line_tickets()
    assert len(tickets) == 2 and faq_answers(tickets[1]) == []
    assert not any("/faq/" in text for text in fake_line.sent_texts())
