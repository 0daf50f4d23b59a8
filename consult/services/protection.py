"""Protected persons (支援措置) and stop of use (利用停止): who may see or find a citizen.

A protected citizen (DV等支援措置) is someone whose whereabouts must never reach the person they
fled. While the flag is set, their address, phone numbers, email addresses and LINE link are
shown only to:

- supervisors (センター責任者), who set and lift the flag and run the case;
- the members of staff *named on the case*: the 担当 (assignee) of any of the person's tickets.

Decision (documented in the README): department officers, external bodies and the support room
are never "named". A handoff carries the person's name only, so their whereabouts cannot leave
the centre through a handoff, its mail or its external link; an officer who needs to reach the
person asks the 担当 or a supervisor.

Anyone else who looks the person up (the desk's match by name or phone, the ticket search, the
API) is answered as if there were no match; each such attempt is audited (`protected_search`)
and reported to the supervisors on the live channel and on their 今日 page.

A citizen whose use is stopped (利用停止) stays on their open cases, but their data is left out
of FAQ drafting, of searches by staff not named on their cases, of automatic answers and of
exports. Supervisors still find them, to lift the stop.

As a second line behind the pages that mask these fields, `scrub()` removes the hidden strings
from every response and every outgoing message (see consult/app.py and outbox.enqueue): a page
or an export that forgot the rule still does not leak.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    AuditEvent,
    Citizen,
    CitizenEmail,
    CitizenFlag,
    CitizenFlagEvent,
    CitizenPhone,
    Role,
    Staff,
    Ticket,
)
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import ValidationFailed
from consult.timeutil import utcnow

HIDDEN = "［非表示］"  # the second line's mark; pages say （非表示） themselves
MAX_REASON = 500
REPORT_DAYS = 7


# --- setting and lifting ----------------------------------------------------------------------


def _set_flag(actor: Actor, citizen: Citizen, flag: CitizenFlag, on: bool, reason: str) -> bool:
    actor.require(Role.SUPERVISOR)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("理由を入力してください。")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"理由は{MAX_REASON}文字以内で入力してください。")
    attribute = "protected" if flag == CitizenFlag.PROTECTED else "use_stopped"
    if getattr(citizen, attribute) == on:
        return False
    # One conditional UPDATE: two supervisors pressing at once record one change.
    changed = db.session.execute(
        sa.update(Citizen)
        .where(Citizen.id == citizen.id, getattr(Citizen, attribute).is_(not on))
        .values({attribute: on})
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(citizen, [attribute])
    if not changed:
        return False
    db.session.add(
        CitizenFlagEvent(
            citizen_id=citizen.id, flag=flag, is_set=on, reason=reason, staff_id=actor.staff_id
        )
    )
    action = {True: "flag_set", False: "flag_lift"}[on]
    audit.record(actor, action, "citizen", citizen.id, flag.value)
    db.session.flush()
    return True


def protect(actor: Actor, citizen: Citizen, reason: str) -> bool:
    """Set 支援措置 (supervisors only, with a reason). False when it was already set."""
    return _set_flag(actor, citizen, CitizenFlag.PROTECTED, True, reason)


def unprotect(actor: Actor, citizen: Citizen, reason: str) -> bool:
    return _set_flag(actor, citizen, CitizenFlag.PROTECTED, False, reason)


def stop_use(actor: Actor, citizen: Citizen, reason: str) -> bool:
    """Set 利用停止 (supervisors only, with a reason)."""
    return _set_flag(actor, citizen, CitizenFlag.USE_STOPPED, True, reason)


def resume_use(actor: Actor, citizen: Citizen, reason: str) -> bool:
    return _set_flag(actor, citizen, CitizenFlag.USE_STOPPED, False, reason)


def flag_history(actor: Actor, citizen: Citizen) -> list[CitizenFlagEvent]:
    """Who set or lifted the flags and why: supervisors only (the reason is sensitive)."""
    if not actor.may(Role.SUPERVISOR):
        return []
    return list(
        db.session.scalars(
            sa.select(CitizenFlagEvent)
            .where(CitizenFlagEvent.citizen_id == citizen.id)
            .order_by(CitizenFlagEvent.id)
        )
    )


# --- who may see ------------------------------------------------------------------------------


def _named_select(staff_id: int):
    """Citizen ids whose tickets name this member of staff as 担当."""
    return sa.select(Ticket.citizen_id).where(
        Ticket.assignee_id == staff_id, Ticket.citizen_id.is_not(None)
    )


def _is_supervisor(actor: Actor) -> bool:
    """Supervisors see protected persons. The command line and the worker (trusted, no staff)
    do not count as one here: `madoguchi ticket search` is answered like any other search."""
    return (
        actor.staff is not None
        and actor.integration is None
        and actor.staff.active
        and actor.staff.role == Role.SUPERVISOR
    )


def named_on_case(actor: Actor, citizen_id: int) -> bool:
    if actor.staff is None or actor.integration is not None:
        return False
    return (
        db.session.scalar(
            sa.select(sa.literal(1))
            .where(Ticket.citizen_id == citizen_id, Ticket.assignee_id == actor.staff.id)
            .limit(1)
        )
        is not None
    )


def may_see_whereabouts(actor: Actor, citizen: Citizen | None) -> bool:
    """Whether this actor may see the address, phones, emails and LINE link of this citizen."""
    if citizen is None or not citizen.protected:
        return True
    if actor.trusted and actor.staff is None:
        return True  # the system itself (the disclosure bundle of the person's own data)
    return _is_supervisor(actor) or named_on_case(actor, citizen.id)


def split_visible(actor: Actor, citizen_ids: Iterable[int]) -> tuple[set[int], set[int]]:
    """(hidden protected ids, hidden stopped ids) among these ids, for this actor: protected
    persons and those whose use is stopped, unless the actor is a supervisor or named on their
    case. Asked of these ids only (by primary key), then of the few flagged among them: a
    search's results are checked in about a millisecond at any size."""
    ids = {i for i in citizen_ids if i}
    if not ids or _is_supervisor(actor):
        return set(), set()
    rows = db.session.execute(
        sa.select(Citizen.id, Citizen.protected).where(
            Citizen.id.in_(ids), sa.or_(Citizen.protected, Citizen.use_stopped)
        )
    ).all()
    if rows and actor.staff is not None and actor.integration is None:
        named = set(
            db.session.scalars(
                _named_select(actor.staff.id).where(Ticket.citizen_id.in_([r.id for r in rows]))
            )
        )
        rows = [r for r in rows if r.id not in named]
    return {r.id for r in rows if r.protected}, {r.id for r in rows if not r.protected}


