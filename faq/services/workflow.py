"""Entries and their workflow: 下書き → 承認待ち → 公開中 → 公開終了.

A supervisor or administrator who is not the entry's author approves; approval is refused while
the redactor still finds personal data in the text. Every save and every transition appends a
revision, taken with a conditional UPDATE so that two requests at once cannot both pass.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Category, Department
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, PermissionDenied, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import utcnow
from faq.models import FaqEntry, FaqRevision, FaqSource, FaqStatus, Visibility
from faq.services.common import (
    APPROVE_ROLES,
    EDIT_ROLES,
    MAX_ANSWER,
    MAX_KEYWORDS,
    MAX_QUESTION,
    PublishBlocked,
    changed,
)
from faq.services.redaction import remaining_personal_data


def _keywords(value: str | None) -> str:
    words = [w.strip() for w in re.split(r"[,、，\s]+", value or "") if w.strip()]
    return clean_text(",".join(dict.fromkeys(words)), "キーワード", MAX_KEYWORDS)


def _check_refs(category_id: int | None, department_id: int | None) -> None:
    if category_id and db.session.get(Category, category_id) is None:
        raise ValidationFailed("分類が見つかりません。")
    if department_id and db.session.get(Department, department_id) is None:
        raise ValidationFailed("担当課が見つかりません。")


ALREADY = {
    FaqStatus.DRAFT: "このFAQはすでに下書きに戻されています。",
    FaqStatus.REVIEW: "このFAQはすでに承認を依頼されています。",
    FaqStatus.PUBLISHED: "このFAQはすでに公開されています。",
    FaqStatus.ARCHIVED: "このFAQは既に公開終了しています。",
}
CHANGED_MEANWHILE = (
    "このFAQはほかの職員が先に変更しました。内容を確かめてから、もう一度操作してください。"
)


EDITED_MEANWHILE = (
    "ほかの職員が先に変更しました。入力した内容はこの画面に残っています。"
    "FAQの詳細で最新の内容を確かめてから、もう一度保存してください。"
)


def _hold(entry: FaqEntry, target: FaqStatus | None = None) -> None:
    """Take the entry at the status and revision this request read, with one conditional UPDATE.

    A check of the status followed by a write lets two requests at once both through (on
    PostgreSQL both read 承認待ち before either committed): two supervisors approving together
    wrote the same revision number twice, and an approval could publish an edit saved after its
    personal-data check. Here the second one waits for the first one's commit, matches nothing
    and is told what happened; the winner holds the row until its own commit.
    """
    db.session.flush()
    seen_status, seen_revision = entry.status, entry.revision
    held = db.session.execute(
        sa.update(FaqEntry)
        .where(
            FaqEntry.id == entry.id,
            FaqEntry.status == seen_status,
            FaqEntry.revision == seen_revision,
        )
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(entry)
    if held != 1:
        # The same step taken by someone else first (the usual double press) says just that.
        already = target is not None and entry.status == target
        raise InvalidTransition(ALREADY[target] if already else CHANGED_MEANWHILE)


def _require(entry: FaqEntry, allowed: FaqStatus, target: FaqStatus, refusal: str) -> None:
    if entry.status == target:
        raise InvalidTransition(ALREADY[target])
    if entry.status != allowed:
        raise InvalidTransition(refusal)


def _revise(actor: Actor, entry: FaqEntry, action: str) -> None:
    entry.updated_at = utcnow()
    number = (
        db.session.scalar(
            sa.select(sa.func.max(FaqRevision.number)).where(FaqRevision.entry_id == entry.id)
        )
        or 0
    ) + 1
    entry.revision = number
    db.session.add(
        FaqRevision(
            entry_id=entry.id,
            number=number,
            question=entry.question,
            answer=entry.answer,
            keywords=entry.keywords,
            status=entry.status,
            visibility=entry.visibility,
            editor_id=actor.staff_id,
            action=action,
        )
    )
    changed(entry)
    audit.record(actor, action if action in audit.ACTION_LABELS else "update", "faq", entry.id)


def create_entry(
    actor: Actor,
    *,
    question: str,
    answer: str,
    category_id: int | None = None,
    department_id: int | None = None,
    keywords: str = "",
    visibility: Visibility | str = Visibility.STAFF,
    source_ticket_ids: tuple[int, ...] = (),
    redaction_notes: list | None = None,
) -> FaqEntry:
    """A new draft. Administrators may also write entries directly (they still need approval)."""
    actor.require(*EDIT_ROLES)
    try:
        visibility = Visibility(visibility)
    except ValueError:
        raise ValidationFailed("公開範囲の選択肢から選んでください。") from None
    _check_refs(category_id, department_id)
    entry = FaqEntry(
        question=clean_text(question, "質問", MAX_QUESTION, required=True),
        answer=clean_text(answer, "回答", MAX_ANSWER, required=True),
        keywords=_keywords(keywords),
        category_id=category_id,
        department_id=department_id,
        visibility=visibility,
        status=FaqStatus.DRAFT,
        author_id=actor.staff_id,
        redaction_notes=redaction_notes or [],
    )
    db.session.add(entry)
    for ticket_id in source_ticket_ids:
        entry.sources.append(FaqSource(ticket_id=ticket_id))
    db.session.flush()
    _revise(actor, entry, "create")
    return entry


def update_entry(
    actor: Actor,
    entry: FaqEntry,
    *,
    question: str,
    answer: str,
    category_id: int | None,
    department_id: int | None,
    keywords: str,
    visibility: Visibility | str,
    seen_revision: int | None = None,
) -> FaqEntry:
    """Save an edit. An edit to a published entry takes it back to review: it needs approval.

    `seen_revision` is the revision the edit page showed. Two editors who opened the page at
    different times each read the newest revision when saving, so the later save silently
    replaced the earlier one; with the revision from the form, it is refused instead.
    """
    actor.require(*EDIT_ROLES)
    if entry.status == FaqStatus.ARCHIVED:
        raise InvalidTransition("公開終了したFAQは編集できません。")
    if seen_revision is not None and seen_revision != entry.revision:
        raise InvalidTransition(EDITED_MEANWHILE)
    try:
        visibility = Visibility(visibility)
    except ValueError:
        raise ValidationFailed("公開範囲の選択肢から選んでください。") from None
    _check_refs(category_id, department_id)
    _hold(entry)
    entry.question = clean_text(question, "質問", MAX_QUESTION, required=True)
    entry.answer = clean_text(answer, "回答", MAX_ANSWER, required=True)
    entry.keywords = _keywords(keywords)
    entry.category_id = category_id
    entry.department_id = department_id
    entry.visibility = visibility
    if entry.status == FaqStatus.PUBLISHED:
        entry.status = FaqStatus.REVIEW
        entry.approved_by_id = None
    _revise(actor, entry, "update")
    return entry


def submit(actor: Actor, entry: FaqEntry) -> None:
    actor.require(*EDIT_ROLES)
    _require(entry, FaqStatus.DRAFT, FaqStatus.REVIEW, "下書きのFAQだけを承認依頼できます。")
    _hold(entry, FaqStatus.REVIEW)
    entry.status = FaqStatus.REVIEW
    _revise(actor, entry, "submit")


def send_back(actor: Actor, entry: FaqEntry) -> None:
    actor.require(*APPROVE_ROLES)
    _require(entry, FaqStatus.REVIEW, FaqStatus.DRAFT, "承認待ちのFAQだけを差し戻せます。")
    _hold(entry, FaqStatus.DRAFT)
    entry.status = FaqStatus.DRAFT
    _revise(actor, entry, "send_back")


def approve(actor: Actor, entry: FaqEntry) -> None:
    """Publish: a supervisor who is not the author, and nothing personal left in the text."""
    actor.require(*APPROVE_ROLES)
    _require(entry, FaqStatus.REVIEW, FaqStatus.PUBLISHED, "承認待ちのFAQだけを承認できます。")
    # Held before the check: the text checked for personal data is the text published.
    _hold(entry, FaqStatus.PUBLISHED)
    if not actor.trusted and entry.author_id == actor.staff_id:
        raise PermissionDenied(
            "自分が作成したFAQは承認できません。別のセンター責任者に依頼してください。"
        )
    spans = remaining_personal_data(entry)
    if spans:
        raise PublishBlocked(spans)
    entry.status = FaqStatus.PUBLISHED
    entry.approved_by_id = actor.staff_id
    entry.published_at = utcnow()
    _revise(actor, entry, "publish")


def archive(actor: Actor, entry: FaqEntry) -> None:
    actor.require(*APPROVE_ROLES)
    if entry.status == FaqStatus.ARCHIVED:
        raise InvalidTransition(ALREADY[FaqStatus.ARCHIVED])
    _hold(entry, FaqStatus.ARCHIVED)
    entry.status = FaqStatus.ARCHIVED
    _revise(actor, entry, "archive")
