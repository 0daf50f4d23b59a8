"""Who sees a handoff and who acts on it: the desk sees every one, an officer only their own
department's; the citizen's contact is shown only when the response needs it, and audited."""

from __future__ import annotations

from consult.extensions import db
from consult.models import Role, Staff
from consult.services import audit
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound, PermissionDenied
from handoff.models import Handoff


def _may_see(actor: Actor, handoff: Handoff) -> bool:
    if actor.trusted:
        return True
    if actor.integration is not None:  # an API token: the desk's view, by its scopes
        return actor.may(*DESK_ROLES)
    staff = actor.staff
    if staff is None or not staff.active:
        return False
    if staff.role in DESK_ROLES:
        return True
    return staff.role == Role.OFFICER and staff.department_id == handoff.department_id


def get(actor: Actor, handoff_id: int) -> Handoff:
    handoff = db.session.get(Handoff, handoff_id)
    # The same answer for "does not exist" and "not yours": nothing leaks about other cases.
    if handoff is None or not _may_see(actor, handoff):
        raise NotFound("引継ぎが見つかりません。")
    return handoff


def contact_for(actor: Actor, handoff: Handoff) -> dict | None:
    """The citizen's contact, when the response needs it; each view is audited."""
    if not handoff.share_contact or handoff.ticket.citizen is None:
        return None
    citizen = handoff.ticket.citizen
    if citizen.protected:
        # 支援措置: a handoff never carries a protected person's whereabouts (officers are not
        # named on the case); the officer reaches the person through the centre.
        audit.record(actor, "view_contact", "handoff", handoff.id, "name")
        return {"name": citizen.name, "phones": [], "emails": [], "protected": True}
    audit.record(actor, "view_contact", "handoff", handoff.id, "name,phones,emails")
    return {
        "name": citizen.name,
        "phones": [p.number for p in citizen.phones],
        "emails": [e.address for e in citizen.emails],
    }


def require_officer(actor: Actor, handoff: Handoff) -> Staff | None:
    if actor.trusted:
        return actor.staff
    if actor.integration is not None:  # a department's own system, through the API
        if Role.OFFICER in actor.grants and actor.department_id == handoff.department_id:
            return None
        raise PermissionDenied("この引継ぎを操作する権限がありません。")
    staff = actor.staff
    if staff is None or staff.role != Role.OFFICER or staff.department_id != handoff.department_id:
        raise PermissionDenied("この引継ぎを操作する権限がありません。")
    return staff
