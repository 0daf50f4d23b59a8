"""同一人物の統合 / 相談の統合 / 関連する相談: one record per person and per matter.

A merge never deletes or rewrites: the merged citizen or ticket stays, with a pointer to its
survivor (old ids and numbers keep working), and a `MergeRecord` lists the ids that moved so
that an administrator can undo it exactly. Timeline entries are append-only and stay on their
own ticket; the survivor's page shows the merged tickets' entries with its own.
"""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    Citizen,
    CitizenEmail,
    CitizenPhone,
    EntryKind,
    MergeRecord,
    Role,
    Ticket,
    TicketLink,
    TimelineEntry,
)
from consult.services import audit, search, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, NotFound, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import utcnow

MERGE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
UNDO_ROLES = (Role.ADMIN,)
FILLED_FIELDS = ("name", "kana", "address", "birth_date", "name_key", "kana_key")
FOLD_FIELDS = {"name": "name_fold", "kana": "kana_fold"}
# Rows that point at a citizen and move with them, found from the schema so that a package's
# table (the LINE contact, an incident) moves too without consult knowing it. Phones and
# emails are moved one by one (the survivor may know the same number); the pointer stays.
_OWN = {"citizen_phone", "citizen_email", "citizen"}


def _citizen_columns() -> list[tuple[sa.Table, sa.Column]]:
    found = []
    for table in db.metadata.sorted_tables:
        if table.name in _OWN:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "citizen" and fk.column.name == "id":
                found.append((table, fk.parent))
    return found


def _ticket_columns() -> list[tuple[sa.Table, sa.Column]]:
    """Columns whose rows follow a merged ticket to its survivor: the work still to be done on
    the matter (handoffs, callbacks), marked ``info={"moves_with_merge": True}`` by the package
    that owns them. Messages and entries stay on their own ticket."""
    return [
        (table, column)
        for table in db.metadata.sorted_tables
        for column in table.columns
        if column.info.get("moves_with_merge")
    ]


def _move(columns, source_id: int, target_id: int) -> dict:
    """Point every row of ``columns`` from ``source_id`` to ``target_id``; the moved ids by
    table and column, for undo."""
    rows: dict = {}
    for table, column in columns:
        key = _key(table)
        ids = list(db.session.scalars(sa.select(key).where(column == source_id)))
        if ids:
            db.session.execute(
                sa.update(table).where(key.in_(ids)).values({column.name: target_id})
            )
            rows.setdefault(table.name, {})[column.name] = ids
    return rows


def _move_back(rows: dict, source_id: int, target_id: int) -> None:
    """Undo of ``_move``: the rows listed go back, those still on ``target_id``."""
    tables = {t.name: t for t in db.metadata.sorted_tables}
    for table_name, columns in (rows or {}).items():
        table = tables[table_name]
        key = _key(table)
        for column_name, ids in columns.items():
            column = table.c[column_name]
            db.session.execute(
                sa.update(table)
                .where(key.in_(ids), column == target_id)
                .values({column_name: source_id})
            )
            if table_name == "ticket":
                search.touch(ids)


def _key(table: sa.Table) -> sa.Column:
    (column,) = table.primary_key.columns
    return column


def _record(
    actor: Actor, kind: str, source_id: int, target_id: int, reason: str, moved: dict
) -> MergeRecord:
    """The one place a MergeRecord is written: what moved, so that undo can reverse it."""
    record = MergeRecord(
        kind=kind,
        source_id=source_id,
        target_id=target_id,
        staff_id=actor.staff_id,
        reason=reason,
        moved=moved,
    )
    db.session.add(record)
    db.session.flush()
    return record


def _tell_open_pages(ticket_ids: list[int], source: Citizen, target: Citizen) -> None:
    """A page left open on a moved case hears that its citizen changed (ids and numbers only:
    live events are kept a day, out of disposal)."""
    from consult.live import services as live

    if not ticket_ids:
        return
    numbers = dict(
        db.session.execute(
            sa.select(Ticket.id, Ticket.number).where(Ticket.id.in_(ticket_ids))
        ).all()
    )
    notice = (
        f"相談者番号 {source.id} は相談者番号 {target.id} に統合されました。"
        f"この相談の相談者は相談者番号 {target.id} です。"
    )
    for ticket_id in ticket_ids:
        live.publish(
            "ticket.citizen_merged",
            [f"ticket:{ticket_id}"],
            {
                "ticket_id": ticket_id,
                "number": numbers.get(ticket_id),
                "citizen_id": target.id,
                "notice": notice,
            },
        )


