"""Reading entries: one for staff (audited when unpublished) or the public, lists, revisions,
the public categories, and the entries made from a case."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Category, Ticket
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import NotFound
from faq.models import FaqEntry, FaqRevision, FaqSource, FaqStatus, Visibility
from faq.services.common import READ_ROLES


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


def get_public_entry(entry_id: int, *, include_staff: bool = False) -> FaqEntry:
    """A published public entry, or NotFound: an unpublished one answers exactly the same.

    `include_staff` also finds a published 職員のみ entry (an API token with the `faq` scope):
    approved text, so never a draft, whose redaction nobody has checked yet."""
    entry = db.session.get(FaqEntry, entry_id)
    if entry is None or entry.status != FaqStatus.PUBLISHED:
        raise NotFound("FAQが見つかりません。")
    if not include_staff and not entry.is_public:
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


def public_entries(
    category_id: int | None = None, limit: int = 50, *, include_staff: bool = False
) -> list[FaqEntry]:
    """Published entries, most helpful first; 職員のみ ones too with `include_staff`."""
    query = (
        sa.select(FaqEntry)
        .where(FaqEntry.status == FaqStatus.PUBLISHED)
        .order_by(FaqEntry.helpful_count.desc(), FaqEntry.id)
        .limit(limit)
    )
    if not include_staff:
        query = query.where(FaqEntry.visibility == Visibility.PUBLIC)
    if category_id:
        query = query.where(FaqEntry.category_id == category_id)
    return list(db.session.scalars(query))


def entries_from_ticket(ticket: Ticket) -> list[FaqEntry]:
    return list(
        db.session.scalars(
            sa.select(FaqEntry).join(FaqSource).where(FaqSource.ticket_id == ticket.id)
        )
    )
