"""The FAQ's rules: entries and their workflow, drafts from closed cases, search, votes, import.

Workflow: draft (下書き) → review (承認待ち) → published (公開中) → archived (公開終了).
A supervisor or administrator who is not the entry's author approves; approval is refused while
the redactor still finds personal data in the text. Every save and every transition appends a
revision. Each change also appends a `faq_change` row: the search index's revision counter.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from markdown_it import MarkdownIt
from markupsafe import Markup

from consult import plugins
from consult.extensions import db
from consult.models import Category, Department, Role, Status, Ticket
from consult.services import audit
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from consult.services.normalize import clean_text
from consult.timeutil import utcnow
from faq.analysis import fold, morph_terms
from faq.models import (
    FaqChange,
    FaqEntry,
    FaqRevision,
    FaqSource,
    FaqStatus,
    FaqSynonym,
    FaqVote,
    Visibility,
)
from faq.settings import FaqSettings

READ_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.SUPPORT, Role.ADMIN)
EDIT_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.ADMIN)
APPROVE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
MAX_QUESTION = 500
MAX_ANSWER = 20_000
MAX_KEYWORDS = 500
RELATIVE_FLOOR = 0.2  # hits scoring under a fifth of the best are not shown


class PublishBlocked(DomainError):
    """The redactor still finds personal data: the spans say where, for the reviewer."""

    def __init__(self, spans: list):
        kinds = "、".join(dict.fromkeys(s.label for s in spans))
        super().__init__(
            f"個人情報の可能性がある箇所が{len(spans)}件残っているため公開できません（{kinds}）。"
            "該当箇所を修正してから承認してください。"
        )
        self.spans = spans


# --- safe Markdown ----------------------------------------------------------------------------

_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tel:")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.disable("image")  # no third-party images on citizens' pages

    def validate_link(url: str) -> bool:
        # Only web, mail and phone links and our own paths: never javascript:, data:, vbscript:.
        cleaned = re.sub(r"[\x00-\x20]", "", url).lower()
        return cleaned.startswith(_SAFE_SCHEMES) or (
            cleaned.startswith("/") and not cleaned.startswith("//")
        )

    md.validateLink = validate_link
    return md


_MD = _markdown()


def render_markdown(text: str) -> Markup:
    """CommonMark without raw HTML: markdown-it escapes every tag, and unsafe links stay text."""
    return Markup(_MD.render(text or ""))  # noqa: S704 (markdown-it output with html disabled)


# --- redaction --------------------------------------------------------------------------------


def _public_phones() -> list[str]:
    try:
        return list(FaqSettings.current().public_phones)
    except RuntimeError:
        return []


def _known_names(entry: FaqEntry | None = None, ticket: Ticket | None = None) -> list[str]:
    """Names the case itself knows: the citizen, and every member of staff on it."""
    tickets = [ticket] if ticket else [s.ticket for s in (entry.sources if entry else [])]
    names: list[str] = []
    for item in tickets:
        if item.citizen:
            names += [item.citizen.name or "", item.citizen.kana or ""]
        people = [item.assignee, item.created_by] + [e.author for e in item.timeline]
        for person in people:
            if person is not None:
                names += [person.full_name, person.display_name.split("/")[0].strip()]
    return [n for n in dict.fromkeys(names) if n]


def redact_text(text: str, known_names: list[str]):
    from faq.redact import redact

    return redact(text, known_names=known_names, public_phones=_public_phones())


def remaining_personal_data(entry: FaqEntry) -> list:
    """What the redactor still finds in the entry's question, answer and keywords."""
    names = _known_names(entry)
    spans = []
    for text in (entry.question, entry.answer, entry.keywords):
        spans += list(redact_text(text or "", names).spans)
    return spans


# --- entries ----------------------------------------------------------------------------------


def _keywords(value: str | None) -> str:
    words = [w.strip() for w in re.split(r"[,、，\s]+", value or "") if w.strip()]
    return clean_text(",".join(dict.fromkeys(words)), "キーワード", MAX_KEYWORDS)


def _check_refs(category_id: int | None, department_id: int | None) -> None:
    if category_id and db.session.get(Category, category_id) is None:
        raise ValidationFailed("分類が見つかりません。")
    if department_id and db.session.get(Department, department_id) is None:
        raise ValidationFailed("担当課が見つかりません。")


def _changed(entry: FaqEntry | None) -> None:
    db.session.add(FaqChange(entry_id=entry.id if entry else None))
    db.session.info["faq_changed"] = True


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
    _changed(entry)
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


