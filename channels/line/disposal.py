"""Disposal of the LINE channel's copies of expired tickets (consult.services.retention).

Personal data here: the raw webhook bodies (line_delivery.body), each event's payload and the
user id it came from (line_event.payload, chat_key), the media citizens sent (DATA_DIR/line,
line_media), link codes (line_link_code), which contact a ticket belongs to (line_ticket), and
the LINE user id itself (line_contact.user_id).

The events of a ticket are those its timeline entries name (`line_event`); a delivery body
holds several events (of several people), so once expanded it is cleared when any of its events
goes: its other events keep their own payloads. A contact goes when no live ticket is theirs
(through line_ticket or their citizen), and with it every event of that user.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.line.models import (
    LineContact,
    LineDelivery,
    LineEvent,
    LineLinkCode,
    LineMedia,
    LineSubscription,
    LineTicket,
)
from consult.models import Ticket, TimelineEntry
from consult.plugins import DisposalBatch, PersonalData, UnlinkedKind

HOLDS = (
    PersonalData("line_contact", ("user_id",), "LINEのユーザーID", "LINE公式アカウント"),
    PersonalData("line_delivery", ("body",), "LINEから届いた原本（Webhook）", "LINE公式アカウント"),
    PersonalData(
        "line_event", ("payload", "chat_key"), "LINEのメッセージ内容", "LINE公式アカウント"
    ),
    PersonalData(
        "line_media",
        ("file_name", "stored_name"),
        "LINEで届いた画像・ファイル",
        "LINE公式アカウント",
    ),
)


def _media_dir():
    from channels.line.services import media_dir

    return media_dir()


def dispose(batch: DisposalBatch) -> None:
    connection = batch.connection
    entry = TimelineEntry.__table__
    event_ids: set[int] = set()
    event_ticket: dict[int, int] = {}
    for tid, data in connection.execute(
        sa.select(entry.c.ticket_id, entry.c.data).where(batch.among(entry.c.ticket_id))
    ):
        value = (data or {}).get("line_event")
        try:
            event_id = int(value) if value is not None else None
        except (TypeError, ValueError):
            event_id = None
        if event_id is not None:
            event_ids.add(event_id)
            event_ticket[event_id] = tid
    # Media: rows now, files after commit.
    media = LineMedia.__table__
    for stored in connection.scalars(
        sa.select(media.c.stored_name).where(
            batch.among(media.c.ticket_id), media.c.stored_name.is_not(None)
        )
    ):
        batch.files.append(_media_dir() / stored)
    grouped = batch.grouped(media, batch.among(media.c.ticket_id))
    batch.count(
        "line_media",
        "LINEで届いた画像・ファイル",
        connection.execute(media.delete().where(batch.among(media.c.ticket_id))).rowcount,
        grouped,
    )
    codes = LineLinkCode.__table__
    connection.execute(codes.delete().where(batch.among(codes.c.ticket_id)))
    # Contacts that nothing live needs any more.
    link = LineTicket.__table__
    contact = LineContact.__table__
    ticket = Ticket.__table__
    contact_ids = set(
        connection.scalars(sa.select(link.c.contact_id).where(batch.among(link.c.ticket_id)))
    )
    if batch.citizen_ids:
        contact_ids |= set(
            connection.scalars(
                sa.select(contact.c.id).where(contact.c.citizen_id.in_(batch.citizen_ids))
            )
        )
    connection.execute(link.delete().where(batch.among(link.c.ticket_id)))
    gone: list[tuple[int, str]] = []
    if contact_ids:
        live_by_link = set(
            connection.scalars(
                sa.select(link.c.contact_id)
                .join(ticket, ticket.c.id == link.c.ticket_id)
                .where(link.c.contact_id.in_(contact_ids), ticket.c.disposed_at.is_(None))
            )
        )
        cleared = set(batch.citizen_ids)
        for cid, user_id, citizen_id in connection.execute(
            sa.select(contact.c.id, contact.c.user_id, contact.c.citizen_id).where(
                contact.c.id.in_(contact_ids)
            )
        ):
            if cid in live_by_link:
                continue
            if citizen_id is not None and citizen_id not in cleared:
                continue  # their citizen still has live cases
            gone.append((cid, user_id))
    event = LineEvent.__table__
    user_ids = [user_id for _cid, user_id in gone]
    condition = event.c.id.in_(sorted(event_ids)) if event_ids else sa.false()
    if user_ids:
        condition = sa.or_(condition, event.c.chat_key.in_(user_ids))
    delivery_ids = set(
        connection.scalars(sa.select(event.c.delivery_id).where(condition).distinct())
    )
    by_ticket: dict[int, int] = {}
    for event_id in event_ids:
        tid = event_ticket[event_id]
        by_ticket[tid] = by_ticket.get(tid, 0) + 1
    batch.count(
        "line_event",
        "LINEのメッセージ内容",
        connection.execute(
            event.update().where(condition).values(payload={}, chat_key="-")
        ).rowcount,
        by_ticket,
    )
    if delivery_ids:
        delivery = LineDelivery.__table__
        batch.count(
            "line_delivery",
            "LINEから届いた原本",
            connection.execute(
                delivery.update()
                .where(
                    delivery.c.id.in_(sorted(delivery_ids)),
                    delivery.c.expanded_at.is_not(None),
                )
                .values(body="{}")
            ).rowcount,
        )
    if gone:
        # A contact who opted in to the centre's notices (line_subscription) consented to be
        # kept for them, apart from any case: it stays, unlinked from the person and without
        # the profile's name; the others go.
        subscription = LineSubscription.__table__
        subscribed = set(
            connection.scalars(
                sa.select(subscription.c.contact_id)
                .where(subscription.c.contact_id.in_([cid for cid, _user in gone]))
                .distinct()
            )
        )
        if subscribed:
            batch.count(
                "line_contact_unlinked",
                "お知らせ登録を残したLINE利用者の相談者との結び付き",
                connection.execute(
                    contact.update()
                    .where(contact.c.id.in_(sorted(subscribed)))
                    .values(citizen_id=None, display_name=None)
                ).rowcount,
            )
        batch.count(
            "line_contact",
            "LINEのユーザーID",
            connection.execute(
                contact.delete().where(
                    contact.c.id.in_([cid for cid, _user in gone if cid not in subscribed])
                )
            ).rowcount,
        )


def orphans(cutoff) -> list:
    """Media files that no line_media row names (fetched, then the row's update rolled back)."""
    from channels.line.models import LineRelayContent
    from consult.extensions import db
    from consult.services.retention import _old_files

    known = set(
        db.session.scalars(
            sa.select(LineMedia.stored_name).where(LineMedia.stored_name.is_not(None))
        )
    )
    # Staged on the core until the media task takes it (channels.line.transfer).
    known |= set(
        db.session.scalars(
            sa.select(LineRelayContent.stored_name).where(LineRelayContent.stored_name.is_not(None))
        )
    )
    root = _media_dir()
    return [
        path
        for path in _old_files(root, cutoff)
        if str(path.relative_to(root)) not in known and path.name not in known
    ]


# --- LINE records that belong to no case --------------------------------------------------------
# Events of a chat with no live case (a follow, a postback for the notices, an event that failed,
# of a user who never became a case or whose cases have gone), the raw webhook bodies once all
# their events are cleared, and users with no case at all. They go by their own date, counted
# as records without a case are (consult.services.retention.unlinked_years). A user who opted
# in to the centre's notices stays for them, unlinked from any person and without the profile's
# name.

EVENT_LABEL = "相談に結び付かないLINEのイベント・受信原本"
CONTACT_LABEL = "相談のないLINE利用者（お知らせ登録者は結び付きと表示名のみ）"
CLEARED = "-"  # chat_key of an event whose payload was disposed of
FINISHED = ("done", "ignored", "failed")


def _event_candidates(before):
    """Finished events older than `before`, not yet cleared, of a chat with no live case: no
    contact of that user id has a live ticket (through line_ticket or their citizen). The
    events of a person with a live case stay with that person's record, and go with it."""
    event = LineEvent.__table__
    contact = LineContact.__table__
    link = LineTicket.__table__
    ticket = Ticket.__table__
    live_link = (
        sa.select(link.c.id)
        .join(ticket, ticket.c.id == link.c.ticket_id)
        .where(link.c.contact_id == contact.c.id, ticket.c.disposed_at.is_(None))
        .exists()
    )
    live_citizen = (
        sa.select(ticket.c.id)
        .where(ticket.c.citizen_id == contact.c.citizen_id, ticket.c.disposed_at.is_(None))
        .exists()
    )
    live_chat = (
        sa.select(contact.c.id)
        .where(
            contact.c.user_id == event.c.chat_key,
            sa.or_(live_link, sa.and_(contact.c.citizen_id.is_not(None), live_citizen)),
        )
        .exists()
    )
    return sa.and_(
        event.c.chat_key != CLEARED,
        event.c.received_at < before,
        event.c.status.in_(FINISHED),
        ~live_chat,
    )


def _events(before, *columns):
    """The candidate events as one query: counted (`count_events`) or taken by id
    (`dispose_events`), so both always mean the same rows."""
    event = LineEvent.__table__
    return sa.select(*columns).select_from(event).where(_event_candidates(before))


def count_events(before) -> int:
    from consult.extensions import db

    return db.session.scalar(_events(before, sa.func.count()))


def dispose_events(batch: DisposalBatch, before, after: int, limit: int) -> int | None:
    connection = batch.connection
    event = LineEvent.__table__
    ids = list(
        connection.scalars(
            _events(before, event.c.id).where(event.c.id > after).order_by(event.c.id).limit(limit)
        )
    )
    if not ids:
        # Last round: the raw bodies whose events are all cleared (or that had none).
        delivery = LineDelivery.__table__
        live = (
            sa.select(event.c.id)
            .where(event.c.delivery_id == delivery.c.id, event.c.chat_key != CLEARED)
            .exists()
        )
        batch.count(
            "line_delivery",
            "LINEから届いた原本",
            connection.execute(
                delivery.update()
                .where(
                    delivery.c.expanded_at.is_not(None),
                    delivery.c.received_at < before,
                    delivery.c.body != "{}",
                    ~live,
                )
                .values(body="{}")
            ).rowcount,
        )
        return None
    batch.count(
        "line_event",
        "LINEのメッセージ内容",
        connection.execute(
            event.update().where(event.c.id.in_(ids)).values(payload={}, chat_key=CLEARED)
        ).rowcount,
    )
    return ids[-1]


def _contact_candidates(before):
    contact = LineContact.__table__
    link = LineTicket.__table__
    ticket = Ticket.__table__
    event = LineEvent.__table__
    subscription = LineSubscription.__table__
    subscribed = sa.select(subscription.c.id).where(subscription.c.contact_id == contact.c.id)
    return sa.and_(
        ~sa.select(link.c.id).where(link.c.contact_id == contact.c.id).exists(),
        sa.or_(
            contact.c.citizen_id.is_(None),
            ~sa.select(ticket.c.id).where(ticket.c.citizen_id == contact.c.citizen_id).exists(),
        ),
        contact.c.created_at < before,
        *(
            sa.or_(column.is_(None), column < before)
            for column in (
                contact.c.followed_at,
                contact.c.unfollowed_at,
                contact.c.first_message_at,
            )
        ),
        # Nothing from them since: a user who writes again is not a candidate.
        ~sa.select(event.c.id)
        .where(event.c.chat_key == contact.c.user_id, event.c.received_at >= before)
        .exists(),
        # An opted-in user already unlinked is what is kept: nothing more to do.
        sa.or_(
            ~subscribed.exists(),
            contact.c.citizen_id.is_not(None),
            contact.c.display_name.is_not(None),
        ),
    )


def _contacts(before, *columns):
    """The candidate contacts as one query, for `count_contacts` and `dispose_contacts`."""
    contact = LineContact.__table__
    return sa.select(*columns).select_from(contact).where(_contact_candidates(before))


def count_contacts(before) -> int:
    from consult.extensions import db

    return db.session.scalar(_contacts(before, sa.func.count()))


def dispose_contacts(batch: DisposalBatch, before, after: int, limit: int) -> int | None:
    connection = batch.connection
    contact = LineContact.__table__
    rows = connection.execute(
        _contacts(before, contact.c.id, contact.c.user_id)
        .where(contact.c.id > after)
        .order_by(contact.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    ids = [row.id for row in rows]
    subscription = LineSubscription.__table__
    subscribed = set(
        connection.scalars(
            sa.select(subscription.c.contact_id)
            .where(subscription.c.contact_id.in_(ids))
            .distinct()
        )
    )
    gone = [row for row in rows if row.id not in subscribed]
    if gone:
        event = LineEvent.__table__
        batch.count(
            "line_event",
            "LINEのメッセージ内容",
            connection.execute(
                event.update()
                .where(event.c.chat_key.in_([row.user_id for row in gone]))
                .values(payload={}, chat_key=CLEARED)
            ).rowcount,
        )
        batch.count(
            "line_contact",
            "LINEのユーザーID",
            connection.execute(
                contact.delete().where(contact.c.id.in_([row.id for row in gone]))
            ).rowcount,
        )
    if subscribed:
        batch.count(
            "line_contact_unlinked",
            "お知らせ登録を残したLINE利用者の相談者との結び付き",
            connection.execute(
                contact.update()
                .where(contact.c.id.in_(sorted(subscribed)))
                .values(citizen_id=None, display_name=None)
            ).rowcount,
        )
    return ids[-1]


UNLINKED = (
    UnlinkedKind("line_event", EVENT_LABEL, count_events, dispose_events),
    UnlinkedKind("line_contact", CONTACT_LABEL, count_contacts, dispose_contacts),
)
