"""What the pages list: the officer's inbox, where an officer goes, a ticket's handoffs, what
the citizen is told, and the 対応記録 offered to an FAQ draft."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from consult import plugins
from consult.extensions import db
from consult.models import Role, Staff, Ticket
from consult.services import calendar
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound
from consult.timeutil import utcnow
from handoff.models import ACTIVE_STATES, Handoff, HandoffState, Response

INBOX_TABS = {
    "new": "新着",
    "accepted": "対応中",
    "overdue": "期限超過",
    "done": "完了",
}


def inbox(actor: Actor, tab: str, *, before_id: int | None = None, limit: int = 50):
    """An officer's department inbox (a desk member may look at any department's)."""
    staff = actor.require(Role.OFFICER, *DESK_ROLES)
    query = sa.select(Handoff)
    if staff is not None and staff.role == Role.OFFICER:
        query = query.where(Handoff.department_id == staff.department_id)
    now = utcnow()
    if tab == "new":
        query = query.where(Handoff.state == HandoffState.REQUESTED)
    elif tab == "accepted":
        query = query.where(
            Handoff.state.in_(
                (HandoffState.ACCEPTED, HandoffState.ON_THE_WAY, HandoffState.ARRIVED)
            )
        )
    elif tab == "overdue":
        query = query.where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < now)
    elif tab == "done":
        query = query.where(Handoff.state.in_((HandoffState.DONE, HandoffState.DECLINED)))
    else:
        raise NotFound("一覧が見つかりません。")
    if before_id:
        query = query.where(Handoff.id < before_id)
    query = query.order_by(Handoff.id.desc()).limit(limit + 1)
    rows = list(
        db.session.scalars(
            query.options(
                sa.orm.selectinload(Handoff.ticket).selectinload(Ticket.assignee),
                sa.orm.selectinload(Handoff.department),
                sa.orm.selectinload(Handoff.created_by),
            )
        )
    )
    more = len(rows) > limit
    return rows[:limit], (rows[limit - 1].id if more else None)


def inbox_counts(actor: Actor) -> dict[str, int]:
    staff = actor.require(Role.OFFICER, *DESK_ROLES)
    base = sa.select(sa.func.count(Handoff.id))
    if staff is not None and staff.role == Role.OFFICER:
        base = base.where(Handoff.department_id == staff.department_id)
    now = utcnow()
    return {
        "new": db.session.scalar(base.where(Handoff.state == HandoffState.REQUESTED)),
        "overdue": db.session.scalar(
            base.where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < now)
        ),
    }


@dataclass(frozen=True)
class WhereToGo:
    """Where an officer asked to come (来庁して対応) goes: the room of the counter visit, the
    reception number the citizen is called by, and the consultant's display name (表示名)."""

    room: int | None
    reception_number: int | None
    consultant: str | None


def _consultant_of(handoff: Handoff) -> Staff | None:
    return handoff.ticket.assignee or handoff.created_by


def where_to_go(handoffs: list[Handoff]) -> dict[int, WhereToGo]:
    """{handoff id: WhereToGo} for the come-to-counter handoffs among these, in one lookup.

    The visit comes through the plugin contract (the counter's `visit_lookup`), so the handoff
    never imports the counter; a ticket with no visit (a phone call) still names the consultant.
    """
    visits = [h for h in handoffs if h.response == Response.VISIT]
    found = plugins.registry().visits([h.ticket for h in visits])
    places = {}
    for handoff in visits:
        info = found.get(handoff.ticket_id)
        consultant = _consultant_of(handoff)
        places[handoff.id] = WhereToGo(
            room=info.room if info else None,
            reception_number=info.reception_number if info else None,
            consultant=consultant.display_name if consultant else None,
        )
    return places


def for_ticket(ticket: Ticket) -> list[Handoff]:
    return list(
        db.session.scalars(
            sa.select(Handoff)
            .where(Handoff.ticket_id == ticket.id)
            .order_by(Handoff.id)
            .options(sa.orm.selectinload(Handoff.department), sa.orm.selectinload(Handoff.session))
        )
    )


def live_states(ticket_ids: list[int]) -> dict[int, list[Handoff]]:
    """The open handoffs of the tickets on a page (the consultant's queue polls this)."""
    if not ticket_ids:
        return {}
    rows = db.session.scalars(
        sa.select(Handoff)
        .where(Handoff.ticket_id.in_(ticket_ids), Handoff.state.in_(ACTIVE_STATES))
        .order_by(Handoff.id)
        .options(sa.orm.selectinload(Handoff.department))
    )
    found: dict[int, list[Handoff]] = {}
    for handoff in rows:
        found.setdefault(handoff.ticket_id, []).append(handoff)
    return found


def citizen_expectation(handoff: Handoff) -> str:
    """What the counter tells the citizen about when the department will answer."""
    return calendar.expected_answer_text(handoff.due_at)


def case_records(ticket: Ticket) -> list[plugins.CaseRecord]:
    """The 対応記録 of a ticket's finished handoffs, for an FAQ draft (consult's registry)."""
    records = []
    for handoff in for_ticket(ticket):
        if handoff.state != HandoffState.DONE:
            continue
        lines = [
            f"【{handoff.department.name}の対応】",
            f"対応内容：{handoff.record_action}",
            f"結果：{handoff.record_outcome}",
        ]
        if handoff.record_follow_up:
            lines.append(f"今後の対応：{handoff.record_follow_up}")
        records.append(
            plugins.CaseRecord(
                f"handoff:{handoff.id}",
                "\n".join(lines),
                handoff.department_id,
                label=f"{handoff.department.name}の対応記録",
            )
        )
    return records