def get_entry(actor: Actor, entry_id: int) -> FaqEntry:
    actor.require(*READ_ROLES)
    entry = db.session.get(FaqEntry, entry_id)
    if entry is None:
        raise NotFound("FAQが見つかりません。")
    return entry


def view_entry(actor: Actor, entry_id: int) -> FaqEntry:
    """The staff page of an entry. An unpublished one may still hold what the redactor missed
    (and shows the remaining spans), so that view is audited like a ticket's."""
    entry = get_entry(actor, entry_id)
    if entry.status != FaqStatus.PUBLISHED:
        audit.record(actor, "view", "faq", entry.id)
    return entry


def get_public_entry(entry_id: int) -> FaqEntry:
    """A published public entry, or NotFound: an unpublished one answers exactly the same."""
    entry = db.session.get(FaqEntry, entry_id)
    if entry is None or not entry.is_public:
        raise NotFound("FAQが見つかりません。")
    return entry


def list_entries(actor: Actor, status: FaqStatus | None = None, limit: int = 200) -> list[FaqEntry]:
    actor.require(*READ_ROLES)
    query = sa.select(FaqEntry).order_by(FaqEntry.updated_at.desc(), FaqEntry.id.desc())
    if status:
        query = query.where(FaqEntry.status == status)
    return list(db.session.scalars(query.limit(limit)))


def revisions(entry: FaqEntry) -> list[FaqRevision]:
    return list(
        db.session.scalars(
            sa.select(FaqRevision)
            .where(FaqRevision.entry_id == entry.id)
            .order_by(FaqRevision.number.desc())
        )
    )


def public_categories() -> list[tuple[Category, int]]:
    """Categories that have public entries, with their counts."""
    rows = db.session.execute(
        sa.select(Category, sa.func.count(FaqEntry.id))
        .join(FaqEntry, FaqEntry.category_id == Category.id)
        .where(FaqEntry.status == FaqStatus.PUBLISHED, FaqEntry.visibility == Visibility.PUBLIC)
        .group_by(Category.id)
        .order_by(Category.sort_order, Category.id)
    )
    return [(category, count) for category, count in rows]


def public_entries(category_id: int | None = None, limit: int = 50) -> list[FaqEntry]:
    query = (
        sa.select(FaqEntry)
        .where(FaqEntry.status == FaqStatus.PUBLISHED, FaqEntry.visibility == Visibility.PUBLIC)
        .order_by(FaqEntry.helpful_count.desc(), FaqEntry.id)
        .limit(limit)
    )
    if category_id:
        query = query.where(FaqEntry.category_id == category_id)
    return list(db.session.scalars(query))


# --- from a closed case -------------------------------------------------------------------------


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
    names = _known_names(ticket=ticket)
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


def entries_from_ticket(ticket: Ticket) -> list[FaqEntry]:
    return list(
        db.session.scalars(
            sa.select(FaqEntry).join(FaqSource).where(FaqSource.ticket_id == ticket.id)
        )
    )


# --- search -----------------------------------------------------------------------------------


def index():
    return current_app.extensions["faq_index"]


@dataclass
class Hit:
    entry: FaqEntry
    score: float
    snippet: list[tuple[str, bool]]
    title: list[tuple[str, bool]] = field(default_factory=list)


def _needles(text: str) -> list[str]:
    words = [fold(w) for w in re.split(r"\s+", text or "") if w]
    words += [fold(unicodedata.normalize("NFKC", text or "")[s:e]) for _, s, e in morph_terms(text)]
    words += [t for t, _, _ in morph_terms(text)]
    longest = max((len(w) for w in words), default=0)
    # A single character (票, 税) is marked only when the query is no longer than that.
    return sorted({w for w in words if len(w) >= min(2, longest)}, key=len, reverse=True)