def check_citizens(actor: Actor, source: Citizen, target: Citizen, reason: str = "") -> str:
    """The rules a merge of citizens must pass, checked before the confirmation page is shown
    and again when the merge is made; returns the cleaned reason."""
    actor.require(*MERGE_ROLES)
    reason = clean_text(reason, "統合の理由", 200)
    if source.id == target.id:
        raise ValidationFailed("同じ相談者どうしは統合できません。")
    if source.merged_into_id or target.merged_into_id:
        raise InvalidTransition("既に統合された相談者です。統合先の相談者で操作してください。")
    return reason


def check_tickets(actor: Actor, source: Ticket, target: Ticket, reason: str = "") -> str:
    """As ``check_citizens``, for merging the ticket ``source`` into ``target``."""
    actor.require(*MERGE_ROLES)
    reason = clean_text(reason, "統合の理由", 200)
    if source.id == target.id:
        raise ValidationFailed("同じ相談どうしは統合できません。")
    if source.merged_into_id or target.merged_into_id:
        raise InvalidTransition("既に統合された相談です。統合先の相談で操作してください。")
    if not target.is_open:
        raise InvalidTransition("完了した相談には統合できません。統合先を再開してください。")
    return reason


def merge_step(
    actor: Actor, source, target, reason: str = "", confirmed: bool = False
) -> MergeRecord | None:
    """The two-step rule of both merge forms: an unconfirmed request is only checked (None: the
    view shows both side by side for confirmation, nothing changed); a confirmed one merges.
    ``source`` and ``target`` are both citizens or both tickets."""
    if isinstance(source, Citizen):
        if not confirmed:
            check_citizens(actor, source, target, reason)
            return None
        return merge_citizens(actor, source, target, reason)
    if not confirmed:
        check_tickets(actor, source, target, reason)
        return None
    return merge_tickets(actor, source, target, reason)


def merge_citizens(actor: Actor, source: Citizen, target: Citizen, reason: str = "") -> MergeRecord:
    """Merge ``source`` (the duplicate) into ``target``: its cases, contacts, phones and emails
    move; fields the survivor lacks are filled in; ``source`` stays as a pointer."""
    reason = check_citizens(actor, source, target, reason)
    moved: dict = {"rows": {}, "phones": [], "emails": [], "filled": {}}
    moved["rows"] = _move(_citizen_columns(), source.id, target.id)
    for ids in (moved["rows"].get("ticket") or {}).values():
        search.touch(ids)  # a Core UPDATE: no flush hook sees the new citizen
    known = {p.number for p in target.phones}
    for phone in list(source.phones):
        if phone.number not in known:
            moved["phones"].append(phone.id)
    known = {e.address for e in target.emails}
    for email in list(source.emails):
        if email.address not in known:
            moved["emails"].append(email.id)
    db.session.flush()
    if moved["phones"]:
        db.session.execute(
            sa.update(CitizenPhone)
            .where(CitizenPhone.id.in_(moved["phones"]))
            .values(citizen_id=target.id)
        )
    if moved["emails"]:
        db.session.execute(
            sa.update(CitizenEmail)
            .where(CitizenEmail.id.in_(moved["emails"]))
            .values(citizen_id=target.id)
        )
    for field in FILLED_FIELDS:
        value = getattr(source, field)
        if value and not getattr(target, field):
            setattr(target, field, value)
            moved["filled"][field] = value.isoformat() if field == "birth_date" else True
    for field, fold in FOLD_FIELDS.items():
        if field in moved["filled"]:
            setattr(target, fold, getattr(source, fold))
    source.merged_into_id = target.id
    record = _record(actor, "citizen", source.id, target.id, reason, moved)
    _tell_open_pages((moved["rows"].get("ticket") or {}).get("citizen_id") or [], source, target)
    db.session.expire_all()
    audit.record(actor, "merge", "citizen", source.id, f"into={target.id} record={record.id}")
    return record


