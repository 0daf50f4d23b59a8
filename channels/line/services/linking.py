"""Linking a LINE account to a citizen: by a code the citizen sends, or by the consultant."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from channels.line import notifications
from channels.line.models import LineContact, LineLinkCode
from channels.line.services.common import log
from channels.line.services.contacts import contact_ticket_ids, line_ticket, open_ticket
from channels.line.services.outgoing import enqueue
from consult.extensions import db
from consult.models import EntryKind, Ticket
from consult.services import audit, search, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import ValidationFailed
from consult.timeutil import utcnow

LINK_CODE_LIFETIME = timedelta(hours=24)
LINK_CODE_MAX_FAILURES = 5
LINK_PATTERN = re.compile(r"(\d{4}-\d{6})\D{1,10}(\d{6})")
# Linking is an explicit step: the citizen taps this (a quick reply, or the rich menu's postback
# ``action=link``), then sends the number and the code. Text alone never links.
LINK_STEP = [{"label": notifications.LINK_STEP_LABEL, "data": "action=link"}]
LINK_STEP_LIFETIME_MS = 30 * 60 * 1000


def _code_hash(ticket_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"line-link:{ticket_id}:{code}".encode(), hashlib.sha256).hexdigest()


def issue_link_code(actor: Actor, ticket: Ticket) -> str:
    """A six-digit code, valid 24 hours, that links a LINE account to this ticket's citizen.

    Only the code's keyed hash is stored; staff read the code out or hand it over once.
    """
    actor.require(*DESK_ROLES)
    if ticket.citizen_id is None:
        raise ValidationFailed("先に相談者を登録してから、LINE連携コードを発行してください。")
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    # An older code of the same ticket stops working: one code at a time.
    db.session.execute(
        sa.update(LineLinkCode)
        .where(LineLinkCode.ticket_id == ticket.id, LineLinkCode.used_at.is_(None))
        .values(expires_at=now)
    )
    db.session.add(
        LineLinkCode(
            ticket_id=ticket.id,
            code_hash=_code_hash(ticket.id, code),
            created_by_id=actor.staff_id,
            created_at=now,
            expires_at=now + LINK_CODE_LIFETIME,
        )
    )
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=actor.staff,
        body="LINE連携コードを発行しました（24時間有効）",
    )
    audit.record(actor, "create", "line_link_code", ticket.number)
    return code


def self_link(contact: LineContact, match: re.Match, at: datetime) -> bool:
    """The number and code a citizen sent after the explicit step; the message itself is
    already on their ticket."""
    number, code = match.group(1), match.group(2)
    now = utcnow()
    target = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
    live = []
    if target is not None:
        live = list(
            db.session.scalars(
                sa.select(LineLinkCode).where(
                    LineLinkCode.ticket_id == target.id,
                    LineLinkCode.used_at.is_(None),
                    LineLinkCode.expires_at > now,
                    LineLinkCode.failures < LINK_CODE_MAX_FAILURES,
                )
            )
        )
    wanted = _code_hash(target.id, code) if target is not None else ""
    found = next((c for c in live if hmac.compare_digest(c.code_hash, wanted)), None)
    if found is None or target.citizen_id is None:
        for item in live:
            item.failures += 1
        log.info("line self-link refused: contact=%s", contact.id)
        enqueue(contact, notifications.link_refused(), quick_reply=LINK_STEP)
        return True
    found.used_at = now
    contact.citizen_id = target.citizen_id
    search.touch(contact_ticket_ids(contact))  # the display name now finds the citizen's cases
    tickets.add_entry(
        target,
        EntryKind.CITIZEN_LINK,
        body="相談者がLINE連携コードでLINEアカウントを連携しました",
        data={"line_contact": contact.id},
        at=at,
    )
    current = open_ticket(contact)
    if current is not None and current.citizen_id is None:
        current.citizen_id = target.citizen_id
        tickets.add_entry(
            current,
            EntryKind.CITIZEN_LINK,
            body=f"LINE連携コードで相談者を紐付けました（相談番号 {target.number}）",
            data={"citizen_id": target.citizen_id, "line_contact": contact.id},
            at=at,
        )
    enqueue(
        contact,
        "LINEアカウントの連携が完了しました。このトークでのご相談は、"
        "センターでお伺いした内容と合わせて対応します。",
    )
    return True


def link_contact(actor: Actor, ticket: Ticket) -> None:
    """The consultant links the LINE contact of this ticket to the ticket's citizen."""
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    link = line_ticket(ticket)
    if link is None:
        raise ValidationFailed("この相談はLINEの相談ではありません。")
    if ticket.citizen_id is None:
        raise ValidationFailed("先に相談者を登録してから、LINEの連絡先と紐付けてください。")
    if link.contact.citizen_id == ticket.citizen_id:
        return
    link.contact.citizen_id = ticket.citizen_id
    search.touch(contact_ticket_ids(link.contact))
    tickets.add_entry(
        ticket,
        EntryKind.CITIZEN_LINK,
        author=actor.staff,
        body="LINEの連絡先を相談者に紐付けました",
        data={"citizen_id": ticket.citizen_id, "line_contact": link.contact_id},
    )
    audit.record(actor, "update", "line_contact", str(link.contact_id), "citizen")
