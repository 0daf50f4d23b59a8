"""Email out of the centre: every feature that mails (replies, bookings, handoffs, alerts) does
it here, through the outbox, so one deliverer knows SMTP and one place builds correct Japanese
MIME.

`enqueue_mail()` writes an outbox row in the caller's transaction: the text, and in `headers`
the Message-ID (generated now, so threading can refer to it before it is sent), threading
headers and any small attachments (an iCalendar invitation, say). The worker's deliverer builds
the MIME message from that row at send time and talks SMTP (plain, STARTTLS or SMTPS).
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import current_app

from consult import signals
from consult.models import OutboxMessage, Ticket
from consult.services import jis, outbox
from consult.services.outbox import PermanentFailure, TemporaryFailure
from consult.timeutil import utcnow

CHANNEL = "email"


DEFAULT_SIGNATURE = (
    "――――――――――――――――\n{centre}\n"
    "※このメールにそのまま返信してください。件名の相談番号は消さずにお送りください。"
)


def settings() -> Mapping:
    """Every setting by variable name, parsed once (consult.config.MailSettings for mail)."""
    return current_app.config["MADOGUCHI"]


def new_message_id() -> str:
    """A Message-ID of the centre's own domain, so replies can be matched to a ticket."""
    return make_msgid(domain=settings()["MAIL_DOMAIN"])


def enqueue_mail(
    *,
    to: str,
    subject: str,
    text: str,
    ticket: Ticket | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    attachments: list[dict] | None = None,
    sender_name: str | None = None,
    extra_headers: dict | None = None,
) -> OutboxMessage:
    """Queue one email. Attachments: dicts with filename, content_type and text or data (bytes).

    `sender_name` is shown as the From display name; pass a staff member's display_name only.
    A message to a citizen about their ticket goes through tickets.record_outgoing instead,
    with `mail_headers(...)` and then `queued(...)`.
    """
    headers = mail_headers(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments,
        sender_name=sender_name,
        extra_headers=extra_headers,
    )
    message = outbox.enqueue(
        channel=CHANNEL, recipient=to, subject=subject, body=text, headers=headers, ticket=ticket
    )
    queued(message, ticket)
    return message


def queued(message: OutboxMessage, ticket: Ticket | None) -> None:
    """Tell the listeners (email threading) that a mail is in the outbox."""
    signals.mail_queued.send(message, ticket=ticket)


def mail_headers(
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    attachments: list[dict] | None = None,
    sender_name: str | None = None,
    extra_headers: dict | None = None,
) -> dict:
    """What an outbox row of a mail keeps in `headers`: the Message-ID (made now, so threading
    can refer to it before it is sent), threading, attachments, the sender's display name."""
    stored = []
    for item in attachments or ():
        data = item["data"] if "data" in item else item["text"].encode("utf-8")
        stored.append(
            {
                "filename": item["filename"],
                "content_type": item["content_type"],
                "data": base64.b64encode(data).decode("ascii"),
            }
        )
    return {
        "message_id": message_id or new_message_id(),
        "in_reply_to": in_reply_to,
        "references": references or [],
        "attachments": stored,
        "sender_name": sender_name,
        "extra": extra_headers or {},
    }


def with_signature(text: str) -> str:
    """The centre's signature (MADOGUCHI_MAIL_SIGNATURE, or a default naming the centre)."""
    config = settings()
    signature = config.get("MAIL_SIGNATURE") or DEFAULT_SIGNATURE.format(
        centre=config["CENTRE_NAME"]
    )
    return f"{text.rstrip()}\n\n{signature}\n"


def reply_subject(subject: str, number: str | None) -> str:
    """'Re: …' once, with the ticket number [#2026-000123] that threads the answer back."""
    subject = (subject or "").strip()
    base = subject
    while base[:3].lower() in ("re:", "re：") or base[:3] == "Re：":
        base = base[3:].strip()
    tag = f"[#{number}]" if number else ""
    if tag and tag not in base:
        base = f"{base} {tag}".strip()
    return f"Re: {base}"


def needs_iso2022jp(recipient: str) -> bool:
    """Some carriers' phones still show UTF-8 mail badly: MADOGUCHI_MAIL_ISO2022JP_DOMAINS."""
    domains = [d.lower() for d in settings()["MAIL_ISO2022JP_DOMAINS"]]
    domain = recipient.rsplit("@", 1)[-1].strip().lower().rstrip(">")
    return any(domain == d or domain.endswith("." + d) for d in domains)


def build_mime(message: OutboxMessage):
    if needs_iso2022jp(message.recipient):
        jis = _build_iso2022jp(message)
        if jis is not None:
            return jis
    return _build_utf8(message)


def _jis_word(text: str) -> str:
    """RFC 2047 encoded words in ISO-2022-JP, each one complete (starts and ends in ASCII)."""
    words, chunk = [], ""
    for ch in text:
        if len(jis.encode_iso2022jp(chunk + ch)) > 45:
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    return "\r\n ".join(
        "=?ISO-2022-JP?B?" + base64.b64encode(jis.encode_iso2022jp(w)).decode("ascii") + "?="
        for w in words
    )


