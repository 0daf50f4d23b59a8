"""Disposal of the citizens' voice of expired tickets (consult.services.retention).

A request's written answer (`citizen_request.answer_text`) repeats the 【文書回答】 timeline entry
and may name the citizen: it goes with the ticket's text. The request's kind, dates, deadline and
answer days stay (the reports' answer-days figures). Satisfaction answers hold no ticket link;
their free comments are emptied by month (`services.dispose_comments`). A published 「ご意見と
回答」 entry was redacted and approved, like an FAQ entry, and is kept.
"""

from __future__ import annotations

from consult.plugins import DisposalBatch, PersonalData
from consult.voice.models import CitizenRequest

HOLDS = (
    PersonalData(
        "citizen_request",
        ("answer_text",),
        "市への要望・市長への手紙への文書回答",
        "担当課職員の入力",
    ),
)


def dispose(batch: DisposalBatch) -> None:
    table = CitizenRequest.__table__
    condition = batch.among(table.c.ticket_id) & table.c.answer_text.is_not(None)
    grouped = batch.grouped(table, condition)
    result = batch.connection.execute(table.update().where(condition).values(answer_text=None))
    batch.count("request_answer", "要望・手紙への文書回答", result.rowcount, grouped)
