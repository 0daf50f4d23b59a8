"""Disposal of the handoffs of expired tickets (consult.services.retention).

A handoff's words are personal data: the summary the centre wrote for the department, the
reason of a bounce, and the 対応記録 (action, outcome, follow-up and who does it); the name the
external body's person gave when accepting through a link too. The row stays without them: its
department, state, mode and times make the response-time reports (handoff.reports, rollup).
"""

from __future__ import annotations

import sqlalchemy as sa

from consult.plugins import DisposalBatch, PersonalData
from handoff.models import Handoff, JointSession

HOLDS = (
    PersonalData(
        "handoff",
        (
            "summary",
            "decline_reason",
            "record_action",
            "record_outcome",
            "record_follow_up",
            "record_follow_up_by",
            "accepted_by_name",
        ),
        "引継ぎの概要・対応記録",
        "相談員・担当課職員・関係機関の入力",
    ),
    PersonalData(
        "joint_session",
        ("answer_note", "answered_by_name"),
        "合同相談への回答（希望の日時・回答者名）",
        "担当課職員・関係機関の入力",
    ),
)


def dispose(batch: DisposalBatch) -> None:
    table = Handoff.__table__
    condition = batch.among(table.c.ticket_id)
    grouped = batch.grouped(table, condition)
    result = batch.connection.execute(
        table.update()
        .where(condition)
        .values(
            summary="",
            decline_reason=None,
            record_action=None,
            record_outcome=None,
            record_follow_up=None,
            record_follow_up_by=None,
            accepted_by_name=None,
        )
    )
    batch.count("handoff_text", "引継ぎの概要・対応記録", result.rowcount, grouped)
    # Joint sessions (handoff.joint): the invitee's note and name; the time and mode stay.
    sessions = JointSession.__table__
    of_batch = sa.select(table.c.id).where(condition)
    result = batch.connection.execute(
        sessions.update()
        .where(
            sessions.c.handoff_id.in_(of_batch),
            sa.or_(sessions.c.answer_note.is_not(None), sessions.c.answered_by_name.is_not(None)),
        )
        .values(answer_note=None, answered_by_name=None)
    )
    batch.count("joint_session_text", "合同相談への回答", result.rowcount)