def _build_iso2022jp(message: OutboxMessage):
    """The same mail in ISO-2022-JP (CP50220: ①, ～ and 髙 survive); None if it cannot be."""
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.nonmultipart import MIMENonMultipart

    config = settings()
    headers = message.headers or {}
    name = headers.get("sender_name") or config["CENTRE_NAME"]
    subject = message.subject or ""
    body = (message.body or "").replace("\r\n", "\n")
    if not all(jis.can_encode(t) for t in (name, subject, body)):
        return None
    text = MIMENonMultipart("text", "plain", charset="ISO-2022-JP")
    text.set_payload(jis.encode_iso2022jp(body).decode("ascii"))
    text["Content-Transfer-Encoding"] = "7bit"
    if headers.get("attachments"):
        mime = MIMEMultipart()
        mime.attach(text)
        for item in headers["attachments"]:
            part = MIMEApplication(base64.b64decode(item["data"]))
            part.replace_header("Content-Type", item["content_type"])
            part.add_header(
                "Content-Disposition", "attachment", filename=("utf-8", "", item["filename"])
            )
            mime.attach(part)
    else:
        mime = text
    mime["From"] = f"{_jis_word(name)} <{config['MAIL_FROM']}>"
    mime["To"] = message.recipient
    mime["Subject"] = _jis_word(subject) if subject else ""
    mime["Date"] = format_datetime(utcnow())
    mime["Message-ID"] = headers.get("message_id") or new_message_id()
    if headers.get("in_reply_to"):
        mime["In-Reply-To"] = headers["in_reply_to"]
    if headers.get("references"):
        mime["References"] = " ".join(headers["references"])
    for key, value in (headers.get("extra") or {}).items():
        mime[key] = value
    return mime


def _build_utf8(message: OutboxMessage) -> EmailMessage:
    config = settings()
    headers = message.headers or {}
    mime = EmailMessage()
    name = headers.get("sender_name") or config["CENTRE_NAME"]
    mime["From"] = Address(display_name=name, addr_spec=config["MAIL_FROM"])
    mime["To"] = message.recipient
    mime["Subject"] = message.subject or ""
    mime["Date"] = format_datetime(utcnow())
    mime["Message-ID"] = headers.get("message_id") or new_message_id()
    if headers.get("in_reply_to"):
        mime["In-Reply-To"] = headers["in_reply_to"]
    if headers.get("references"):
        mime["References"] = " ".join(headers["references"])
    for key, value in (headers.get("extra") or {}).items():
        mime[key] = value
    mime.set_content(message.body or "", charset="utf-8")
    for item in headers.get("attachments") or ():
        maintype, subtype = item["content_type"].split(";")[0].strip().split("/", 1)
        params = {}
        if "method=" in item["content_type"]:
            params["method"] = item["content_type"].split("method=")[1].split(";")[0].strip()
        mime.add_attachment(
            base64.b64decode(item["data"]),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
            params=params,
        )
    return mime


def tls_context() -> ssl.SSLContext:
    """TLS for the centre's mail servers (SMTP here, IMAP in channels.email.imap).

    Certificate and host name are always verified: against MADOGUCHI_MAIL_CA_FILE when a city
    runs its own CA on its intranet (that bundle replaces the system's trust store), otherwise
    against the system's trust store. There is deliberately no switch to turn this off.
    """
    return ssl.create_default_context(cafile=settings().get("MAIL_CA_FILE") or None)


def tls_problem(server: str, exc: ssl.SSLError) -> str:
    """What went wrong in a TLS handshake with a mail server, and what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{server}サーバーの証明書を検証できませんでした（{exc.verify_message}）。"
            "サーバー名と、認証局の証明書（MADOGUCHI_MAIL_CA_FILE）の設定を確認してください"
        )
    return f"{server}サーバーとTLSで接続できませんでした（{exc.reason or type(exc).__name__}）"


def _connect(config: dict) -> smtplib.SMTP:
    host, port = config["SMTP_HOST"], int(config["SMTP_PORT"])
    security = config["SMTP_SECURITY"]
    timeout = float(config["SMTP_TIMEOUT_SECONDS"])
    if security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context())
    connection = smtplib.SMTP(host, port, timeout=timeout)
    if security == "starttls":
        try:
            connection.starttls(context=tls_context())
        except Exception:
            connection.close()  # a refused certificate must not leave the socket open
            raise
    return connection


def deliver(message: OutboxMessage) -> None:
    """The outbox deliverer: 4xx and network trouble are retried; 5xx answers are final.

    A certificate that does not verify is a configuration problem (CA file, host name): it is
    retried like a network error, with the reason in last_error for the administrator to see,
    so the mail goes out once the configuration is fixed.
    """
    config = settings()
    if not config.get("SMTP_HOST"):
        raise TemporaryFailure("送信サーバー（MADOGUCHI_SMTP_HOST）が設定されていません")
    mime = build_mime(message)
    try:
        # Every step (connect, EHLO, STARTTLS, each command) waits at most SMTP_TIMEOUT_SECONDS:
        # the socket's timeout, which the TLS socket inherits. After a failure the connection
        # is only closed: a polite QUIT to a server that stopped answering would wait again.
        connection = _connect(config)
        try:
            if config.get("SMTP_USER"):
                connection.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
            connection.send_message(
                mime, from_addr=config["MAIL_FROM"], to_addrs=[message.recipient]
            )
        except BaseException:
            connection.close()
            raise
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()  # the message was accepted; a lost QUIT changes nothing
    except smtplib.SMTPRecipientsRefused as exc:
        code, answer = next(iter(exc.recipients.values()))
        _raise_for(code, answer)
    except smtplib.SMTPResponseException as exc:
        _raise_for(exc.smtp_code, exc.smtp_error)
    except ssl.SSLError as exc:
        raise TemporaryFailure(tls_problem("SMTP", exc)) from exc
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise TemporaryFailure(f"SMTP接続エラー: {type(exc).__name__}") from exc


def _raise_for(code: int, answer: bytes | str) -> None:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    detail = f"{code} {text}".strip()
    if 400 <= code < 500:
        raise TemporaryFailure(detail)
    raise PermanentFailure(detail)
