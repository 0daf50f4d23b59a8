"""Search: the same for the web, the command line and the ticket page's suggestions; the hits of
the index (faq.search) are checked against the database before they are shown."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from consult.extensions import db
from consult.models import Status, Ticket
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import PermissionDenied
from faq.analysis import fold, morph_terms
from faq.models import FaqEntry, FaqStatus, Visibility
from faq.services.common import READ_ROLES

RELATIVE_FLOOR = 0.2  # hits scoring under a fifth of the best are not shown


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
