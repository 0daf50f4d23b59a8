"""「寄せられたご意見と回答」 on the relay: a read-only copy of the published entries (/opinions).

The core sends the published entries whenever they change (`opinions.published`, a snapshot).
An entry's row cannot live on the relay (it leads to the citizen's request, which stays in
LGWAN), so the relay keeps the published fields as RelayCopy rows, and the public page reads
them there (faq.opinions.services `public_months`, `public_entries`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Category
from consult.transfer.models import RelayCopy
from faq.models import FaqStatus
from faq.opinions.models import OpinionEntry

KIND = "opinions.published"
FIELDS = ("kind", "month", "category_id", "opinion", "answer", "opinion_en", "answer_en")


def snapshot() -> dict | None:
    from consult.transfer.services import role

    if role() != "core":
        return None
    entries = db.session.scalars(
        sa.select(OpinionEntry)
        .where(OpinionEntry.status == FaqStatus.PUBLISHED)
        .order_by(OpinionEntry.id)
    )
    return {
        "entries": [
            {"id": entry.id, **{name: getattr(entry, name) for name in FIELDS}} for entry in entries
        ]
    }


def apply(payload: dict) -> None:
    db.session.execute(sa.delete(RelayCopy).where(RelayCopy.kind == KIND))
    for item in payload.get("entries", []):
        db.session.add(
            RelayCopy(
                kind=KIND,
                ref=int(item["id"]),
                data={name: item.get(name) for name in FIELDS},
            )
        )
    db.session.flush()


@dataclass(frozen=True)
class Copy:
    """What the public page shows of an entry (the same names as OpinionEntry's)."""

    id: int
    kind: str
    month: str
    category: Category | None
    opinion: str
    answer: str
    opinion_en: str | None
    answer_en: str | None


def copies() -> list[Copy]:
    """The relay's copies, newest month first (as the core's page orders its rows)."""
    rows = list(db.session.scalars(sa.select(RelayCopy).where(RelayCopy.kind == KIND)))
    wanted = {row.data.get("category_id") for row in rows} - {None}
    categories = (
        {c.id: c for c in db.session.scalars(sa.select(Category).where(Category.id.in_(wanted)))}
        if wanted
        else {}
    )
    found = [
        Copy(
            id=row.ref,
            kind=str(row.data.get("kind") or ""),
            month=str(row.data.get("month") or ""),
            category=categories.get(row.data.get("category_id")),
            opinion=str(row.data.get("opinion") or ""),
            answer=str(row.data.get("answer") or ""),
            opinion_en=row.data.get("opinion_en"),
            answer_en=row.data.get("answer_en"),
        )
        for row in rows
    ]
    found.sort(key=lambda copy: copy.id)
    found.sort(key=lambda copy: copy.month, reverse=True)
    return found