def report_search(actor: Actor, citizen_ids: Iterable[int], via: str) -> None:
    """A search reached a protected person it must not show: audit it and tell supervisors.

    The audit row names the citizen by id and the way (`via`), never the query; the live event
    carries ids only."""
    from consult.live import services as live

    for citizen_id in sorted(set(citizen_ids)):
        audit.record(actor, "protected_search", "citizen", citizen_id, f"via={via}")
        live.publish(
            "protected_search",
            ["role:supervisor"],
            {"citizen_id": citizen_id, "staff_id": actor.staff_id, "via": via[:40]},
        )


def recent_attempts(days: int = REPORT_DAYS, limit: int = 50) -> list[AuditEvent]:
    """The searches that reached a protected person, newest first (the supervisors' 今日)."""
    since = utcnow() - timedelta(days=days)
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "protected_search", AuditEvent.at >= since)
            .options(sa.orm.selectinload(AuditEvent.staff))
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )


def today_section(staff: Staff, now):
    """The supervisors' block of 今日: searches that reached a protected person."""
    if staff.role != Role.SUPERVISOR:
        return None
    return "consult/today/_protected.html", {"attempts": recent_attempts()}


# --- the second line: strings never to be shown ----------------------------------------------


@dataclass(frozen=True)
class Secrets:
    literals: tuple[str, ...]
    pattern: re.Pattern | None

    def scrub(self, text: str) -> str:
        if not text or self.pattern is None:
            return text
        return self.pattern.sub(HIDDEN, text)

    def scrub_json(self, text: str) -> str:
        """A JSON text scrubbed as its reader decodes it: "\\u7d2b\\u96f2" is 紫雲 to the client,
        and the raw text's pattern would never see it. Unchanged when nothing is hidden."""
        if not text or self.pattern is None:
            return text
        try:
            data = json.loads(text)
        except ValueError:
            return self.scrub(text)
        changed = False

        def clean(value):
            nonlocal changed
            if isinstance(value, str):
                scrubbed = self.scrub(value)
                changed = changed or scrubbed != value
                return scrubbed
            if isinstance(value, list):
                return [clean(item) for item in value]
            if isinstance(value, dict):
                return {clean(key): clean(item) for key, item in value.items()}
            return value

        cleaned = clean(data)
        if not changed:
            return text
        return json.dumps(cleaned, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")

    def __bool__(self) -> bool:
        return self.pattern is not None


_DIGIT_CLASS = {str(d): f"[{d}{chr(0xFF10 + d)}]" for d in range(10)}
_SEPARATOR = r"[\s\-‐‑–—−－ー()（）.]{0,2}"


def _phone_pattern(number: str) -> str:
    """Digits in any width, with any separators between them (087-839-2111, ０８７（８３９）…)."""
    digits = [c for c in number if c.isdigit()]
    return r"(?<![0-9０-９])" + _SEPARATOR.join(_DIGIT_CLASS[d] for d in digits) + r"(?![0-9０-９])"


def _literal_pattern(text: str) -> str:
    """The text as typed, and its full-width/half-width twin."""
    variants = {text, unicodedata.normalize("NFKC", text)}
    return "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))


def _secrets_of_select(citizens: sa.Select) -> Secrets:
    """The whereabouts of the citizens `citizens` (a select of their ids) selects: the kernel's
    fields in one query (this runs on every response: the ids, the addresses, phones and
    emails together), then the plugins' (LINE ids) when there is anyone."""
    from consult import plugins

    fields = sa.union_all(
        sa.select(Citizen.id, sa.literal_column("'address'"), Citizen.address).where(
            Citizen.id.in_(citizens)
        ),
        sa.select(CitizenPhone.citizen_id, sa.literal_column("'phone'"), CitizenPhone.number).where(
            CitizenPhone.citizen_id.in_(citizens)
        ),
        sa.select(
            CitizenEmail.citizen_id, sa.literal_column("'email'"), CitizenEmail.address
        ).where(CitizenEmail.citizen_id.in_(citizens)),
    )
    ids: list[int] = []  # one address row per citizen, null or not
    found: dict[str, list[str]] = {"address": [], "phone": [], "email": []}
    for citizen_id, kind, value in db.session.execute(fields):
        if kind == "address":
            ids.append(citizen_id)
        found[kind].append(value)
    if not ids:
        return Secrets((), None)
    ids.sort()
    literals = [a.strip() for a in found["address"] if a and len(a.strip()) >= 4]
    phones = [n for n in found["phone"] if sum(c.isdigit() for c in n) >= 6]
    literals += found["email"]
    # Outside an app context (a script): the kernel's own fields only.
    with contextlib.suppress(RuntimeError):
        literals += plugins.registry().citizen_secrets(ids)
    parts = [_literal_pattern(s) for s in dict.fromkeys(literals) if s]
    parts += [_phone_pattern(n) for n in dict.fromkeys(phones)]
    if not parts:
        return Secrets((), None)
    return Secrets(tuple(literals + phones), re.compile("|".join(parts), re.IGNORECASE))


def hidden_secrets(actor: Actor) -> Secrets:
    """What this actor must never be shown: the whereabouts of the protected persons they may
    not see. One small query when nobody is protected (the usual case), two when someone is."""
    if _is_supervisor(actor):
        return Secrets((), None)
    query = sa.select(Citizen.id).where(Citizen.protected)
    if actor.staff is not None and actor.integration is None:
        query = query.where(Citizen.id.not_in(_named_select(actor.staff.id)))
    return _secrets_of_select(query)


def all_protected_secrets() -> Secrets:
    """Every protected person's whereabouts: for what leaves the centre (mail, LINE, FAQ,
    webhook bodies)."""
    return _secrets_of_select(sa.select(Citizen.id).where(Citizen.protected))


def masked_contact(actor: Actor, citizen: Citizen | None) -> dict:
    """What a page shows of a citizen's whereabouts: the values, or nothing and `hidden`."""
    if citizen is None:
        return {"hidden": False, "phones": [], "emails": [], "address": None}
    if not may_see_whereabouts(actor, citizen):
        return {"hidden": True, "phones": [], "emails": [], "address": None}
    return {
        "hidden": False,
        "phones": [p.number for p in citizen.phones],
        "emails": [e.address for e in citizen.emails],
        "address": citizen.address,
    }
