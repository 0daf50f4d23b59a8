"""「FAQにする」: a draft from a closed case, redacted before anyone edits it."""

from __future__ import annotations

from dataclasses import dataclass, field

from consult import plugins
from consult.models import Status, Ticket
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, NotFound
from faq.models import FaqEntry
from faq.services.common import EDIT_ROLES, MAX_QUESTION
from faq.services.redaction import names_in_case, redact_text
from faq.services.workflow import create_entry


@dataclass
class DraftPreview:
    """What a draft from a case starts as: redacted text, and what was removed (for review)."""

    question: str
    answer: str
    category_id: int | None
    department_id: int | None
    spans: list = field(default_factory=list)


def _first_message(ticket: Ticket) -> str:
    for entry in ticket.timeline:
        if entry.kind.value == "message_in" and entry.body:
            return entry.body
    return ""


def draft_from_ticket(
    actor: Actor,
    ticket: Ticket,
    *,
    extra_answer: str | None = None,
    department_id: int | None = None,
    record_key: str | None = None,
) -> FaqEntry:
    """「FAQにする」: a draft prefilled from a closed case, redacted before anyone edits it.

    The hook for the handoff's 対応記録: pass what the department did as ``extra_answer`` (and its
    department as ``department_id``); it is appended to the answer and redacted the same way.
    """
    actor.require(*EDIT_ROLES)
    if ticket.status != Status.CLOSED:
        raise InvalidTransition("完了した相談だけをFAQにできます。")
    if ticket.citizen is not None and ticket.citizen.use_stopped:
        raise InvalidTransition("利用停止の申出がある相談者の相談は、FAQにできません。")
    if extra_answer is None:
        # The departments' records of what they did (handoff 対応記録), or the one asked for.
        records = [
            r for r in plugins.registry().case_records(ticket) if record_key in (None, r.key)
        ]
        if record_key and not records:
            raise NotFound("対応記録が見つかりません。")
        if records:
            extra_answer = "\n\n".join(r.text for r in records)
            departments = {r.department_id for r in records if r.department_id}
            if department_id is None and len(departments) == 1:
                department_id = departments.pop()
    audit.record(actor, "view", "ticket", ticket.number, detail="FAQ下書きの作成")
    names = names_in_case(ticket=ticket)
    first = _first_message(ticket)
    question_src = ticket.subject if not first else f"{ticket.subject}\n{first}"
    answer_src = ticket.resolution_summary or ""
    if extra_answer:
        answer_src = f"{answer_src}\n\n{extra_answer}".strip()
    # 支援措置: any protected person's whereabouts are removed before the redactor runs.
    from consult.services import protection

    secrets = protection.all_protected_secrets()
    question = redact_text(secrets.scrub(question_src), names)
    answer = redact_text(secrets.scrub(answer_src) or "（回答を記入してください）", names)
    notes = [
        {"field": where, "kind": s.kind, "label": s.label}
        for where, result in (("question", question), ("answer", answer))
        for s in result.spans
    ]
    entry = create_entry(
        actor,
        question=question.text[:MAX_QUESTION],
        answer=answer.text,
        category_id=ticket.category_id,
        department_id=department_id,
        source_ticket_ids=(ticket.id,),
        redaction_notes=notes,
    )
    return entry