def highlight(text: str, query: str, width: int = 120) -> list[tuple[str, bool]]:
    """(segment, matched) pairs around the first match; the template escapes and marks them."""
    folded = "".join(fold(ch)[:1] or " " for ch in text)  # one folded char per original char
    marks = [False] * len(text)
    for needle in _needles(query):
        start = folded.find(needle)
        while start >= 0 and needle:
            for i in range(start, min(start + len(needle), len(text))):
                marks[i] = True
            start = folded.find(needle, start + len(needle))
    first = marks.index(True) if True in marks else 0
    begin = max(0, first - width // 3)
    end = min(len(text), begin + width)
    segments: list[tuple[str, bool]] = []
    if begin > 0:
        segments.append(("…", False))
    for i in range(begin, end):
        if segments and segments[-1][1] == marks[i] and segments[-1][0] != "…":
            segments[-1] = (segments[-1][0] + text[i], marks[i])
        else:
            segments.append((text[i], marks[i]))
    if end < len(text):
        segments.append(("…", False))
    return segments


def search(
    text: str,
    *,
    actor: Actor | None = None,
    public: bool = True,
    category_id: int | None = None,
    department_id: int | None = None,
    limit: int = 10,
    fields: str = "both",
) -> list[Hit]:
    """The same search for the web, the command line and the ticket page's suggestions.

    Staff (an actor given, public=False) also see staff-only entries; everyone else only
    published public ones. Hits are checked against the database before they are shown.
    """
    if not public:
        if actor is None:
            raise PermissionDenied("この操作を行う権限がありません。")
        actor.require(*READ_ROLES)
    text = (text or "").strip()
    if not text:
        return []
    raw = index().search(
        text,
        public=public,
        category_id=category_id,
        department_id=department_id,
        limit=limit,
        fields=fields,
    )
    entries = {
        e.id: e
        for e in db.session.scalars(
            sa.select(FaqEntry).where(FaqEntry.id.in_([h.entry_id for h in raw]))
        )
    }
    hits = []
    # Weak tails (one shared bigram with a long query) are noise on a results page.
    floor = raw[0].score * RELATIVE_FLOOR if raw else 0.0
    for item in raw:
        if item.score < floor:
            break
        entry = entries.get(item.entry_id)
        if entry is None or entry.status != FaqStatus.PUBLISHED:
            continue
        if public and entry.visibility != Visibility.PUBLIC:
            continue
        plain = re.sub(r"[#*_`>\[\]()]", "", entry.answer)
        hits.append(
            Hit(entry, item.score, highlight(plain, text), highlight(entry.question, text, 500))
        )
    return hits


def related(entry: FaqEntry, limit: int = 5, public: bool = True) -> list[FaqEntry]:
    raw = index().search(entry.question, public=public, limit=limit + 1)
    ids = [h.entry_id for h in raw if h.entry_id != entry.id][:limit]
    found = {
        e.id: e
        for e in db.session.scalars(sa.select(FaqEntry).where(FaqEntry.id.in_(ids)))
        if e.status == FaqStatus.PUBLISHED and (e.is_public or not public)
    }
    return [found[i] for i in ids if i in found]


def similar_closed_tickets(actor: Actor, text: str, limit: int = 5) -> list[Ticket]:
    """Past closed cases whose subject shares the text's content words (for the ticket page).

    Only the desk sees tickets: for any other role this is empty, like the queue.
    """
    actor.require(*READ_ROLES)
    if not actor.trusted and (actor.staff is None or actor.staff.role not in DESK_ROLES):
        return []
    words = sorted({t for t, _, _ in morph_terms(text) if len(t) >= 2}, key=len, reverse=True)[:5]
    if not words:
        return []
    normalized = unicodedata.normalize("NFKC", text)
    surfaces = sorted(
        {normalized[s:e] for _, s, e in morph_terms(text) if e - s >= 2}, key=len, reverse=True
    )[:5]
    conditions = [Ticket.subject.contains(w, autoescape=True) for w in surfaces]
    rows = db.session.scalars(
        sa.select(Ticket)
        .where(Ticket.status == Status.CLOSED, sa.or_(*conditions))
        .order_by(Ticket.closed_at.desc())
        .limit(200)
    )
    scored = sorted(((sum(w in r.subject for w in surfaces), r) for r in rows), key=lambda p: -p[0])
    return [r for _, r in scored[:limit]]


# --- views and votes --------------------------------------------------------------------------


def record_view(entry: FaqEntry) -> None:
    db.session.execute(
        sa.update(FaqEntry)
        .where(FaqEntry.id == entry.id)
        .values(view_count=FaqEntry.view_count + 1)
    )


def voter_key(cookie_value: str) -> str:
    """A hash of the browser's random cookie: counts once per browser, identifies no one."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def vote_helpful(entry: FaqEntry, voter: str) -> bool:
    """Count 「役に立った」 once per browser; False when this browser already voted."""
    if not entry.is_public:
        raise NotFound("FAQが見つかりません。")
    exists = db.session.scalar(
        sa.select(FaqVote.id).where(FaqVote.entry_id == entry.id, FaqVote.voter == voter)
    )
    if exists:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(FaqVote(entry_id=entry.id, voter=voter))
    except sa.exc.IntegrityError:
        return False
    db.session.execute(
        sa.update(FaqEntry)
        .where(FaqEntry.id == entry.id)
        .values(helpful_count=FaqEntry.helpful_count + 1)
    )
    return True


# --- synonyms ---------------------------------------------------------------------------------


def synonym_text() -> str:
    return "\n".join(
        s.terms for s in db.session.scalars(sa.select(FaqSynonym).order_by(FaqSynonym.id))
    )


def save_synonyms(actor: Actor, text: str) -> int:
    """Replace the synonym list: one group per line, words joined by ＝ or =."""
    actor.require(Role.ADMIN, Role.SUPERVISOR)
    groups = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = unicodedata.normalize("NFKC", line).strip()
        if not line:
            continue
        terms = [t.strip() for t in line.split("=") if t.strip()]
        if len(terms) < 2:
            raise ValidationFailed(f"{number}行目：「語＝語」の形で2語以上を書いてください。")
        if len(line) > 500:
            raise ValidationFailed(f"{number}行目が長すぎます（500文字まで）。")
        groups.append("=".join(terms))
    db.session.execute(sa.delete(FaqSynonym))
    for group in groups:
        db.session.add(FaqSynonym(terms=group))
    _changed(None)
    audit.record(actor, "update", "faq_synonym", None)
    return len(groups)


# --- import -----------------------------------------------------------------------------------

# The government's recommended FAQ open-data format (推奨データセット「FAQ」) and common variants.
CSV_COLUMNS = {
    "question": ("質問", "質問内容", "question"),
    "answer": ("回答", "回答内容", "answer"),
    "department": ("所管部署", "担当部署", "所管課", "department"),
    "category": ("カテゴリ", "カテゴリー", "分類", "category"),
    "keywords": ("キーワード", "keywords"),
    "visibility": ("公開範囲", "visibility"),
}


@dataclass
class ImportReport:
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(
        "文字コードを判別できません（UTF-8 または Shift_JIS で保存してください）。"
    )


def _rows(path: Path) -> list[tuple[int, dict]]:
    text = _decode(path.read_bytes())
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                rows.append((number, {"_error": "JSONとして読めません"}))
                continue
            rows.append(
                (
                    number,
                    data if isinstance(data, dict) else {"_error": "オブジェクトではありません"},
                )
            )
        return rows
    reader = csv.DictReader(io.StringIO(text))
    header = {name.strip(): name for name in (reader.fieldnames or [])}
    mapping = {}
    for key, names in CSV_COLUMNS.items():
        for name in names:
            if name in header:
                mapping[key] = header[name]
                break
    if "question" not in mapping or "answer" not in mapping:
        raise ValidationFailed("CSVに「質問」と「回答」の列がありません。")
    return [
        (number, {key: (row.get(col) or "") for key, col in mapping.items()})
        for number, row in enumerate(reader, start=2)
    ]


def import_file(actor: Actor, path: Path, *, publish: bool = False) -> ImportReport:
    """Import entries (as drafts, or published at once by the trusted command line).

    Every row is checked on its own: a bad row is reported with its reason and the rest go in.
    """
    actor.require(Role.ADMIN)
    report = ImportReport()
    categories = {c.name: c.id for c in db.session.scalars(sa.select(Category))}
    departments = {d.name: d.id for d in db.session.scalars(sa.select(Department))}
    for number, row in _rows(path):
        if "_error" in row:
            report.rejected.append((number, row["_error"]))
            continue
        category = str(row.get("category") or "").strip()
        department = str(row.get("department") or "").strip()
        visibility = str(row.get("visibility") or "public").strip() or "public"
        visibility = {"公開": "public", "職員のみ": "staff"}.get(visibility, visibility)
        keywords = row.get("keywords") or ""
        if isinstance(keywords, list):
            keywords = ",".join(str(k) for k in keywords)
        if category and category not in categories:
            report.rejected.append((number, f"分類「{category}」が登録されていません"))
            continue
        try:
            with db.session.begin_nested():
                entry = create_entry(
                    actor,
                    question=str(row.get("question") or ""),
                    answer=str(row.get("answer") or ""),
                    category_id=categories.get(category),
                    department_id=departments.get(department),
                    keywords=str(keywords),
                    visibility=visibility,
                )
                if publish:
                    submit(actor, entry)
                    approve(actor, entry)
        except DomainError as error:
            report.rejected.append((number, error.message))
            continue
        report.imported += 1
    return report


def seed_demo(members: dict) -> None:
    """Demo FAQ entries (written for this project), published, so /faq answers at once."""
    from consult.services.actor import Actor as _Actor

    admin = _Actor(members["admin"], "seed", trusted=True)  # like the command line
    import_file(admin, Path(__file__).resolve().parent / "data" / "demo_faq.jsonl", publish=True)
