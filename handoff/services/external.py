"""External bodies: signed, expiring, revocable links, and what the body does through one
(answer in one go, or send the request back)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from consult.extensions import db
from consult.services import audit
from consult.services.actor import Actor
from consult.services.normalize import clean_text
from consult.timeutil import utcnow
from handoff.models import ExternalLink, Handoff, HandoffState
from handoff.services.common import CONTACT_RESPONSES, move
from handoff.services.officer import Record, complete, send_back
from handoff.settings import HandoffSettings


def _serializer() -> URLSafeTimedSerializer:
    """The external link's signature: the app's secret on one server; the relay key when the
    relay and the core are split (the page is the relay's, which never holds the core's
    secret: handoff.transfer)."""
    from consult.transfer.services import role, settings

    secret = current_app.config["SECRET_KEY"] if role() == "all" else settings().key
    return URLSafeTimedSerializer(secret, salt="handoff-external-link")


def issue_link(handoff: Handoff) -> str:
    days = HandoffSettings.current().link_days
    nonce = secrets.token_urlsafe(24)
    link = ExternalLink(handoff=handoff, nonce=nonce, expires_at=utcnow() + timedelta(days=days))
    db.session.add(link)
    return _serializer().dumps({"h": handoff.id, "n": nonce})


class LinkRefused(Exception):
    """The link cannot be used; the page says so and shows nothing of the case."""


def read_link(token: str) -> dict:
    """The link's handoff id and nonce ("h", "n"), if its signature holds and it is not older
    than the links live; LinkRefused otherwise."""
    max_age = HandoffSettings.current().link_days * 86400
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkRefused("expired") from exc
    except BadSignature as exc:
        raise LinkRefused("invalid") from exc
    if not isinstance(payload, dict):
        raise LinkRefused("invalid")
    return payload


def open_link(token: str, address: str | None) -> Handoff:
    """Check a link: signature, expiry (ours, in the database), revocation. Audits each use."""
    payload = read_link(token)
    link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.nonce == payload.get("n")))
    if link is None or link.handoff_id != payload.get("h"):
        raise LinkRefused("invalid")
    now = utcnow()
    if link.revoked_at is not None:
        raise LinkRefused("revoked")
    if link.expires_at <= now:
        raise LinkRefused("expired")
    link.uses += 1
    link.last_used_at = now
    audit.record(
        Actor(None, address, trusted=True), "external_link_use", "handoff", link.handoff_id
    )
    return link.handoff


def external_contact(handoff: Handoff, address: str | None) -> dict | None:
    """What an external body asked to call back sees: the 相談番号 and the citizen's phone
    numbers, as an internal officer does, while the request is open; each view is audited.

    Only the responses that need contact (CONTACT_RESPONSES, shared when the handoff was made);
    not the name or the mail address (a call needs neither). The audit row says who (the
    external body, by department id), from where and what (field names), never the values.
    """
    if handoff.response not in CONTACT_RESPONSES or not handoff.share_contact:
        return None
    if not handoff.is_active:
        return None
    citizen = handoff.ticket.citizen
    # 支援措置: never to an external body; it calls the centre instead.
    shown = citizen is not None and not citizen.protected
    phones = [p.number for p in citizen.phones] if shown else []
    audit.record(
        Actor(None, address, trusted=True),
        "external_view_contact",
        "handoff",
        handoff.id,
        f"department:{handoff.department_id} number,phones",
    )
    return {"number": handoff.ticket.number, "phones": phones}


def finish_external(handoff: Handoff, record: Record, author_name: str) -> None:
    """An external body answers in one go: taking the request and recording what it did."""
    author_name = clean_text(author_name, "ご担当者名", 120, required=True)
    full_name = f"{handoff.department.name} {author_name}"
    if handoff.state == HandoffState.REQUESTED:
        move(handoff, HandoffState.ACCEPTED)
        handoff.accepted_at = utcnow()
        handoff.accepted_by_name = full_name
    complete(handoff, None, record, author_name=full_name)


def decline_external(handoff: Handoff, reason: str) -> None:
    send_back(handoff, None, reason)
