"""ご意見と回答: drafts from answered requests (redacted), a supervisor's approval, the public list.

The same gate as the FAQ: the redactor runs when the draft is made, and again at approval on
every text that would be published (Japanese and English); approval is refused while it finds
anything, and an author cannot approve their own entry.
"""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import EntryKind, Role
from consult.services import audit
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, NotFound, PermissionDenied
from consult.services.normalize import clean_text
from consult.timeutil import to_tokyo, utcnow
from consult.voice.models import CitizenRequest
from faq.models import FaqStatus
from faq.opinions.models import OpinionEntry
from faq.services import PublishBlocked, names_in_case, redact_text

EDIT_ROLES = (*DESK_ROLES, Role.ADMIN)
APPROVE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
MAX_TEXT = 5_000


def _citizen_words(item: CitizenRequest) -> str:
    """What the citizen asked: their first message, else the ticket's subject."""
    for entry in item.ticket.timeline:
        if entry.kind == EntryKind.MESSAGE_IN and entry.body.strip():
            return entry.body
    return item.ticket.subject


def _spans(entry: OpinionEntry) -> list:
    ticket = db.session.get(CitizenRequest, entry.request_id).ticket
    names = names_in_case(ticket=ticket)
    spans = []
    for text in (entry.opinion, entry.answer, entry.opinion_en, entry.answer_en):
        spans += list(redact_text(text or "", names).spans)
    return spans


def draft_from_request(actor: Actor, request_id: int) -> OpinionEntry:
    """A draft from an answered request: both texts through the redactor (with the case's
    own names), dated by the month of the answer only."""
    staff = actor.require(*EDIT_ROLES)
    item = db.session.get(CitizenRequest, request_id)
    if item is None:
        raise NotFound("要望・手紙が見つかりません。")
    if item.answered_at is None:
        raise InvalidTransition("回答を記録した要望・手紙だけを「ご意見と回答」にできます。")
    existing = db.session.scalar(sa.select(OpinionEntry).where(OpinionEntry.request_id == item.id))
    if existing is not None:
        return existing
    names = names_in_case(ticket=item.ticket)
    answered = to_tokyo(item.answered_at).date()
    entry = OpinionEntry(
        request_id=item.id,
        kind=item.kind.value,
        month=f"{answered.year:04d}-{answered.month:02d}",
        category_id=item.ticket.category_id,
        department_id=item.department_id,
        opinion=redact_text(_citizen_words(item), names).text[:MAX_TEXT],
        answer=redact_text(item.answer_text or "", names).text[:MAX_TEXT],
        author_id=staff.id if staff else None,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(actor, "create", "opinion_entry", entry.id)
    return entry


def get_entry(actor: Actor, entry_id: int) -> OpinionEntry:
    actor.require(*EDIT_ROLES)
    entry = db.session.get(OpinionEntry, entry_id)
    if entry is None:
        raise NotFound("「ご意見と回答」が見つかりません。")
    return entry


def list_entries(actor: Actor) -> list[OpinionEntry]:
    actor.require(*EDIT_ROLES)
    return list(
        db.session.scalars(sa.select(OpinionEntry).order_by(OpinionEntry.id.desc()).limit(300))
    )


def update(actor: Actor, entry: OpinionEntry, **texts: str | None) -> None:
    actor.require(*EDIT_ROLES)
    if entry.status != FaqStatus.DRAFT:
        raise InvalidTransition("下書きの間だけ編集できます。差し戻してから編集してください。")
    entry.opinion = clean_text(texts.get("opinion"), "ご意見", MAX_TEXT, required=True)
    entry.answer = clean_text(texts.get("answer"), "回答", MAX_TEXT, required=True)
    entry.opinion_en = clean_text(texts.get("opinion_en"), "ご意見（英語）", MAX_TEXT) or None
    entry.answer_en = clean_text(texts.get("answer_en"), "回答（英語）", MAX_TEXT) or None


def _move(entry: OpinionEntry, old: FaqStatus, new: FaqStatus, refusal: str) -> None:
    """One conditional UPDATE on the status read: two clicks at once move it once."""
    done = db.session.execute(
        sa.update(OpinionEntry)
        .where(OpinionEntry.id == entry.id, OpinionEntry.status == old)
        .values(status=new)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise InvalidTransition(refusal)
    entry.status = new


def submit(actor: Actor, entry: OpinionEntry) -> None:
    actor.require(*EDIT_ROLES)
    _move(entry, FaqStatus.DRAFT, FaqStatus.REVIEW, "下書きだけを承認依頼できます。")


def send_back(actor: Actor, entry: OpinionEntry) -> None:
    actor.require(*APPROVE_ROLES)
    _move(entry, FaqStatus.REVIEW, FaqStatus.DRAFT, "承認待ちのものだけを差し戻せます。")


def approve(actor: Actor, entry: OpinionEntry) -> None:
    """Publish: a supervisor who is not the author, with nothing personal left in any text."""
    actor.require(*APPROVE_ROLES)
    if entry.status != FaqStatus.REVIEW:
        raise InvalidTransition("承認待ちのものだけを承認できます。")
    if not actor.trusted and entry.author_id == actor.staff_id:
        raise PermissionDenied(
            "自分が作成したものは承認できません。別のセンター責任者に依頼してください。"
        )
    spans = _spans(entry)
    if spans:
        raise PublishBlocked(spans)
    _move(entry, FaqStatus.REVIEW, FaqStatus.PUBLISHED, "承認待ちのものだけを承認できます。")
    entry.approved_by_id = actor.staff_id
    entry.published_at = utcnow()
    audit.record(actor, "publish", "opinion_entry", entry.id)


def withdraw(actor: Actor, entry: OpinionEntry) -> None:
    actor.require(*APPROVE_ROLES)
    _move(entry, FaqStatus.PUBLISHED, FaqStatus.ARCHIVED, "公開中のものだけを取り下げられます。")


def _on_relay() -> bool:
    from consult.transfer.services import role

    return role() == "relay"


def public_months() -> list[str]:
    if _on_relay():  # the relay's read-only copy (faq.opinions.transfer)
        from faq.opinions import transfer

        return sorted({copy.month for copy in transfer.copies()}, reverse=True)
    return list(
        db.session.scalars(
            sa.select(OpinionEntry.month)
            .where(OpinionEntry.status == FaqStatus.PUBLISHED)
            .group_by(OpinionEntry.month)
            .order_by(OpinionEntry.month.desc())
        )
    )


def public_entries(month: str | None) -> list[OpinionEntry]:
    if _on_relay():
        from faq.opinions import transfer

        return [c for c in transfer.copies() if not month or c.month == month][:200]
    query = sa.select(OpinionEntry).where(OpinionEntry.status == FaqStatus.PUBLISHED)
    if month:
        query = query.where(OpinionEntry.month == month)
    return list(
        db.session.scalars(query.order_by(OpinionEntry.month.desc(), OpinionEntry.id).limit(200))
    )
