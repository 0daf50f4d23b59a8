"""End to end with a real IMAP server (dovecot) and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import imaplib
import time

import sqlalchemy as sa

from channels.email import imap, services
from channels.email.parse import parse
from consult.extensions import db
from consult.models import EntryKind, Ticket
from consult.services import outbox
from consult.services.actor import Actor
from tests.channels import dovecot
from tests.channels.test_email_channel import CITIZEN_TEXT, citizen_mail

dovecot_server = dovecot.dovecot_server  # the fixture, from its own module


def _append(server, raw: bytes) -> None:
    connection = imaplib.IMAP4("127.0.0.1", server.port)
    connection.login(server.user, server.password)
    status, _ = connection.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)
    assert status == "OK"
    connection.logout()


def _flags(server) -> list[bytes]:
    connection = imaplib.IMAP4("127.0.0.1", server.port)
    connection.login(server.user, server.password)
    connection.select("INBOX")
    _, data = connection.uid("FETCH", "1:*", "(FLAGS)")
    connection.logout()
    return [d for d in data if d]


def test_mail_from_imap_becomes_a_ticket_and_the_answer_threads_back(
    app_factory, dovecot_server, smtp_server, make_staff
):
    app = app_factory(**dovecot_server.settings, **smtp_server.settings)
    with app.app_context():
        _append(dovecot_server, citizen_mail())
        report = imap.fetch_once()
        assert report.ingested == 1
        ticket = db.session.scalar(sa.select(Ticket))
        assert ticket.timeline[0].body == CITIZEN_TEXT
        assert b"$MadoguchiHandled" in _flags(dovecot_server)[0]
        # Nothing new: a second poll takes nothing (UID remembered), flags or not.
        assert imap.fetch_once().ingested == 0

        staff = make_staff("consultant", display_name="さとう / Sato")
        services.send_reply(Actor(staff, "127.0.0.1"), ticket, "①の件、承りました～。")
        db.session.commit()
        outbox.run_once()
        [(recipients, _)] = smtp_server.messages
        assert recipients == ["taka@docomo.ne.jp"]
        sent = parse(smtp_server.raw[0])
        assert sent.text.startswith("①の件、承りました～。")
        assert sent.subject == f"Re: 児童手当について [#{ticket.number}]"

        answer = citizen_mail(
            "<answer@docomo.ne.jp>",
            subject="Re: x",
            extra=f"In-Reply-To: {sent.message_id}\r\nReferences: {sent.message_id}\r\n",
            body="ありがとうございます。",
        )
        _append(dovecot_server, answer)
        _append(dovecot_server, b"this is not a mail at all")  # quarantined, poller goes on
        report = imap.fetch_once()
        assert report.ingested == 1 and report.quarantined == 1
        db.session.expire_all()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1
        bodies = [e.body for e in db.session.get(Ticket, ticket.id).timeline]
        assert "ありがとうございます。" in bodies
        kinds = [e.kind for e in db.session.get(Ticket, ticket.id).timeline]
        assert kinds.count(EntryKind.MESSAGE_IN) == 2


def test_a_crash_before_the_flag_makes_no_second_entry(app_factory, dovecot_server):
    app = app_factory(**dovecot_server.settings)
    with app.app_context():
        _append(dovecot_server, citizen_mail())
        # The ticket was committed but the poller died before flagging and saving the UID.
        connection = imaplib.IMAP4("127.0.0.1", dovecot_server.port)
        connection.login(dovecot_server.user, dovecot_server.password)
        connection.select("INBOX")
        _, data = connection.uid("FETCH", "1", "(BODY.PEEK[])")
        connection.logout()
        services.ingest(data[0][1], source="imap")
        report = imap.fetch_once()
        assert report.duplicates == 1 and report.ingested == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1
