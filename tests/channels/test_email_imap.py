"""End to end with a real IMAP server (dovecot) and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import imaplib
import time

import pytest
import sqlalchemy as sa

from channels.email import imap, services, tasks
from channels.email.models import ImapState, InboundMail
from channels.email.parse import parse
from consult.extensions import db
from consult.models import EntryKind, Ticket
from consult.services import outbox
from consult.services.actor import Actor
from consult.settings import override as override_settings
from tests.channels import dovecot
from tests.channels.test_email_channel import CITIZEN_TEXT, citizen_mail
from tests.consult.http import call
from tests.helpers import sign_in

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
        tasks.ingest(data[0][1], source="imap")
        report = imap.fetch_once()
        assert report.duplicates == 1 and report.ingested == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


# --- TLS: IMAPS and STARTTLS, verified against MADOGUCHI_MAIL_CA_FILE ---------------------------

dovecot_tls_server = dovecot.dovecot_tls_server


def _tls_settings(server, security: str) -> dict:
    """IMAPS on its own port, or STARTTLS on the plain one; the test CA is trusted."""
    settings = dict(server.settings)
    if security == "starttls":
        settings.update(IMAP_PORT=server.port, IMAP_SECURITY="starttls")
    return settings


def _tls_logins(server, expected: int) -> list[str]:
    """Dovecot's login lines marked TLS (its log is written a moment after the login)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in server.logins() if ", TLS," in line]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_mail_over_imaps_and_starttls_becomes_a_ticket(app_factory, dovecot_tls_server, security):
    app = app_factory(**_tls_settings(dovecot_tls_server, security))
    with app.app_context():
        _append(dovecot_tls_server, citizen_mail())
        report = imap.fetch_once()
        assert report.ingested == 1
        ticket = db.session.scalar(sa.select(Ticket))
        assert ticket.timeline[0].body == CITIZEN_TEXT
        assert b"$MadoguchiHandled" in _flags(dovecot_tls_server)[0]
        assert imap.fetch_once().ingested == 0
    # Both polls logged in over TLS (the helpers above log in without it, on 127.0.0.1).
    assert len(_tls_logins(dovecot_tls_server, 2)) == 2


@pytest.mark.parametrize(
    ("security", "ca"),
    [("ssl", "other"), ("starttls", "other"), ("ssl", "system")],
    ids=["imaps-other-ca", "starttls-other-ca", "imaps-system-store"],
)
def test_a_certificate_that_does_not_verify_is_refused_and_nothing_is_taken(
    app_factory, dovecot_tls_server, tls_pki, security, ca
):
    settings = _tls_settings(dovecot_tls_server, security)
    settings["MAIL_CA_FILE"] = str(tls_pki.other_ca_file) if ca == "other" else ""
    app = app_factory(**settings)
    with app.app_context():
        _append(dovecot_tls_server, citizen_mail())
        with pytest.raises(imap.ImapError) as refused:
            imap.fetch_once()
        message = str(refused.value)
        assert "IMAPサーバーの証明書を検証できませんでした" in message
        assert "unable to get local issuer certificate" in message
        assert "MADOGUCHI_MAIL_CA_FILE" in message
        # Refused before the login: nothing stored, no UID remembered, the mail untouched.
        assert _count(InboundMail) == _count(ImapState) == _count(Ticket) == 0
        [flags] = _flags(dovecot_tls_server)
        assert b"\\Seen" not in flags and b"$MadoguchiHandled" not in flags

    # With the city's CA configured, the same mail is taken on the next poll.
    app = app_factory(**_tls_settings(dovecot_tls_server, security))
    with app.app_context():
        assert imap.fetch_once().ingested == 1
        ticket = db.session.scalar(sa.select(Ticket))
        assert ticket.timeline[0].body == CITIZEN_TEXT
    assert len(_tls_logins(dovecot_tls_server, 1)) == 1


def test_a_failing_poll_is_shown_to_administrators_until_mail_comes_in_again(
    app_factory, dovecot_server, make_staff
):
    """A changed password stops the mail; the administrators' page says so, in Japanese, and
    the mail is taken by the first poll after the fix."""
    wrong = {**dovecot_server.settings, "IMAP_PASSWORD": "not-the-password"}
    app = app_factory(**wrong)
    with app.app_context():
        admin = sign_in(app, make_staff("admin"))
        page = call(app, admin, "GET", "/email/inbound").get_data(as_text=True)
        assert "IMAPの受信はまだ行われていません" in page

        _append(dovecot_server, citizen_mail())
        for _ in range(2):
            with pytest.raises(imap.ImapError, match="ログインできません"):
                imap.poll()
        assert db.session.scalar(sa.select(sa.func.count(InboundMail.id))) == 0
        page = call(app, admin, "GET", "/email/inbound").get_data(as_text=True)
        assert "IMAPでメールを受信できていません" in page and "2回続けて失敗" in page
        assert "IMAPサーバーにログインできません（利用者名・パスワード）。" in page
        assert "まだ一度も受信できていません" in page
        assert "not-the-password" not in page

        override_settings(app, IMAP_PASSWORD=dovecot_server.password)
        assert imap.poll().ingested == 1
        page = call(app, admin, "GET", "/email/inbound").get_data(as_text=True)
        assert "IMAPでメールを受信できていません" not in page
        assert "IMAPの受信：正常" in page
