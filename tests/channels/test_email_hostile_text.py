"""A mail with NUL, other control characters or undecodable bytes becomes a ticket, cleaned.

An encoded word (=?UTF-8?B?…?=) can carry any character into a subject or a sender's name, a
UTF-8 body can carry C1 controls, and raw 8-bit bytes in a header decode to lone surrogates;
PostgreSQL refuses the first and cannot encode the last.
"""

from __future__ import annotations

import base64

from channels.email import tasks
from channels.email.models import InboundStatus, MailAttachment
from consult.extensions import db
from consult.models import EntryKind, Ticket


def _word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


SENDER = _word("髙橋\x00花子")
SUBJECT = _word("児童手当\x00について\x1b\x85")
FILENAME = _word("申請\x00書.pdf")
BODY = base64.b64encode("申請の\x00方法を\x85教えて\x7fください。\n\tよろしく".encode()).decode()


def test_a_mail_with_control_characters_is_stored_without_them(app):
    boundary = "b0undary"
    raw = (
        f"From: {SENDER} <taka@docomo.ne.jp>\r\n"
        "To: soudan@example.lg.jp\r\n"
        f"Subject: {SUBJECT}\r\n"
        "Message-ID: <hostile-1@docomo.ne.jp>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + BODY
        + f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="{FILENAME}"\r\n\r\n'
        f"%PDF-1.4\r\n--{boundary}--\r\n"
    ).encode("ascii")
    outcome = tasks.ingest(raw)
    assert outcome.inbound.status == InboundStatus.PROCESSED, outcome.inbound.reason
    db.session.expire_all()
    ticket = db.session.get(Ticket, outcome.ticket.id)
    assert ticket.subject == "児童手当について"
    [message] = [e for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN]
    assert message.body == "申請の方法を教えてください。\n\tよろしく"
    assert message.data["subject"] == "児童手当について"
    assert message.data["from_name"] == "髙橋花子"
    [attachment] = db.session.scalars(db.select(MailAttachment)).all()
    assert attachment.filename == "申請書.pdf"


def test_raw_8bit_bytes_in_a_header_make_a_ticket(app):
    raw = (
        b"From: \xff\xfe <sender@example.jp>\r\nTo: soudan@example.lg.jp\r\n"
        b"Subject: \x82\xa0\xff \xe5\x85\x90\r\nMessage-ID: <hostile-2@example.jp>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
    ) + "児童手当について".encode()
    outcome = tasks.ingest(raw)
    assert outcome.inbound.status == InboundStatus.PROCESSED, outcome.inbound.reason
    db.session.expire_all()
    ticket = db.session.get(Ticket, outcome.ticket.id)
    assert not any("\ud800" <= ch <= "\udfff" for ch in ticket.subject)
    [message] = [e for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN]
    assert message.body == "児童手当について"
