"""Requests to the city (市への要望・市長への手紙): the department that answers one in writing is
named by its first handoff, and its officer's written answer completes the 文書回答 handoff
that asked for it."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Department, Role
from consult.services.actor import Actor
from handoff.models import ACTIVE_STATES, Handoff, HandoffState, Response
from handoff.services.common import lock
from handoff.services.officer import Record, accept, finish

# The 対応記録 of a 文書回答 handoff completed by the written answer: the answer itself is on the
# ticket's timeline (【文書回答】) and on the request, not copied into the handoff's record.
ANSWER_RECORD = Record(
    action="要望・手紙への文書回答を作成し、記録しました。",
    outcome="回答済み（本文は相談の経過の【文書回答】にあります）。",
)


def name_request_department(handoff: Handoff, **_kwargs) -> None:
    """The handoff-changed receiver: the first department a request or letter is handed to
    (and that does not send it back) is the one responsible for its written answer."""
    from consult.voice import services as voice

    if handoff.ticket is None or handoff.department is None or handoff.department.is_external:
        return
    item = voice.request_for(handoff.ticket)
    if item is None:
        return
    if handoff.state in (HandoffState.DECLINED, HandoffState.CANCELLED):
        voice.clear_department(item, handoff.id)
        return
    voice.set_department(item, handoff.department_id, handoff.id)


def name_marked_request_department(item, **_kwargs) -> None:
    """The citizen-request-marked receiver: a case registered after it was handed on takes
    the department of its first live handoff, as if the handoff had come after."""
    first = db.session.scalar(
        sa.select(Handoff)
        .join(Department, Handoff.department_id == Department.id)
        .where(
            Handoff.ticket_id == item.ticket_id,
            Handoff.state.not_in((HandoffState.DECLINED, HandoffState.CANCELLED)),
            Department.is_external.is_(False),
        )
        .order_by(Handoff.created_at, Handoff.id)
        .limit(1)
    )
    if first is not None:
        from consult.voice import services as voice

        voice.set_department(item, first.department_id, first.id)


def written_handoff_of(item) -> Handoff | None:
    """The handoff a written answer completes: the live 文書回答 handoff of the request's ticket
    to the request's department (the one that named the department first, if several)."""
    if item.department_id is None:
        return None
    return db.session.scalar(
        sa.select(Handoff)
        .where(
            Handoff.ticket_id == item.ticket_id,
            Handoff.department_id == item.department_id,
            Handoff.response == Response.WRITTEN,
            Handoff.state.in_(ACTIVE_STATES),
        )
        .order_by((Handoff.id == item.handoff_id).desc(), Handoff.created_at, Handoff.id)
        .limit(1)
    )


def complete_answered_request_handoff(item, actor: Actor | None = None, **_kwargs) -> None:
    """The citizen-request-answered receiver: the department's officer answered the request
    in writing (on /requests/<id>), which is what the 文書回答 handoff asked of them; the
    handoff is completed as their 対応記録 on the handoff page would (accepted first when it
    was not yet), so the inbox and the consultant's queue move on.

    Only the department's own officer's answer does it. An answer the desk records does not
    say the department did the work, and the department's figures must not say so either: the
    handoff stays, and the centre cancels it or the officer records it."""
    if actor is None or actor.staff is None or actor.staff.role != Role.OFFICER:
        return
    handoff = written_handoff_of(item)
    if handoff is None or actor.staff.department_id != handoff.department_id:
        return
    if not lock(handoff).is_active:  # sent back or cancelled a moment ago: nothing to complete
        return
    if handoff.state == HandoffState.REQUESTED:
        accept(actor, handoff)
    finish(actor, handoff, ANSWER_RECORD)
