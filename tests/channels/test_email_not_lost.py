"""Citizens' mail is never lost (issue 14): automatic replies are told by their headers and
senders, never by the subject's words; one reused Message-ID never hides a second mail."""

from __future__ import annotations

import imaplib
import time

import pytest
import sqlalchemy as sa

from channels.email import imap
from channels.email.models import InboundMail, InboundStatus
from consult.extensions import db
from consult.models import EntryKind, Ticket
from tests.channels import dovecot
from tests.channels.test_email_channel import citizen_mail

dovecot_server = dovecot.dovecot_server  # the fixture, from its own module


def _utf8_subject(text: str) -> str:
    import base64

    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _mail(*, sender="Taka@Docomo.ne.jp", message_id="<c1@docomo.ne.jp>", subject="相談", **kw):
    raw = citizen_mail(message_id, subject=subject, **kw)
    return raw.replace(b"<Taka@Docomo.ne.jp>", f"<{sender}>".encode())


def _ingest(app, raw: bytes) -> str:
    """`madoguchi mail ingest`, as the MTA runs it: what it prints."""
    result = app.test_cli_runner().invoke(args=["mail", "ingest"], input=raw)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def _tickets() -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Ticket).order_by(Ticket.id)))


def _messages(ticket: Ticket) -> list[str]:
    return [e.body for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN]


# --- 2. automatic replies: headers and senders, never the subject ------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "予約の自動返信メールが届きません",
        "自動応答の設定方法を教えてください",
        "不在通知が届いたのですが",
        "Re: Automatic reply について",
    ],
)
def test_a_citizen_writing_about_automatic_replies_gets_a_ticket(app, subject):
    body = "先週予約しましたが、確認の自動返信メールが届きません。予約できていますか。"
    printed = _ingest(app, _mail(subject=_utf8_subject(subject), body=body))
    [ticket] = _tickets()
    assert printed == ticket.number  # not 「相談票は作成しませんでした…自動応答のため」
    assert ticket.subject == subject
    assert _messages(ticket) == [body]


@pytest.mark.parametrize(
    ("sender", "extra"),
    [
        ("taka@docomo.ne.jp", "Auto-Submitted: auto-replied\r\n"),
        ("taka@docomo.ne.jp", "Auto-Submitted: auto-generated\r\n"),
        ("taka@docomo.ne.jp", "X-Autoreply: yes\r\n"),
        ("taka@docomo.ne.jp", "X-Autorespond: Out of office\r\n"),
        ("taka@docomo.ne.jp", "Precedence: bulk\r\n"),
        ("taka@docomo.ne.jp", "Precedence: junk\r\n"),
        ("taka@docomo.ne.jp", "Precedence: list\r\n"),
        ("taka@docomo.ne.jp", "Precedence: auto_reply\r\n"),
        ("no-reply@shop.example.com", ""),
        ("NoReply@Shop.Example.com", ""),
        ("noreply-booking@shop.example.com", ""),
        ("do-not-reply@shop.example.com", ""),
        ("MAILER-DAEMON@mx.docomo.ne.jp", ""),
        ("postmaster@docomo.ne.jp", ""),
        ("taka@docomo.ne.jp", "Return-Path: <>\r\n"),
    ],
)
def test_automatic_mail_is_told_by_its_headers_and_sender(app, sender, extra):
    raw = _mail(sender=sender, subject="Re: ご相談", extra=extra, body="不在です。")
    printed = _ingest(app, raw)
    assert printed.startswith("相談票は作成しませんでした")
    assert _tickets() == []
    inbound = db.session.scalar(sa.select(InboundMail))
    assert inbound.status == InboundStatus.IGNORED and inbound.kind in ("auto_reply", "bounce")


def test_auto_submitted_no_and_a_subject_alone_make_a_ticket(app):
    raw = _mail(
        subject=_utf8_subject("【自動応答】不在です"),
        extra="Auto-Submitted: no\r\n",
        body="不在と書きましたが、相談です。",
    )
    printed = _ingest(app, raw)
    [ticket] = _tickets()
    assert printed == ticket.number


# --- 3. one Message-ID, two mails --------------------------------------------------------------


