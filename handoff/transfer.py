"""The external bodies' link (/x/handoff/<token>) on the relay, when split (consult.transfer).

An external body (a prefectural centre, a 社協) reads the request and answers from the internet,
so the page is the relay's. The core sends the relay, for each link that may still be opened,
what the page shows (`handoff.links`, a snapshot: the request, its due time and state, the
summary, the 相談番号 and phone numbers only where the handoff shares them, the joint session);
the relay keeps it as RelayCopy rows, replaced at each change, and gone when the link is revoked,
expired or the handoff closed. What the external body does there (opening the page, its record,
its refusal, its answer to the joint session) the relay keeps only as items for the core
(`handoff.external`), which applies them through the same services as on one server, and audits
each opening and each view of the contact there. The signature of the link uses the relay key
when split (handoff.services.external._serializer).

Personal data on the relay: the summary and, when shared, the phone numbers, while the link may
be opened; the record typed by the external body, until the core has taken it.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa

from consult.extensions import db
from consult.services.errors import DomainError
from consult.timeutil import utcnow
from consult.transfer.models import RelayCopy

log = logging.getLogger("madoguchi.handoff")

LINKS = "handoff.links"
EXTERNAL = "handoff.external"


def _role() -> str:
    from consult.transfer.services import role

    return role()


# --- the core: what the relay shows -------------------------------------------------------------


def _page(link) -> dict | None:
    from handoff import joint
    from handoff.services import CONTACT_RESPONSES

    handoff = link.handoff
    contact = None
    if handoff.response in CONTACT_RESPONSES and handoff.share_contact and handoff.is_active:
        citizen = handoff.ticket.citizen
        shown = citizen is not None and not citizen.protected  # 支援措置: never
        contact = {
            "number": handoff.ticket.number,
            "phones": [p.number for p in citizen.phones] if shown else [],
        }
    session = handoff.session
    return {
        "department": handoff.department.name,
        "response_label": handoff.response_label,
        "due_at": handoff.due_at.isoformat() if handoff.due_at else None,
        "state_label": handoff.state_label,
        "summary": handoff.summary,
        "active": handoff.is_active,
        "contact": contact,
        "session": None
        if session is None or not session.is_live
        else {
            "id": session.id,
            "span": joint.span_text(session),
            "mode_label": session.mode_label,
            "meeting_url": session.meeting_url,
            "answer": session.answer.value,
            "answer_label": session.answer_label,
            "answered_by_name": session.answered_by_name,
            "answered_at": session.answered_at.isoformat() if session.answered_at else None,
            "answer_note": session.answer_note,
            "ics": joint.invitation(handoff, session, "REQUEST", stamp=session.updated_at),
        },
    }


def snapshot() -> dict | None:
    """On the core: every link that may be opened (or refused as revoked or expired)."""
    from handoff.models import ExternalLink

    if _role() != "core":
        return None
    now = utcnow()
    links = db.session.scalars(
        sa.select(ExternalLink)
        .where(ExternalLink.expires_at > now - timedelta(days=7))
        .order_by(ExternalLink.id)
    )
    found = []
    for link in links:
        usable = link.revoked_at is None and link.expires_at > now
        found.append(
            {
                "id": link.id,
                "nonce": link.nonce,
                "handoff_id": link.handoff_id,
                "expires_at": link.expires_at.isoformat(),
                "revoked": link.revoked_at is not None,
                "page": _page(link) if usable else None,
            }
        )
    return {"links": found}


def apply_links(payload: dict) -> None:
    """On the relay: the pages as the core has them now."""
    db.session.execute(sa.delete(RelayCopy).where(RelayCopy.kind == LINKS))
    for item in payload.get("links", []):
        db.session.add(RelayCopy(kind=LINKS, ref=int(item["id"]), data=item))
    db.session.flush()


# --- the relay: the page ------------------------------------------------------------------------


def open_copy(token: str) -> RelayCopy:
    """The relay's copy of a link's page; services.LinkRefused as on one server."""
    from handoff.services import LinkRefused, read_link

    payload = read_link(token)
    nonce = str(payload.get("n") or "")
    found = None
    for row in db.session.scalars(sa.select(RelayCopy).where(RelayCopy.kind == LINKS)):
        if hmac.compare_digest(str(row.data.get("nonce", "")), nonce):
            found = row
    if found is None or found.data.get("handoff_id") != payload.get("h"):
        raise LinkRefused("invalid")
    if found.data.get("revoked"):
        raise LinkRefused("revoked")
    if datetime.fromisoformat(found.data["expires_at"]) <= utcnow() or not found.data.get("page"):
        raise LinkRefused("expired")
    return found


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def as_handoff(copy: RelayCopy) -> SimpleNamespace:
    """The page's data with the names the template reads from a Handoff."""
    page = copy.data["page"]
    session = page.get("session")
    return SimpleNamespace(
        department=SimpleNamespace(name=page["department"]),
        response_label=page["response_label"],
        due_at=_when(page.get("due_at")),
        state_label=page["state_label"],
        summary=page["summary"],
        is_active=bool(page.get("active")),
        session=None
        if session is None
        else SimpleNamespace(
            id=session["id"],
            is_live=True,
            span=session["span"],
            mode_label=session["mode_label"],
            meeting_url=session.get("meeting_url"),
            answer=SimpleNamespace(value=session["answer"]),
            answer_label=session["answer_label"],
            answered_by_name=session.get("answered_by_name"),
            answered_at=_when(session.get("answered_at")),
            answer_note=session.get("answer_note"),
        ),
    )


