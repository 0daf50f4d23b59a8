"""The public FAQ on the relay: a read-only copy of what the core publishes.

The core sends the published public entries and the synonyms whenever they change
(`faq.published`, a snapshot); the relay makes its rows match and records a change for each, so
its search index follows (faq.search reads the changes). Entries no longer public at the core
are archived on the relay. Staff-only entries and drafts never leave the core.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from faq.models import FaqChange, FaqEntry, FaqStatus, FaqSynonym, Visibility

KIND = "faq.published"
FIELDS = ("question", "answer", "keywords", "category_id", "revision", "helpful_count")


def snapshot() -> dict | None:
    from consult.transfer.services import role

    if role() != "core":
        return None
    entries = db.session.scalars(
        sa.select(FaqEntry)
        .where(FaqEntry.status == FaqStatus.PUBLISHED, FaqEntry.visibility == Visibility.PUBLIC)
        .order_by(FaqEntry.id)
    )
    return {
        "entries": [
            {
                "id": entry.id,
                **{name: getattr(entry, name) for name in FIELDS},
                "published_at": entry.published_at.isoformat() if entry.published_at else None,
            }
            for entry in entries
        ],
        "synonyms": [row.terms for row in db.session.scalars(sa.select(FaqSynonym))],
    }


def apply(payload: dict) -> None:
    from consult.models import Category

    wanted = {int(item["id"]): item for item in payload.get("entries", [])}
    current = {row.id: row for row in db.session.scalars(sa.select(FaqEntry))}
    for entry_id, item in wanted.items():
        row = current.get(entry_id)
        if row is None:
            row = FaqEntry(id=entry_id, visibility=Visibility.PUBLIC, redaction_notes=[])
            db.session.add(row)
        values = {name: item.get(name) for name in FIELDS}
        if (
            values["category_id"] is not None
            and db.session.get(Category, values["category_id"]) is None
        ):
            values["category_id"] = None
        published = item.get("published_at")
        changed = row.status != FaqStatus.PUBLISHED or any(
            getattr(row, name) != value for name, value in values.items()
        )
        if not changed:
            continue
        for name, value in values.items():
            setattr(row, name, value)
        row.status = FaqStatus.PUBLISHED
        row.visibility = Visibility.PUBLIC
        row.published_at = datetime.fromisoformat(published) if published else None
        db.session.flush()
        db.session.add(FaqChange(entry_id=entry_id))
    for entry_id, row in current.items():
        if entry_id not in wanted and row.status != FaqStatus.ARCHIVED:
            row.status = FaqStatus.ARCHIVED
            db.session.add(FaqChange(entry_id=entry_id))
    terms = sorted(payload.get("synonyms", []))
    have = sorted(row.terms for row in db.session.scalars(sa.select(FaqSynonym)))
    if terms != have:
        db.session.execute(sa.delete(FaqSynonym))
        for text in terms:
            db.session.add(FaqSynonym(terms=text))
        db.session.add(FaqChange(entry_id=None))
    db.session.flush()
    # The request's end brings this process's search index up (faq._setup); other processes
    # follow the changes before their next search.
    db.session.info["faq_changed"] = True
