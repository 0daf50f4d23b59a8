"""Bounces (不達通知): matched to the mail the centre sent, which is marked failed."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app

from channels.email.models import InboundMail, InboundStatus, ThreadMessage
from consult.extensions import db
from consult.models import EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.services import tickets
from consult.timeline import Delivery, DeliveryStatus

_DIAGNOSTIC = re.compile(r"(?im)^(?:Diagnostic-Code|Status):\s*(.+)$")
_SMTP_LINE = re.compile(r"\b([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^\n]*|[45]\d\d [^\n]{3,})")


def handle_bounce(inbound: InboundMail, parsed, raw: bytes) -> None:
    """Attach the bounce to the outgoing message it refers to and mark that one failed."""
    domain = re.escape(current_app.config["MADOGUCHI"]["MAIL_DOMAIN"])
    candidates = re.findall(rf"<[^<>\s]+@{domain}>".encode(), raw)
    ours = None
    for candidate in dict.fromkeys(c.decode("ascii", "replace") for c in candidates):
        ours = db.session.scalar(
            sa.select(ThreadMessage).where(
                ThreadMessage.message_id == candidate, ThreadMessage.outgoing.is_(True)
            )
        )
        if ours is not None:
            break
    if ours is None:
        inbound.status = InboundStatus.IGNORED
        inbound.reason = "不達通知ですが、センターが送ったメールと対応づけられませんでした。"
        return
    reason = _bounce_reason(parsed, raw)
    ticket = db.session.get(Ticket, ours.ticket_id)
    if ours.outbox_id:
        message = db.session.get(OutboxMessage, ours.outbox_id)
        message.status = OutboxStatus.FAILED
        message.last_error = f"不達通知: {reason}"[:2000]
    tickets.add_entry(
        ticket,
        EntryKind.DELIVERY,
        body=f"送信したメールが届きませんでした（不達通知）：{reason}",
        data=Delivery(DeliveryStatus.FAILED, outbox_id=ours.outbox_id, inbound_id=inbound.id),
    )
    inbound.ticket_id = ticket.id
    inbound.status = InboundStatus.PROCESSED


def _bounce_reason(parsed, raw: bytes) -> str:
    for part in parsed.report_parts:
        if part.get_content_type() == "message/delivery-status":
            text = part.as_string() if not part.is_multipart() else ""
            if part.is_multipart():
                text = "\n".join(p.as_string() for p in part.get_payload())
            found = _DIAGNOSTIC.findall(text)
            if found:
                return max(found, key=len).strip()[:300]
    match = _SMTP_LINE.search(parsed.text or "")
    if match:
        return match.group(1).strip()[:300]
    return (parsed.subject or "宛先に届きませんでした")[:300]