def record_on_relay(copy: RelayCopy, action: str, address: str | None, **fields) -> None:
    """On the relay: what the external body did, as an item for the core (in the request's
    transaction). A record or a refusal closes the relay's page at once."""
    from consult.transfer import services as transfer

    item_id = f"{EXTERNAL}:{uuid.uuid4().hex}"
    transfer.enqueue(
        EXTERNAL,
        item_id,
        {
            "nonce": copy.data["nonce"],
            "handoff_id": copy.data["handoff_id"],
            "action": action,
            "address": (address or "")[:64],
            "contact": bool(copy.data["page"].get("contact")),
            **fields,
        },
    )
    if action in ("finish", "decline"):
        data = dict(copy.data)
        data["page"] = {**data["page"], "active": False, "contact": None}
        copy.data = data


# --- the core: applying what the external body did ----------------------------------------------


def apply_external(payload: dict) -> None:
    """On the core: each opening audited (and its view of the contact); a record, a refusal or
    an answer to the joint session applied as on one server, unless the link was revoked since
    or the handoff closed (then nothing changes; the centre sees the state it is in)."""
    from consult.services import audit
    from consult.services.actor import Actor
    from handoff import joint, services
    from handoff.models import ExternalLink

    link = db.session.scalar(
        sa.select(ExternalLink).where(ExternalLink.nonce == str(payload["nonce"]))
    )
    if link is None or link.handoff_id != payload.get("handoff_id"):
        return
    address = payload.get("address") or None
    external = Actor(None, address, trusted=True)
    handoff = link.handoff
    action = payload.get("action")
    if action == "open":
        link.uses += 1
        link.last_used_at = utcnow()
        audit.record(external, "external_link_use", "handoff", link.handoff_id)
        if payload.get("contact"):
            audit.record(
                external,
                "external_view_contact",
                "handoff",
                handoff.id,
                f"department:{handoff.department_id} number,phones",
            )
        return
    if link.revoked_at is not None or not handoff.is_active:
        log.info("handoff %s: an external answer came after the link closed; ignored", handoff.id)
        return
    try:
        with db.session.begin_nested():
            if action == "finish":
                services.finish_external(
                    handoff,
                    services.Record(
                        action=payload.get("record_action") or "",
                        outcome=payload.get("outcome") or "",
                        follow_up=payload.get("follow_up") or "",
                        follow_up_by=payload.get("follow_up_by") or "",
                    ),
                    payload.get("author_name") or "",
                )
            elif action == "decline":
                services.decline_external(handoff, payload.get("reason") or "")
            elif action == "session":
                joint.answer(
                    handoff,
                    accepted=bool(payload.get("accepted")),
                    note=payload.get("note"),
                    by_name=payload.get("by_name") or "",
                )
    except DomainError as refused:
        # The relay checked the same form; what the core refuses now (the state changed in
        # between) is not retried, and the centre sees the handoff as it is.
        log.info("handoff %s: an external answer was refused (%s)", handoff.id, refused)
