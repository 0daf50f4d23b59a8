"""Requests to the city (市への要望・市長への手紙): the department that answers one in writing is
named by its first handoff."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Department
from handoff.models import Handoff, HandoffState


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
        if item.handoff_id == handoff.id:
            item.department_id = None
            item.handoff_id = None
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
