"""Views and 「役に立った」 votes on public entries, counted once per browser, naming no one."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from consult.extensions import db
from consult.services.errors import NotFound
from faq.models import FaqEntry, FaqVote


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
