"""Out of hours, an email that clearly matches a public FAQ entry gets its link by email."""

from __future__ import annotations

from consult.extensions import db
from consult.models import EntryKind, OutboxMessage, Ticket
from consult.timeline import Automatic


def faq_answers(ticket: Ticket):
    db.session.expire_all()
    return [
        e
        for e in ticket.timeline
        if e.kind == EntryKind.MESSAGE_OUT and e.details.automatic == Automatic.FAQ
    ]


def test_an_email_at_night_gets_the_link_by_email(app, publish_entry, monkeypatch):
    from channels.email import tasks as email_tasks
    from consult.services import calendar
    from consult.services.jis import encode_iso2022jp

    entry = publish_entry(
        "粗大ごみの出し方を知りたい", "事前申込制です。", keywords="粗大ごみ 申込み ソファ"
    )
    monkeypatch.setattr(calendar, "centre_is_open", lambda at: False)
    raw = (
        b"From: shimin@example.jp\r\nTo: soudan@example.lg.jp\r\n"
        b"Subject: =?UTF-8?B?57KX5aSn44GU44G/44Gr44Gk44GE44Gm?=\r\n"
        b"Message-ID: <night1@example.jp>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
    ) + encode_iso2022jp("ソファを捨てたいので粗大ごみの出し方を教えてください。")
    ticket = email_tasks.ingest(raw).ticket
    db.session.commit()
    [answer] = faq_answers(ticket)
    assert answer.details.faq_entry_id == entry.id and answer.details.channel == "email"
    mail = db.session.get(OutboxMessage, answer.details.outbox_id)
    assert mail.recipient == "shimin@example.jp" and f"/faq/{entry.id}" in mail.body
    assert mail.headers["extra"]["Auto-Submitted"] == "auto-replied"


def test_the_automatic_answer_can_be_switched_off(app_factory, monkeypatch):
    monkeypatch.setenv("MADOGUCHI_FAQ_AUTO_ANSWER", "0")
    app = app_factory()
    assert app.config["MADOGUCHI"]["FAQ_AUTO_ANSWER"] is False