def merge_tickets(actor: Actor, source: Ticket, target: Ticket, reason: str = "") -> MergeRecord:
    """Merge the duplicate ticket ``source`` into ``target`` (the same matter by phone and by
    email): it leaves the queue, its number points to ``target``, whose page shows both
    timelines in order. Nothing is deleted."""
    reason = check_tickets(actor, source, target, reason)
    moved: dict = {"was_open": source.is_open, "citizen_set": False}
    if target.citizen_id is None and source.citizen_id is not None:
        target.citizen_id = source.citizen_id
        moved["citizen_set"] = True
    source.merged_into_id = target.id
    source.is_open = False
    note = f"（理由：{reason}）" if reason else ""
    tickets.add_entry(
        target,
        EntryKind.NOTE,
        author=actor.staff,
        body=f"相談 {source.number} をこの相談に統合しました{note}",
        data={"merged_from": source.number},
    )
    tickets.add_entry(
        source,
        EntryKind.NOTE,
        author=actor.staff,
        body=f"相談 {target.number} に統合しました{note}",
        data={"merged_into": target.number},
    )
    # Work still to do on the matter (handoffs, callbacks) is done on the survivor now.
    moved["rows"] = _move(_ticket_columns(), source.id, target.id)
    record = _record(actor, "ticket", source.id, target.id, reason, moved)
    db.session.expire_all()
    detail = f"into={target.number} record={record.id}"
    audit.record(actor, "merge", "ticket", source.number, detail)
    return record


def get_record(record_id: int) -> MergeRecord:
    record = db.session.get(MergeRecord, record_id)
    if record is None:
        raise NotFound("統合の記録が見つかりません。")
    return record


def labels_for(records: list[MergeRecord]) -> dict[int, tuple[str, str]]:
    """What each record names, for the administrator: ticket numbers, or citizen ids (no
    personal data); the numbers in one query."""
    ticket_ids = {i for r in records if r.kind == "ticket" for i in (r.source_id, r.target_id)}
    numbers = (
        dict(
            db.session.execute(
                sa.select(Ticket.id, Ticket.number).where(Ticket.id.in_(ticket_ids))
            ).all()
        )
        if ticket_ids
        else {}
    )
    out = {}
    for r in records:
        if r.kind == "ticket":
            out[r.id] = (
                f"相談 {numbers.get(r.source_id, '?')}",
                f"相談 {numbers.get(r.target_id, '?')}",
            )
        else:
            out[r.id] = (f"相談者番号 {r.source_id}", f"相談者番号 {r.target_id}")
    return out


def labels(record: MergeRecord) -> tuple[str, str]:
    return labels_for([record])[record.id]


def list_records(limit: int = 200) -> list[MergeRecord]:
    return list(
        db.session.scalars(sa.select(MergeRecord).order_by(MergeRecord.id.desc()).limit(limit))
    )


def undo(actor: Actor, record: MergeRecord) -> MergeRecord:
    """Reverse a merge exactly (administrators only): what moved moves back, fields filled in
    are cleared where still unchanged, the pointer goes. Refused when a later merge built on it."""
    actor.require(*UNDO_ROLES)
    if record.undone_at is not None:
        raise InvalidTransition("この統合は既に取り消されています。")
    later = db.session.scalar(
        sa.select(MergeRecord.id).where(
            MergeRecord.kind == record.kind,
            MergeRecord.undone_at.is_(None),
            MergeRecord.id > record.id,
            sa.or_(
                MergeRecord.source_id.in_([record.target_id, record.source_id]),
                MergeRecord.target_id == record.source_id,
            ),
        )
    )
    if later is not None:
        raise InvalidTransition(
            f"この統合のあとに統合（記録 {later}）があります。新しいものから取り消してください。"
        )
    if record.kind == "citizen":
        _undo_citizens(record)
        audit.record(actor, "unmerge", "citizen", record.source_id, f"record={record.id}")
    else:
        _undo_tickets(actor, record)
        audit.record(actor, "unmerge", "ticket", record.source_id, f"record={record.id}")
    record.undone_at = utcnow()
    record.undone_by_id = actor.staff_id
    db.session.flush()
    return record


def _undo_citizens(record: MergeRecord) -> None:
    source = db.session.get(Citizen, record.source_id)
    target = db.session.get(Citizen, record.target_id)
    moved = record.moved or {}
    _move_back(moved.get("rows") or {}, source.id, target.id)
    for model, ids in ((CitizenPhone, moved.get("phones")), (CitizenEmail, moved.get("emails"))):
        if ids:
            db.session.execute(
                sa.update(model)
                .where(model.id.in_(ids), model.citizen_id == target.id)
                .values(citizen_id=source.id)
            )
    for field in moved.get("filled") or {}:
        if getattr(target, field) == getattr(source, field):
            setattr(target, field, None)
            if field in FOLD_FIELDS:
                setattr(target, FOLD_FIELDS[field], None)
    source.merged_into_id = None
    db.session.flush()
    db.session.expire_all()


