"""Messages to a LINE contact: the consultant's replies and the channel's automatic answers.

All of them go through the outbox (delivered by channels.line.tasks.deliver); a message about a
ticket is recorded on its timeline too (`record_message`), others are an outbox row alone
(`enqueue`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from channels.line.models import LineContact
from channels.line.services.common import CHANNEL, MAX_TEXT
from channels.line.services.contacts import line_ticket
from consult.models import OutboxMessage, Status, Ticket
from consult.services import outbox, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import ValidationFailed
from consult.timeline import Automatic
from consult.timeutil import utcnow


def record_message(
    contact: LineContact,
    ticket: Ticket,
    text: str,
    *,
    entry_body: str | None = None,
    author=None,
    sender: str | None = None,
    automatic: Automatic | None = None,
    faq_entry_id: int | None = None,
    auto_until: datetime | None = None,
    quick_reply: list[dict] | None = None,
) -> OutboxMessage:
    """A message to the contact about this ticket: outbox row and timeline entry together,
    through the kernel's tickets.record_outgoing, with LINE's headers (retry key, reply token,
    quick replies). Every LINE message about a ticket is recorded here."""
    message, _entry = tickets.record_outgoing(
        ticket,
        channel=CHANNEL,
        recipient=recipient_of(contact),
        body=text,
        entry_body=entry_body,
        headers=line_headers(contact, sender=sender, quick_reply=quick_reply),
        author=author,
        automatic=automatic,
        faq_entry_id=faq_entry_id,
        auto_until=auto_until,
    )
    return message


def recipient_of(contact: LineContact) -> str:
    return f"line-contact:{contact.id}"


def line_headers(
    contact: LineContact, *, sender: str | None = None, quick_reply: list[dict] | None = None
) -> dict:
    """An outbox row's LINE headers, with its retry key fixed now (one per message), and the
    contact's reply token while it is fresh (used once: taken from the contact here).

    ``quick_reply``: postback buttons shown under the message (label, data), e.g. LINK_STEP."""
    headers: dict = {"retry_key": str(uuid.uuid4())}
    if sender:
        headers["sender"] = sender
    if quick_reply:
        headers["quick_reply"] = quick_reply
    now = utcnow()
    expires = contact.reply_token_expires_at
    if contact.reply_token and expires is not None and expires > now:
        headers["reply_token"] = contact.reply_token
        headers["reply_until"] = contact.reply_token_expires_at.isoformat()
        contact.reply_token = None  # a reply token is good for one reply only
        contact.reply_token_expires_at = None
    return headers


def enqueue(
    contact: LineContact, text: str, *, quick_reply: list[dict] | None = None
) -> OutboxMessage:
    """A message to the contact that belongs to no ticket (greeting, menu answers, the link's
    outcome): an outbox row alone. Messages about a ticket go through `record_message`."""
    return outbox.enqueue(
        channel=CHANNEL,
        recipient=recipient_of(contact),
        body=text,
        headers=line_headers(contact, quick_reply=quick_reply),
    )


def sender_line(display_name: str) -> str:
    """How a reply names its author to the citizen: the display name only, never the full name."""
    return f"［{display_name}］"


def send_reply(actor: Actor, ticket: Ticket, text: str) -> OutboxMessage:
    """The consultant's answer: a timeline entry and an outbox row in the same transaction."""
    staff = actor.require(*DESK_ROLES)
    ticket.ensure_open()
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("返信の本文を入力してください。")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"返信は{MAX_TEXT:,}文字以内で入力してください（現在{len(text):,}文字）。"
        )
    link = line_ticket(ticket)
    if link is None:
        raise ValidationFailed("この相談はLINEの相談ではないため、LINEで返信できません。")
    if not link.contact.following:
        raise ValidationFailed(
            "相談者がこのアカウントをブロック（友だち解除）しているため、LINEで返信できません。"
        )
    display = staff.display_name if staff is not None else "市民相談センター"
    message = record_message(
        link.contact,
        ticket,
        f"{sender_line(display)}\n{text}",
        entry_body=text,
        author=staff,
        sender=display,
    )
    tickets.take_if_unowned(actor, ticket)
    if ticket.status == Status.RECEIVED:
        tickets.change_status(actor, ticket, Status.IN_PROGRESS, internal=True)
    return message


def send_automatic(
    ticket: Ticket, text: str, *, automatic: Automatic, faq_entry_id: int | None = None
) -> OutboxMessage | None:
    """An automatic message to the citizen (e.g. an FAQ link out of hours), marked as such.

    The caller asked the automatic-answer policy first (consult.plugins.Channel)."""
    link = line_ticket(ticket)
    if link is None or not link.contact.following or not ticket.is_open:
        return None
    return record_message(
        link.contact, ticket, text, automatic=automatic, faq_entry_id=faq_entry_id
    )
