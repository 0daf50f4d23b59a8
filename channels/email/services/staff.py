"""The staff side of the email channel: saved replies, the proposed citizen, the inbound
list and its retry, and the ticket page's panel.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.email.models import (
    EmailThread,
    ImapState,
    InboundMail,
    InboundStatus,
    MailAttachment,
    ReplyTemplate,
)
from channels.email.services.common import MAX_REPLY
from channels.email.services.outgoing import recipient_for
from consult.extensions import db
from consult.models import (
    Channel,
    Citizen,
    OutboxMessage,
    Role,
    Ticket,
)
from consult.services import audit, citizens, safe_files, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.timeutil import utcnow


def list_templates(active_only: bool = True) -> list[ReplyTemplate]:
    query = sa.select(ReplyTemplate).order_by(ReplyTemplate.name)
    if active_only:
        query = query.where(ReplyTemplate.active.is_(True))
    return list(db.session.scalars(query))


def save_template(actor: Actor, template_id: int | None, name: str, body: str, active=True):
    actor.require(Role.ADMIN, Role.CONSULTANT, Role.SUPERVISOR)
    name, body = (name or "").strip(), (body or "").replace("\r\n", "\n").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("定型文の名前を80文字以内で入力してください。")
    if not body or len(body) > MAX_REPLY:
        raise ValidationFailed(f"定型文の本文を{MAX_REPLY}文字以内で入力してください。")
    clash = db.session.scalar(sa.select(ReplyTemplate).where(ReplyTemplate.name == name))
    if template_id:
        template = db.session.get(ReplyTemplate, template_id)
        if template is None:
            raise NotFound("定型文が見つかりません。")
    else:
        template = ReplyTemplate()
        db.session.add(template)
    if clash is not None and clash is not template:
        raise ValidationFailed("同じ名前の定型文があります。別の名前にしてください。")
    template.name, template.body, template.active = name, body, bool(active)
    template.updated_at = utcnow()
    db.session.flush()
    return template


def register_proposed_citizen(actor: Actor, ticket: Ticket) -> Citizen:
    """The sender of a mail from an unknown address, registered as a citizen on request."""
    actor.require(*DESK_ROLES)
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None:
        raise NotFound("メールの相談ではありません。")
    if ticket.citizen is not None:
        raise ValidationFailed("この相談には既に相談者が紐付いています。")
    # Through the intake's choice: a citizen already known by this address (or name) is
    # offered first, never duplicated silently.
    return tickets.save_citizen(
        actor, ticket, citizens.CitizenInput(name=thread.sender_name or None, email=thread.address)
    )


def proposed_sender(ticket: Ticket) -> dict:
    """The sender's name and address as received, to fill the citizen form."""
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None:
        return {}
    return {"name": thread.sender_name or "", "email": thread.address}


def list_inbound(status: str | None = None, limit: int = 200) -> list[InboundMail]:
    query = sa.select(InboundMail).order_by(InboundMail.id.desc()).limit(limit)
    if status:
        query = query.where(InboundMail.status == InboundStatus(status))
    return list(db.session.scalars(query))


def retry(actor: Actor, inbound_id: int) -> InboundMail:
    """An administrator retries a quarantined mail after a fix: checked and audited here; the
    caller commits and then processes it in a transaction of its own (tasks.process)."""
    actor.require(Role.ADMIN)
    inbound = db.session.get(InboundMail, inbound_id)
    if inbound is None:
        raise NotFound("受信メールが見つかりません。")
    if inbound.status != InboundStatus.QUARANTINED:
        raise ValidationFailed("再処理できるのは隔離中のメールだけです。")
    audit.record(actor, "update", "email", inbound.id, "retry")
    return inbound


def ticket_panel(ticket: Ticket):
    if ticket.channel != Channel.EMAIL:
        return None
    thread = db.session.get(EmailThread, ticket.id)
    attachments = list(
        db.session.scalars(
            sa.select(MailAttachment)
            .where(MailAttachment.ticket_id == ticket.id)
            .order_by(MailAttachment.id)
        )
    )
    outgoing = {
        m.id: m
        for m in db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == "email"
            )
        )
    }
    from channels.email.forms import ReplyForm

    return "email/_panel.html", {
        "safe": safe_files.for_source("email_attachment", [a.id for a in attachments]),
        "thread": thread,
        "recipient": recipient_for(ticket),
        "attachments": attachments,
        "outgoing": sorted(outgoing.values(), key=lambda m: m.id),
        "templates": list_templates(),
        "form": ReplyForm(),
    }


def imap_state(mailbox: str) -> ImapState | None:
    return db.session.get(ImapState, mailbox)