def _undo_tickets(actor: Actor, record: MergeRecord) -> None:
    source = db.session.get(Ticket, record.source_id)
    target = db.session.get(Ticket, record.target_id)
    moved = record.moved or {}
    if moved.get("citizen_set") and target.citizen_id == source.citizen_id:
        target.citizen_id = None
    _move_back(moved.get("rows") or {}, source.id, target.id)
    source.merged_into_id = None
    source.is_open = bool(moved.get("was_open"))
    for item, other in ((target, source), (source, target)):
        tickets.add_entry(
            item,
            EntryKind.NOTE,
            author=actor.staff,
            body=f"相談 {other.number} との統合を取り消しました",
            data={"unmerged": other.number},
        )


def resolve_ticket(ticket: Ticket) -> Ticket:
    """A merged ticket's survivor (following a chain of merges)."""
    seen = set()
    while ticket.merged_into_id and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = db.session.get(Ticket, ticket.merged_into_id)
    return ticket


def moved_by_citizen_merge(table: str, row_id: int, citizen_id: int) -> bool:
    """Whether the row ``row_id`` of ``table`` came to ``citizen_id`` by a merge still in force
    (a LINE contact of the duplicate: its messages go on with the survivor's open case)."""
    records = db.session.scalars(
        sa.select(MergeRecord).where(
            MergeRecord.kind == "citizen",
            MergeRecord.target_id == citizen_id,
            MergeRecord.undone_at.is_(None),
        )
    )
    for record in records:
        columns = ((record.moved or {}).get("rows") or {}).get(table) or {}
        if any(row_id in ids for ids in columns.values()):
            return True
    return False


def merged_ids(ticket: Ticket) -> list[int]:
    """The ticket and every ticket merged into it, directly or through another merge."""
    ids, frontier = [ticket.id], [ticket.id]
    while frontier:
        frontier = list(
            db.session.scalars(sa.select(Ticket.id).where(Ticket.merged_into_id.in_(frontier)))
        )
        frontier = [i for i in frontier if i not in ids]
        ids.extend(frontier)
    return ids


def timeline_of(ticket: Ticket) -> tuple[list[TimelineEntry], list[str]]:
    """The ticket's timeline with the entries of tickets merged into it, in order, and the
    numbers of those tickets (one query for a ticket nothing was merged into)."""
    ids = merged_ids(ticket)
    if len(ids) == 1:
        return list(ticket.timeline), []
    entries = db.session.scalars(
        sa.select(TimelineEntry)
        .where(TimelineEntry.ticket_id.in_(ids))
        .order_by(TimelineEntry.created_at, TimelineEntry.id)
    )
    numbers = db.session.scalars(sa.select(Ticket.number).where(Ticket.id.in_(ids[1:])))
    return list(entries), sorted(numbers)


# --- 関連する相談 ------------------------------------------------------------------------------


def link_tickets(actor: Actor, ticket: Ticket, other: Ticket) -> TicketLink:
    """Link two tickets without merging them; shown on both."""
    actor.require(*DESK_ROLES)
    other = resolve_ticket(other)
    if other.id == ticket.id:
        raise ValidationFailed("同じ相談は関連付けられません。")
    low, high = sorted((ticket.id, other.id))
    existing = db.session.scalar(
        sa.select(TicketLink).where(TicketLink.ticket_id == low, TicketLink.related_id == high)
    )
    if existing is not None:
        raise ValidationFailed(f"相談 {other.number} とは既に関連付けられています。")
    link = TicketLink(ticket_id=low, related_id=high, staff_id=actor.staff_id)
    db.session.add(link)
    db.session.flush()
    audit.record(actor, "update", "ticket", ticket.number, f"related={other.number}")
    return link


def unlink_tickets(actor: Actor, ticket: Ticket, link_id: int) -> None:
    actor.require(*DESK_ROLES)
    link = db.session.get(TicketLink, link_id)
    if link is None or ticket.id not in (link.ticket_id, link.related_id):
        raise NotFound("関連付けが見つかりません。")
    db.session.delete(link)
    db.session.flush()
    audit.record(actor, "update", "ticket", ticket.number, f"unrelated={link_id}")


def related(ticket: Ticket) -> list[tuple[int, Ticket]]:
    """(link id, the other ticket) for each ticket linked to this one, newest first."""
    rows = db.session.execute(
        sa.select(TicketLink.id, Ticket)
        .join(
            Ticket,
            sa.or_(
                sa.and_(TicketLink.ticket_id == ticket.id, Ticket.id == TicketLink.related_id),
                sa.and_(TicketLink.related_id == ticket.id, Ticket.id == TicketLink.ticket_id),
            ),
        )
        .order_by(Ticket.created_at.desc())
    )
    return [(row[0], row[1]) for row in rows]