def test_two_different_mails_with_one_message_id_make_two_tickets(app):
    first = _mail(subject=_utf8_subject("児童手当について"), body="児童手当の申請について。")
    second = _mail(subject=_utf8_subject("粗大ごみについて"), body="粗大ごみの出し方は？")
    one, two = _ingest(app, first), _ingest(app, second)
    assert one != two  # the second mail is not answered with the first one's number
    by_number = {t.number: t for t in _tickets()}
    assert set(by_number) == {one, two}
    assert _messages(by_number[one]) == ["児童手当の申請について。"]
    assert _messages(by_number[two]) == ["粗大ごみの出し方は？"]
    # Each one delivered again is still one ticket each.
    assert _ingest(app, second) == two and _ingest(app, first) == one
    assert len(_tickets()) == 2


def test_one_message_id_from_two_senders_makes_two_tickets(app):
    same = {"subject": "相談", "body": "同じ本文です。"}
    one = _ingest(app, _mail(sender="a@example.jp", **same))
    two = _ingest(app, _mail(sender="b@example.jp", **same))
    assert one != two and len(_tickets()) == 2


def _fetch_from_imap_as_stored(server) -> bytes:
    connection = imaplib.IMAP4("127.0.0.1", server.port)
    connection.login(server.user, server.password)
    connection.select("INBOX")
    _, data = connection.uid("FETCH", "1", "(BODY.PEEK[])")
    connection.logout()
    return data[0][1]


def test_the_same_mail_by_imap_and_by_the_mta_pipe_is_one_ticket(app_factory, dovecot_server):
    """The MTA pipe hands over LF line ends and its own trace headers; the mailbox has CRLF and
    others. The same mail is still one ticket, and a different one with its Message-ID is not."""
    app = app_factory(**dovecot_server.settings)
    with app.app_context():
        mail = _mail(subject=_utf8_subject("児童手当について"), body="児童手当の申請について。")
        connection = imaplib.IMAP4("127.0.0.1", dovecot_server.port)
        connection.login(dovecot_server.user, dovecot_server.password)
        status, _ = connection.append(
            "INBOX", None, imaplib.Time2Internaldate(time.time()), b"Delivered-To: x@y\r\n" + mail
        )
        assert status == "OK"
        connection.logout()
        assert imap.fetch_once().ingested == 1
        [ticket] = _tickets()
        piped = (
            b"Return-Path: <taka@docomo.ne.jp>\r\n"
            b"Received: from mx.docomo.ne.jp by mx.example.lg.jp;\r\n"
            b"\tMon, 1 Dec 2026 09:00:00 +0900\r\n" + mail
        ).replace(b"\r\n", b"\n")
        assert piped != _fetch_from_imap_as_stored(dovecot_server)
        assert _ingest(app, piped) == ticket.number
        assert len(_tickets()) == 1
        other = _mail(subject=_utf8_subject("別件です"), body="別の相談です。")
        assert _ingest(app, other) != ticket.number
        assert len(_tickets()) == 2


def test_mail_stored_before_the_new_key_is_not_taken_twice(app):
    """A row stored under the old key (the Message-ID alone) still recognises its own mail when
    it comes again after the upgrade, and still lets a different mail with that Message-ID in."""
    first = _mail(subject=_utf8_subject("児童手当について"), body="児童手当の申請について。")
    number = _ingest(app, first)
    db.session.execute(sa.update(InboundMail).values(dedupe_key="mid:<c1@docomo.ne.jp>"))
    db.session.commit()
    assert _ingest(app, first) == number
    assert len(_tickets()) == 1
    other = _mail(subject=_utf8_subject("粗大ごみについて"), body="粗大ごみの出し方は？")
    assert _ingest(app, other) != number
    assert len(_tickets()) == 2


def test_a_refetch_by_imap_across_the_upgrade_makes_no_second_ticket(app_factory, dovecot_server):
    """The poller killed between the commit and the IMAP flag, then restarted on the new code:
    the mail fetched again finds its row stored under the old key."""
    app = app_factory(**dovecot_server.settings)
    with app.app_context():
        mail = _mail(subject=_utf8_subject("児童手当について"), body="児童手当の申請について。")
        connection = imaplib.IMAP4("127.0.0.1", dovecot_server.port)
        connection.login(dovecot_server.user, dovecot_server.password)
        connection.append("INBOX", None, imaplib.Time2Internaldate(time.time()), mail)
        connection.logout()
        number = _ingest(app, _fetch_from_imap_as_stored(dovecot_server))  # not flagged
        db.session.execute(sa.update(InboundMail).values(dedupe_key="mid:<c1@docomo.ne.jp>"))
        db.session.commit()
        report = imap.fetch_once()
        assert report.duplicates == 1 and report.ingested == 0
        assert [t.number for t in _tickets()] == [number]
