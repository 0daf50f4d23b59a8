"""LINE contacts (one per LINE user id) and the tickets that belong to them.

The LINE user id is personal data: it lives in ``line_contact`` only; elsewhere the contact's
row id stands for it.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from channels.line.models import LineContact, LineTicket
from consult.extensions import db
from consult.models import Ticket
from consult.services import merge
from consult.timeutil import utcnow


def contact_for(user_id: str) -> LineContact:
    contact = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == user_id))
    if contact is None:
        contact = LineContact(user_id=user_id, following=True, created_at=utcnow())
        db.session.add(contact)
        db.session.flush()
    return contact


def open_ticket(contact: LineContact) -> Ticket | None:
    """The ticket a message from this contact goes on: its open LINE ticket; else, when its
    latest LINE ticket was merged into another, that survivor while open; else, when the
    contact came to its citizen by a merge of citizens, that citizen's newest open ticket."""
    own = db.session.scalar(
        sa.select(Ticket)
        .join(LineTicket, LineTicket.ticket_id == Ticket.id)
        .where(LineTicket.contact_id == contact.id, Ticket.is_open.is_(True))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if own is not None:
        return own
    latest = db.session.scalar(
        sa.select(Ticket)
        .join(LineTicket, LineTicket.ticket_id == Ticket.id)
        .where(LineTicket.contact_id == contact.id)
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if latest is not None and latest.merged_into_id:
        survivor = merge.resolve_ticket(latest)
        if survivor.is_open:
            return survivor
    if contact.citizen_id and merge.moved_by_citizen_merge(
        "line_contact", contact.id, contact.citizen_id
    ):
        return db.session.scalar(
            sa.select(Ticket)
            .where(
                Ticket.citizen_id == contact.citizen_id,
                Ticket.is_open.is_(True),
                Ticket.merged_into_id.is_(None),
            )
            .order_by(Ticket.id.desc())
            .limit(1)
        )
    return None


def line_ticket(ticket: Ticket) -> LineTicket | None:
    return db.session.scalar(sa.select(LineTicket).where(LineTicket.ticket_id == ticket.id))


# A name is asked again when the user writes after this long (they may have changed it); a
# failed or empty answer is tried again sooner.
PROFILE_REFRESH = timedelta(days=7)
PROFILE_RETRY = timedelta(hours=1)


def profile_due(contact: LineContact) -> None:
    """The user wrote or followed: ask LINE for the profile again if it is time to."""
    checked = contact.profile_checked_at
    if checked is None:
        return
    wait = PROFILE_RETRY if contact.display_name is None else PROFILE_REFRESH
    if utcnow() - checked >= wait:
        contact.profile_checked_at = None


def contact_ticket_ids(contact: LineContact) -> list[int]:
    """The tickets whose search documents hold this contact's display name: its LINE tickets
    and its citizen's cases."""
    ids = set(
        db.session.scalars(
            sa.select(LineTicket.ticket_id).where(LineTicket.contact_id == contact.id)
        )
    )
    if contact.citizen_id is not None:
        ids.update(
            db.session.scalars(sa.select(Ticket.id).where(Ticket.citizen_id == contact.citizen_id))
        )
    return sorted(ids)
