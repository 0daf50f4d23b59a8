"""Mail to citizens: the consultant's replies, the acknowledgement, the satisfaction link
and automatic answers, all threaded under the last message and sent through the outbox.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from channels.email.models import EmailThread, ThreadMessage
from channels.email.services.common import MAX_REPLY, settings
from consult.extensions import db
from consult.models import Channel, OutboxMessage, Ticket
from consult.services import (
    audit,
    auto_answer,
    calendar,
    mail,
    tickets,
)
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import ValidationFailed
from consult.timeline import Automatic
from consult.timeutil import utcnow


def remember_outgoing(message: OutboxMessage, ticket: Ticket | None = None, **_kw) -> None:
    """Every mail queued for a ticket (replies, acknowledgements, confirmations) threads back."""
    if ticket is None or not message.headers.get("message_id"):
        return
    db.session.flush()
    db.session.add(
        ThreadMessage(
            message_id=message.headers["message_id"][:255],
            ticket_id=ticket.id,
            outgoing=True,
            outbox_id=message.id,
        )
    )


def _thread_headers(ticket: Ticket) -> tuple[str | None, list[str]]:
    ids = list(
        db.session.scalars(
            sa.select(ThreadMessage.message_id)
            .where(ThreadMessage.ticket_id == ticket.id)
            .order_by(ThreadMessage.id)
        )
    )
    last_in = db.session.scalar(
        sa.select(ThreadMessage.message_id)
        .where(ThreadMessage.ticket_id == ticket.id, ThreadMessage.outgoing.is_(False))
        .order_by(ThreadMessage.id.desc())
        .limit(1)
    )
    # References: the first and the latest twenty, as long threads otherwise grow without bound.
    refs = ids if len(ids) <= 21 else [ids[0], *ids[-20:]]
    return last_in or (ids[-1] if ids else None), refs


def recipient_for(ticket: Ticket) -> str | None:
    thread = db.session.get(EmailThread, ticket.id)
    if thread is not None:
        return thread.address
    if ticket.citizen is not None and ticket.citizen.emails:
        return ticket.citizen.emails[0].address
    return None


def _record_mail(
    ticket: Ticket,
    to: str,
    text: str,
    *,
    author=None,
    sender_name: str | None = None,
    automatic: Automatic | None = None,
    faq_entry_id: int | None = None,
):
    """A mail to the citizen on this ticket, threaded under the last message, through the
    kernel's tickets.record_outgoing (outbox row and timeline entry together); an automatic one
    says so in its headers (RFC 3834), so the citizen's own responder does not answer it."""
    in_reply_to, references = _thread_headers(ticket)
    message, entry = tickets.record_outgoing(
        ticket,
        channel=mail.CHANNEL,
        recipient=to,
        subject=mail.reply_subject(ticket.subject, ticket.number),
        body=mail.with_signature(text),
        entry_body=text,
        headers=mail.mail_headers(
            in_reply_to=in_reply_to,
            references=references,
            sender_name=sender_name,
            extra_headers={"Auto-Submitted": "auto-replied"} if automatic else None,
        ),
        author=author,
        automatic=automatic,
        faq_entry_id=faq_entry_id,
    )
    mail.queued(message, ticket)
    return message, entry


def send_reply(actor: Actor, ticket: Ticket, text: str):
    """The consultant's answer: a MESSAGE_OUT entry and an outbox row in one transaction."""
    staff = actor.require(*DESK_ROLES)
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise ValidationFailed("返信の本文を入力してください。")
    if len(text) > MAX_REPLY:
        raise ValidationFailed(f"返信の本文は{MAX_REPLY}文字以内で入力してください。")
    if not ticket.is_open:
        raise ValidationFailed("完了した相談には返信できません。再開してから返信してください。")
    to = recipient_for(ticket)
    if not to:
        raise ValidationFailed("この相談には返信先のメールアドレスがありません。")
    _message, entry = _record_mail(
        ticket, to, text, author=staff, sender_name=staff.display_name if staff else None
    )
    tickets.take_if_unowned(actor, ticket)
    audit.record(actor, "create", "ticket", ticket.number, "email_reply")
    return entry


def send_ack(ticket: Ticket) -> OutboxMessage | None:
    """The automatic acknowledgement of a new ticket, when the kernel's automatic-answer policy
    allows it (once per ticket, never to an automatic reply)."""
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None or not auto_answer.may_answer_automatically(
        ticket, Automatic.ACK, utcnow(), first_message=True
    ):
        return None
    config = current_app.config["MADOGUCHI"]
    # The app's Jinja environment without request context processors: the worker has no request.
    body = current_app.jinja_env.get_template("email/mail/ack.txt").render(
        ticket=ticket,
        centre=config["CENTRE_NAME"],
        days=settings()["MAIL_ACK_ANSWER_DAYS"],
        hours=calendar.hours_summary(),
    )
    queued, _entry = _record_mail(ticket, thread.address, body, automatic=Automatic.ACK)
    thread.ack_outbox_id = queued.id
    return queued


def ask_satisfaction(ticket: Ticket, **_kwargs) -> OutboxMessage | None:
    """The ticket-closed receiver: a mail case's citizen gets one mail with the link to the
    satisfaction question (signed, single-use: consult.voice), through the outbox."""
    from consult import urls
    from consult.voice import services as voice

    thread = db.session.get(EmailThread, ticket.id)
    if thread is None or ticket.channel != Channel.EMAIL:
        return None
    token = voice.ask(ticket, mail.CHANNEL)
    if token is None:
        return None
    config = current_app.config["MADOGUCHI"]
    body = current_app.jinja_env.get_template("email/mail/satisfaction.txt").render(
        ticket=ticket,
        centre=config["CENTRE_NAME"],
        url=urls.public_url("voice.satisfaction", token=token),
    )
    queued, _entry = _record_mail(ticket, thread.address, body)
    return queued


def send_automatic(
    ticket: Ticket, text: str, *, automatic: Automatic, faq_entry_id: int | None = None
) -> OutboxMessage | None:
    """An automatic message to the citizen (e.g. an FAQ link out of hours), marked as such.

    The caller asked the automatic-answer policy first (consult.plugins.Channel)."""
    to = recipient_for(ticket)
    if not to or not ticket.is_open:
        return None
    message, _entry = _record_mail(ticket, to, text, automatic=automatic, faq_entry_id=faq_entry_id)
    return message
