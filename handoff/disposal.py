"""Disposal of the handoffs of expired tickets (consult.services.retention).

A handoff's words are personal data: the summary the centre wrote for the department, the
reason of a bounce, and the 対応記録 (action, outcome, follow-up and who does it); the name the
external body's person gave when accepting through a link too. The row stays without them: its
department, state, mode and times make the response-time reports (handoff.reports, rollup).
"""

from __future__ import annotations

from consult.plugins import DisposalBatch, PersonalData
from handoff.models import Handoff

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
