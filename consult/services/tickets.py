"""Tickets and their timeline: creation, numbering, status rules, notes, assignment, closing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from consult import plugins, rollup, signals, timeline
from consult.extensions import db
from consult.models import (
    AuditEvent,
    Category,
    Channel,
    Citizen,
    EntryKind,
    OutboxMessage,
    Priority,
    Role,
    Staff,
    Status,
    Ticket,
    TimelineEntry,
)
from consult.services import audit, numbering, outbox, protection
from consult.services import search as search_index
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import (
    InvalidTransition,
    NotFound,
    TicketClosed,
    ValidationFailed,
)
from consult.services.normalize import clean_text
from consult.timeutil import fiscal_year, tokyo_today, utcnow

NUMBER_PATTERN = re.compile(r"(\d{4})-(\d{6})")
MAX_SUBJECT = 200
MAX_TEXT = 10_000

# 受付 → 対応中 → 引継中 → 回答待ち → 解決 → 完了; any open state may be closed with a summary.
TRANSITIONS: dict[Status, set[Status]] = {
    Status.RECEIVED: {
        Status.IN_PROGRESS,
        Status.HANDED_OFF,
        Status.AWAITING_REPLY,
        Status.RESOLVED,
    },
    Status.IN_PROGRESS: {Status.HANDED_OFF, Status.AWAITING_REPLY, Status.RESOLVED},
    Status.HANDED_OFF: {Status.IN_PROGRESS, Status.AWAITING_REPLY, Status.RESOLVED},
    Status.AWAITING_REPLY: {Status.IN_PROGRESS, Status.HANDED_OFF, Status.RESOLVED},
    Status.RESOLVED: set(),
    Status.CLOSED: set(),
}
REOPENABLE = {Status.RESOLVED, Status.CLOSED}


def format_number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


def allocate_number(
    at: datetime, reservation: numbering.Reservation | None = None
) -> tuple[int, int, str]:
    year = fiscal_year(tokyo_today(at))
    if reservation is not None:
        sequence = reservation.take(str(year))
    else:
        sequence = numbering.next_value("ticket", str(year))
    return year, sequence, format_number(year, sequence)


def _category(category_id: int | None) -> Category | None:
    if category_id is None:
        return None
    category = db.session.get(Category, category_id)
    if category is None or not category.active:
        raise ValidationFailed("選択された分類は存在しません。一覧から選び直してください。")
    return category


def add_entry(
    ticket: Ticket,
    kind: EntryKind,
    *,
    author: Staff | None = None,
    body: str = "",
    data: dict | timeline.Details | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    """Append to the timeline; every part of the system records its events through this.

    `data` of a kind with a typed shape (consult.timeline) is given as that shape, and stored
    through its one writer."""
    if isinstance(data, timeline.MessageOut | timeline.Delivery):
        if timeline.KIND_OF[type(data)] != kind:
            raise TypeError(f"{type(data).__name__} is not the data of a {kind} entry")
        data = timeline.dump(data)
    at = at or utcnow()
    entry = TimelineEntry(
        ticket=ticket, kind=kind, author=author, body=body, data=data or {}, created_at=at
    )
    db.session.add(entry)
    if at > ticket.last_activity_at:
        ticket.last_activity_at = at
    signals.timeline_entry_added.send(ticket, entry=entry)
    return entry


def record_outgoing(
    ticket: Ticket,
    *,
    channel: str,
    recipient: str,
    body: str,
    entry_body: str | None = None,
    subject: str | None = None,
    headers: dict | None = None,
    author: Staff | None = None,
    automatic: timeline.Automatic | None = None,
    faq_entry_id: int | None = None,
    auto_until: datetime | None = None,
    at: datetime | None = None,
) -> tuple[OutboxMessage, TimelineEntry]:
    """A message to the citizen: its outbox row and its MESSAGE_OUT entry, in the caller's
    transaction, so that neither exists without the other. The only place that does both.

    `body` is what the channel sends; `entry_body` what the timeline shows when it differs
    (the text without the mail signature or LINE's sender line). The channel's own parts (mail
    threading headers and Message-ID, LINE's retry key, reply token, quick replies) travel in
    `headers`. An automatic answer names its kind, which the automatic-answer policy
    (consult.services.auto_answer) reads back."""
    message = outbox.enqueue(
        channel=channel,
        recipient=recipient,
        body=body,
        subject=subject,
        headers=headers,
        ticket=ticket,
    )
    db.session.flush()  # the entry names the row's id
    entry = add_entry(
        ticket,
        EntryKind.MESSAGE_OUT,
        author=author,
        body=body if entry_body is None else entry_body,
        data=timeline.MessageOut(
            channel=channel,
            outbox_id=message.id,
            subject=subject,
            automatic=automatic,
            faq_entry_id=faq_entry_id,
            auto_until=auto_until,
        ),
        at=at,
    )
    return message, entry


def create_ticket(
    actor: Actor,
    *,
    channel: Channel,
    subject: str,
    category_id: int | None = None,
    citizen: Citizen | None = None,
    priority: Priority = Priority.NORMAL,
    first_note: str | None = None,
    first_message: str | None = None,
    assignee: Staff | None = None,
    session_started_at: datetime | None = None,
    at: datetime | None = None,
    flush: bool = True,
    numbers: numbering.Reservation | None = None,
) -> Ticket:
    """A new ticket with its number. Staff need a desk role; channel intake acts as the system.

    `flush=False` leaves the INSERT to the caller's next flush (bulk intake flushes a batch of
    tickets at once); the ticket has its number but no id until then. `numbers` takes the number
    from a reservation (see numbering.Reservation) instead of one UPDATE per ticket."""
    if actor.staff is not None or not actor.trusted:
        actor.require(*DESK_ROLES)
    subject = clean_text(subject, "件名", MAX_SUBJECT, required=True)
    note = clean_text(first_note, "最初のメモ", MAX_TEXT)
    category = _category(category_id)
    now = at or utcnow()
    year, sequence, number = allocate_number(now, numbers)
    ticket = Ticket(
        number=number,
        fiscal_year=year,
        sequence=sequence,
        channel=Channel(channel),
        subject=subject,
        category=category,
        citizen=citizen,
        priority=Priority(priority),
        status=Status.RECEIVED,
        is_open=True,
        assignee=assignee,
        created_by=actor.staff,
        created_at=now,
        last_activity_at=now,
        session_started_at=session_started_at,
    )
    db.session.add(ticket)
    if first_message:
        add_entry(ticket, EntryKind.MESSAGE_IN, body=first_message, at=now)
    if note:
        add_entry(ticket, EntryKind.NOTE, author=actor.staff, body=note, at=now)
    if flush:
        db.session.flush()
    audit.record(actor, "create", "ticket", ticket.number)
    signals.ticket_created.send(ticket, actor=actor)
    return ticket


def get_ticket(actor: Actor, number: str, *, audit_view: bool = True) -> Ticket:
    """A ticket for the desk; the view of its personal data is audited."""
    actor.require(*DESK_ROLES)
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
    if ticket is None:
        raise NotFound("相談が見つかりません。")
    if audit_view:
        audit.record(actor, "view", "ticket", ticket.number)
    return ticket


# A ticket page left open refreshes its header and timeline on every live event.
LIVE_VIEW_WINDOW = timedelta(minutes=10)


def record_live_view(actor: Actor, ticket: Ticket, now: datetime | None = None) -> bool:
    """Audit a live refresh of an open ticket page, at most once per person and ticket in
    `LIVE_VIEW_WINDOW`.

    A refresh shows what arrived since the page was drawn (a LINE message, an officer's
    対応記録), so it is a view; but one row per event would bury the log under a busy LINE
    conversation without telling anyone more than "this person had this case open then".
    The page's own view (or the last refresh's row) within the window already says that."""
    actor.require(*DESK_ROLES)
    since = (now or utcnow()) - LIVE_VIEW_WINDOW
    recent = db.session.scalar(
        sa.select(AuditEvent.id)
        .where(
            AuditEvent.staff_id == actor.staff_id,
            AuditEvent.at >= since,
            AuditEvent.action == "view",
            AuditEvent.object_type == "ticket",
            AuditEvent.object_id == ticket.number,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    audit.record(actor, "view", "ticket", ticket.number, "自動更新")
    return True


def record_view(actor: Actor, ticket: Ticket) -> None:
    """The staff view of a ticket loaded without auditing (to follow a merge first)."""
    actor.require(*DESK_ROLES)
    audit.record(actor, "view", "ticket", ticket.number)


def record_print(actor: Actor, ticket: Ticket) -> None:
    """Printing puts personal data on paper: audited as its own action."""
    actor.require(*DESK_ROLES)
    audit.record(actor, "print", "ticket", ticket.number)


def add_note(actor: Actor, ticket: Ticket, body: str) -> TimelineEntry:
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    body = clean_text(body, "メモ", MAX_TEXT, required=True)
    entry = add_entry(ticket, EntryKind.NOTE, author=actor.staff, body=body)
    if ticket.status == Status.RECEIVED:
        _set_status(actor, ticket, Status.IN_PROGRESS)
    return entry


def _set_status(
    actor: Actor,
    ticket: Ticket,
    new: Status,
    reason: str | None = None,
    old: Status | None = None,
) -> None:
    old = old or ticket.status
    ticket.status = new
    ticket.is_open = new != Status.CLOSED
    body = f"{old.label} → {new.label}"
    add_entry(
        ticket,
        EntryKind.STATUS_CHANGE,
        author=actor.staff,
        body=reason or "",
        data={"from": old.value, "to": new.value, "label": body},
    )
    signals.ticket_status_changed.send(ticket, actor=actor, old=old, new=new)


def change_status(
    actor: Actor,
    ticket: Ticket,
    new: Status | str,
    reason: str | None = None,
    *,
    internal: bool = False,
) -> None:
    """Move along the allowed transitions; closing and reopening have their own operations.

    The change is taken with one conditional UPDATE on the status this request read: two desks
    pressing at once (or a desk and a handoff) both read the old status on PostgreSQL and both
    wrote a status entry. The loser of a person's action is told the case changed meanwhile.
    `internal=True` is for steps the system takes on its own (a handoff made or settled, a LINE
    reply): losing to a change that already reached `new` is no failure there, it is left alone.
    """
    actor.require(*DESK_ROLES)
    try:
        new = Status(new)
    except ValueError as exc:
        raise InvalidTransition("指定された状態はありません。") from exc
    if new == Status.CLOSED:
        raise InvalidTransition("完了にするには「完了にする」から対応結果を入力してください。")
    ticket.ensure_open()
    if ticket.status == new:
        raise InvalidTransition(f"この相談はすでに「{new.label}」です。")
    if new not in TRANSITIONS[ticket.status]:
        if ticket.status in REOPENABLE and new == Status.IN_PROGRESS:
            raise InvalidTransition(
                "解決済みの相談を対応中に戻すには「再開」から理由を入力してください。"
            )
        raise InvalidTransition(f"「{ticket.status.label}」から「{new.label}」には変更できません。")
    old = ticket.status
    values: dict = {"status": new, "is_open": True}
    if new == Status.RESOLVED and reason:
        values["resolution_summary"] = clean_text(reason, "対応結果", MAX_TEXT)
    reason = clean_text(reason, "理由", MAX_TEXT) or None
    if not _take_over(ticket, values, Ticket.status == old):
        if ticket.status == new:
            if internal:
                return  # someone else already made the change this step wanted
            raise InvalidTransition(f"この相談はすでに「{new.label}」です。")
        if ticket.status == Status.CLOSED:
            raise TicketClosed(ALREADY_CLOSED)
        raise InvalidTransition(CHANGED_MEANWHILE)
    _set_status(actor, ticket, new, reason, old=old)


ALREADY_CLOSED = "この相談はすでに完了しています。"
CHECK_AGAIN = "内容を確かめてから、もう一度操作してください。"
CHANGED_MEANWHILE = "この相談の状態がほかの操作で変わりました。" + CHECK_AGAIN


def _take_over(ticket: Ticket, values: dict, *conditions) -> bool:
    """Change one ticket with one conditional UPDATE; False when another request got there first.

    A read followed by a write lets two requests at once both through (on PostgreSQL both read
    the old row before either committed): two desks pressing 完了 closed the case twice and the
    reports counted its session twice. The loser of `WHERE <what was read>` waits for the
    winner's commit, matches nothing, and is told so; the object is re-read either way.
    """
    db.session.flush()
    before = rollup.snapshot(ticket)
    result = db.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(ticket)
    if result.rowcount == 1:
        # An UPDATE the flush hooks cannot see: the summary (search), the session (reports).
        search_index.touch([ticket.id])
        rollup.moved(ticket, before)
    return result.rowcount == 1


def close(actor: Actor, ticket: Ticket, summary: str) -> None:
    """Close with a resolution summary (required); also ends a running counter or phone session."""
    actor.require(*DESK_ROLES)
    if ticket.status == Status.CLOSED:
        raise TicketClosed(ALREADY_CLOSED)
    summary = clean_text(summary, "対応結果の要約", MAX_TEXT, required=True)
    now = utcnow()
    old = ticket.status
    values = {
        "status": Status.CLOSED,
        "is_open": False,
        "resolution_summary": summary,
        "closed_at": now,
    }
    unassigned = ticket.assignee_id is None
    if actor.staff is not None:
        # Whoever closes a case nobody owned becomes its 担当 (in the same UPDATE, so a
        # concurrent 担当変更 is never overwritten).
        values["assignee_id"] = sa.func.coalesce(Ticket.assignee_id, actor.staff.id)
    closed = _take_over(ticket, values, Ticket.status == old)
    if not closed:
        if ticket.status == Status.CLOSED:
            raise TicketClosed(ALREADY_CLOSED)
        raise InvalidTransition(CHANGED_MEANWHILE)
    if ticket.session_started_at and not ticket.session_ended_at:
        end_session(actor, ticket, at=now)
    if unassigned and actor.staff is not None and ticket.assignee_id == actor.staff.id:
        _record_ownership(actor, ticket, at=now)
    _set_status(actor, ticket, Status.CLOSED, summary, old=old)
    signals.ticket_closed.send(ticket, actor=actor)


def _record_ownership(actor: Actor, ticket: Ticket, at: datetime | None = None) -> None:
    """The timeline says who took the case on, as an explicit 担当変更 would."""
    add_entry(
        ticket,
        EntryKind.ASSIGNMENT,
        author=actor.staff,
        body=actor.staff.full_name,
        data={"assignee_id": actor.staff.id, "taken": True},
        at=at,
    )


def reopen(actor: Actor, ticket: Ticket, reason: str) -> None:
    """Back to 対応中 from 解決 or 完了, taken on the status read (one reopening of two at once)."""
    actor.require(*DESK_ROLES)
    if ticket.status not in REOPENABLE:
        raise InvalidTransition("再開できるのは「解決」または「完了」の相談だけです。")
    if ticket.disposed_at is not None:  # its personal data is gone (consult.services.retention)
        raise InvalidTransition(
            "保存期間を過ぎて記録を廃棄した相談は再開できません。新しい相談として受け付けてください。"
        )
    reason = clean_text(reason, "再開の理由", 2000, required=True)
    old = ticket.status
    reopened = _take_over(
        ticket,
        {"status": Status.IN_PROGRESS, "is_open": True, "closed_at": None},
        Ticket.status == old,
    )
    if not reopened:
        raise InvalidTransition(CHANGED_MEANWHILE)
    _set_status(actor, ticket, Status.IN_PROGRESS, reason, old=old)


NOT_SHOWN = "not shown"


def assign(
    actor: Actor, ticket: Ticket, assignee_id: int | None, *, shown: int | str | None = NOT_SHOWN
) -> None:
    """Set the assignee, taken on the assignee this request read.

    The change itself is take_assignment's: one of two requests at once wins. `shown` is the
    assignee's id (None for nobody) that the page showed: two consultants who both saw
    未割り当て and pressed one after the other are told who took it, as if at the same moment.
    """
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    assignee = None
    if assignee_id is not None:
        assignee = db.session.get(Staff, assignee_id)
        if assignee is None or not assignee.active or assignee.role not in DESK_ROLES:
            raise ValidationFailed("担当者には有効な相談員またはセンター責任者を選んでください。")
    if assignee == ticket.assignee:
        return
    if shown != NOT_SHOWN and shown != ticket.assignee_id:
        raise InvalidTransition(_holder_message(ticket))
    take_assignment(actor, ticket, assignee)


def hand_over(actor: Actor, ticket: Ticket, assignee_id: int, note: str) -> TimelineEntry:
    """Hand a case to a colleague with a note: the 担当 changes (taken on the 担当 read, as
    take_assignment does), the note goes on the timeline, and the new 担当 is told live."""
    from consult.live import services as live

    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    note = clean_text(note, "引継ぎのメモ", 2000, required=True)
    assignee = db.session.get(Staff, assignee_id)
    if assignee is None or not assignee.active or assignee.role not in DESK_ROLES:
        raise ValidationFailed("引き継ぐ相手には有効な相談員またはセンター責任者を選んでください。")
    if assignee.id == ticket.assignee_id:
        raise ValidationFailed(f"この相談はすでに{assignee.full_name}さんが担当しています。")
    seen = ticket.assignee_id
    taken = _take_over(
        ticket,
        {"assignee_id": assignee.id},
        Ticket.assignee_id.is_(None) if seen is None else Ticket.assignee_id == seen,
    )
    if not taken:
        raise InvalidTransition(_holder_message(ticket))
    entry = add_entry(
        ticket,
        EntryKind.ASSIGNMENT,
        author=actor.staff,
        body=f"{assignee.full_name}さんに引き継ぎました。\n{note}",
        data={"assignee_id": assignee.id, "handed_over_from": seen, "handover": True},
    )
    # Ids, the number and a label only: live events are kept a day, out of disposal.
    live.publish(
        "ticket.handed_over",
        [f"staff:{assignee.id}"],
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "by": (actor.staff.display_name if actor.staff else "")[:80],
        },
    )
    audit.record(actor, "update", "ticket", ticket.number, "handover")
    return entry


def take_if_unowned(actor: Actor, ticket: Ticket) -> bool:
    """The first member of staff to answer a case nobody owns (an email or LINE reply) becomes
    its 担当, in one conditional UPDATE so that a 担当 set meanwhile is never overwritten."""
    staff = actor.staff
    if staff is None or staff.role not in DESK_ROLES or ticket.assignee_id is not None:
        return False
    if not _take_over(ticket, {"assignee_id": staff.id}, Ticket.assignee_id.is_(None)):
        return False
    _record_ownership(actor, ticket)
    return True


def _holder_message(ticket: Ticket) -> str:
    if ticket.assignee is None:
        return "この相談はほかの操作で担当者が外されました。" + CHECK_AGAIN
    name = ticket.assignee.full_name
    return f"この相談はほかの操作で担当者が変わり、今は{name}さんが担当しています。"


def take_assignment(actor: Actor, ticket: Ticket, assignee: Staff | None) -> None:
    """Make `assignee` the assignee with one conditional UPDATE on the assignee this request read.

    Two consultants taking one case at once both read 未割り当て and both became its assignee
    (two entries, the last write winning silently). The loser is told who has it now, and
    nothing is written for it; the same assignment made by someone else first is no error.
    """
    seen = ticket.assignee_id
    wanted = assignee.id if assignee else None
    taken = _take_over(
        ticket,
        {"assignee_id": wanted},
        Ticket.assignee_id.is_(None) if seen is None else Ticket.assignee_id == seen,
    )
    if not taken:
        if ticket.assignee_id == wanted:
            if assignee is None:
                raise InvalidTransition("この相談の担当者はすでに外されています。")
            if assignee == actor.staff:
                raise InvalidTransition("この相談はすでにあなたが担当しています。")
            raise InvalidTransition(f"この相談はすでに{assignee.full_name}さんが担当しています。")
        raise InvalidTransition(_holder_message(ticket))
    add_entry(
        ticket,
        EntryKind.ASSIGNMENT,
        author=actor.staff,
        body=assignee.full_name if assignee else "担当者なし",
        data={"assignee_id": wanted},
    )


def update_details(
    actor: Actor, ticket: Ticket, *, subject: str, category_id: int | None, priority: str
) -> None:
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    subject = clean_text(subject, "件名", MAX_SUBJECT, required=True)
    category = _category(category_id)
    try:
        priority_value = Priority(priority)
    except ValueError as exc:
        raise ValidationFailed("優先度の値が正しくありません。") from exc
    changes = []
    if subject != ticket.subject:
        changes.append(f"件名: {subject}")
        ticket.subject = subject
    if category != ticket.category:
        changes.append(f"分類: {category.name if category else 'なし'}")
        old_category_id = ticket.category.id if ticket.category else None
        ticket.category = category
        signals.ticket_category_changed.send(
            ticket, actor=actor, old=old_category_id, new=category.id if category else None
        )
    if priority_value != ticket.priority:
        ticket.priority = priority_value
        changes.append(f"優先度: {ticket.priority_label}")
    if changes:
        add_entry(
            ticket, EntryKind.NOTE, author=actor.staff, body="／".join(changes), data={"edit": True}
        )


def link_citizen(actor: Actor, ticket: Ticket, citizen: Citizen | None) -> None:
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    if citizen == ticket.citizen:
        return
    ticket.citizen = citizen
    add_entry(
        ticket,
        EntryKind.CITIZEN_LINK,
        author=actor.staff,
        body="相談者を紐付けました" if citizen else "相談者の紐付けを外しました",
        data={"citizen_id": citizen.id if citizen else None},
    )
    audit.record(actor, "update", "ticket", ticket.number, "citizen")


def save_citizen(actor: Actor, ticket: Ticket, data, choice: str | None = None) -> Citizen:
    """Create and link the ticket's citizen, or update the one it has (open tickets only).

    Registering the sender of an email or a LINE message goes through the intake's choice: a
    strong match asks "this person or a new one" (``citizens.ChoiceRequired``) first."""
    from consult.services import citizens

    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    if ticket.citizen is None:
        citizen = citizens.citizen_for_intake(actor, data, choice=choice)
        if citizen is None:
            raise ValidationFailed(
                "相談者の氏名・電話番号・メールアドレスのいずれかを入力してください。"
            )
        link_citizen(actor, ticket, citizen)
        return citizen
    return citizens.update_citizen(actor, ticket.citizen, data)


def start_session(actor: Actor, ticket: Ticket, at: datetime | None = None) -> None:
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    if ticket.session_started_at is None:
        ticket.session_started_at = at or utcnow()
        add_entry(ticket, EntryKind.SESSION, author=actor.staff, body="対応開始")


def end_session(actor: Actor, ticket: Ticket, at: datetime | None = None) -> None:
    actor.require(*DESK_ROLES)
    if ticket.session_started_at is None:
        raise InvalidTransition("対応が開始されていません。")
    if ticket.session_ended_at is not None:
        return
    at = at or utcnow()
    # Pressed twice at once (two tabs, 対応終了 and 完了 together) the session still ends once,
    # and the reports count it once: the second press changes nothing, as a later one would.
    ended = _take_over(
        ticket,
        {
            "session_ended_at": at,
            "duration_seconds": max(0, int((at - ticket.session_started_at).total_seconds())),
        },
        Ticket.session_ended_at.is_(None),
    )
    if not ended:
        return
    add_entry(
        ticket,
        EntryKind.SESSION,
        author=actor.staff,
        body="対応終了",
        data={"duration_seconds": ticket.duration_seconds},
        at=at,
    )
    signals.ticket_session_ended.send(ticket, actor=actor)


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    channel: str | None = None
    status: str | None = None
    category_id: int | None = None
    assignee_id: int | None = None
    include_closed: bool = False
    unassigned: bool = False


@dataclass(frozen=True)
class Cursor:
    """Keyset position: (last_activity_at, id). Any page depth costs the same."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{int(self.at.timestamp() * 1_000_000)}.{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        if not raw:
            return None
        try:
            micros, ident = raw.split(".", 1)
            return cls(datetime.fromtimestamp(int(micros) / 1_000_000, UTC), int(ident))
        except (ValueError, OverflowError, OSError):
            return None


@dataclass
class QueuePage:
    tickets: list[Ticket]
    next_cursor: str | None
    prev_cursor: str | None


def queue(
    actor: Actor,
    flt: QueueFilter,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    page_size: int = 50,
) -> QueuePage:
    actor.require(*DESK_ROLES)
    # The queue shows each row's category, citizen and assignee: load them in three queries
    # rather than one per row.
    query = sa.select(Ticket).options(
        selectinload(Ticket.category), selectinload(Ticket.citizen), selectinload(Ticket.assignee)
    )
    if flt.status:
        query = query.where(Ticket.status == Status(flt.status))
    elif not flt.include_closed:
        query = query.where(Ticket.is_open.is_(True))
    if flt.channel:
        query = query.where(Ticket.channel == Channel(flt.channel))
    if flt.category_id:
        query = query.where(Ticket.category_id == flt.category_id)
    if flt.unassigned:
        query = query.where(Ticket.assignee_id.is_(None))
    elif flt.assignee_id:
        query = query.where(Ticket.assignee_id == flt.assignee_id)
    key = sa.tuple_(Ticket.last_activity_at, Ticket.id)
    if before is not None:
        rows = list(
            db.session.scalars(
                query.where(
                    key
                    > sa.tuple_(
                        sa.literal(before.at, Ticket.last_activity_at.type), sa.literal(before.id)
                    )
                )
                .order_by(Ticket.last_activity_at.asc(), Ticket.id.asc())
                .limit(page_size + 1)
            )
        )
        has_more_before = len(rows) > page_size
        rows = list(reversed(rows[:page_size]))
        next_cursor = _cursor(rows[-1]) if rows else None
        prev_cursor = _cursor(rows[0]) if rows and has_more_before else None
        return QueuePage(rows, next_cursor, prev_cursor)
    if after is not None:
        query = query.where(
            key
            < sa.tuple_(sa.literal(after.at, Ticket.last_activity_at.type), sa.literal(after.id))
        )
    rows = list(
        db.session.scalars(
            query.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc()).limit(page_size + 1)
        )
    )
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    return QueuePage(
        rows,
        _cursor(rows[-1]) if rows and has_more else None,
        _cursor(rows[0]) if rows and after is not None else None,
    )


def _cursor(ticket: Ticket) -> str:
    return Cursor(ticket.last_activity_at, ticket.id).encode()


def find_by_number(actor: Actor, text: str) -> Ticket | None:
    actor.require(*DESK_ROLES)
    match = NUMBER_PATTERN.search(text or "")
    if not match:
        return None
    return db.session.scalar(sa.select(Ticket).where(Ticket.number == match.group(0)))


@dataclass(frozen=True)
class SearchTerms:
    """What the search box held, read every way a consultant may have meant it."""

    text: str  # NFKC, trimmed
    phone: str | None  # a whole phone number, normalised
    email: str | None  # a whole email address, normalised
    digits: str | None  # 4+ digits of a phone or ticket number ("2681", "000303")
    name: str | None  # folded for name/kana prefixes (normalize.name_key)
    words: str | None  # the text as typed, for the words of the case


def search_terms(text: str) -> SearchTerms | None:
    from consult.services.normalize import name_key, nfkc, normalize_email, normalize_phone

    text = nfkc((text or "").strip()[:100]).strip()
    if not text:
        return None
    phone = normalize_phone(text)
    email = normalize_email(text) if "@" in text else None
    digits = re.sub(r"[\s\-‐－ー()（）]", "", text)
    digits = digits if digits.isdigit() and len(digits) >= 4 else None
    return SearchTerms(
        text=text,
        phone=phone,
        email=email,
        digits=digits,
        name=None if (digits or email) else name_key(text),
        words=None if (digits or email or phone) else text,
    )


@dataclass
class SearchResults:
    """One search: the tickets best first, a highlighted passage per ticket where one exists."""

    tickets: list[Ticket]
    snippets: dict[int, Any]  # ticket id → Markup (escaped, words in <mark>)
    kinds: list[str]


def search(actor: Actor, text: str, limit: int = 100, filters: Any = None) -> list[Ticket]:
    """The tickets `search_results` finds, best first."""
    return search_results(actor, text, limit=limit, filters=filters, with_snippets=False).tickets


def search_results(
    actor: Actor,
    text: str,
    limit: int = 100,
    filters: Any = None,
    with_snippets: bool = True,
) -> SearchResults:
    """Find tickets by any of: ticket number (whole or part), phone (whole or part), email,
    the citizen's name or kana, an email sender's name and address as received, and the words
    of the case (subject, resolution, notes, messages in and out, handoff records), through the
    search index (consult.services.search). Ranked: exact phone and email matches first, then
    by relevance, then newest activity. Audited as a search, with the kinds of term it read,
    never the term itself."""
    from consult.models import CitizenEmail, CitizenPhone

    actor.require(*DESK_ROLES)
    filters = filters or search_index.Filters()
    terms = search_terms(text)
    if terms is None:
        return SearchResults([], {}, [])
    exact = []
    kinds = []
    if terms.phone:
        kinds.append("phone")
        exact.append(
            sa.select(Ticket.id)
            .join(CitizenPhone, CitizenPhone.citizen_id == Ticket.citizen_id)
            .where(CitizenPhone.number == terms.phone)
        )
    if terms.digits:
        kinds.append("digits")
    if terms.email:
        kinds.append("email")
        exact.append(
            sa.select(Ticket.id)
            .join(CitizenEmail, CitizenEmail.citizen_id == Ticket.citizen_id)
            .where(CitizenEmail.address == terms.email)
        )
    if terms.name:
        kinds.append("name")
    if terms.words:
        kinds.append("words")
    for source in plugins.registry().ticket_search:
        found = source(terms)
        if found is not None:
            exact.append(found)
    scores: dict[int, float] = {}
    if exact:
        query = sa.select(Ticket.id).where(Ticket.id.in_(sa.union(*exact)))
        query = filters.apply(query, Ticket.__table__)
        for ticket_id in db.session.scalars(query):
            scores[ticket_id] = float("inf")
    words = None
    if not terms.email:
        words = search_index.Query.parse(terms.digits or terms.text)
    if words is not None:
        for ticket_id, score in search_index.matches(words, filters).items():
            scores.setdefault(ticket_id, score)
    found_tickets: list[Ticket] = []
    if scores:
        # Each row shows its citizen, category and assignee: three queries, not one per row.
        rows = db.session.execute(
            sa.select(Ticket.id, Ticket.last_activity_at, Ticket.citizen_id).where(
                Ticket.id.in_(list(scores))
            )
        ).all()
        # 支援措置 / 利用停止: the cases of a person this actor may not find are left out, as if
        # nothing matched; a search by name, phone or email that reached a protected person is
        # audited and reported to the supervisors.
        hidden, stopped = protection.split_visible(actor, {r.citizen_id for r in rows})
        if hidden or stopped:
            rows = [r for r in rows if r.citizen_id not in hidden | stopped]
        if hidden and {"phone", "email", "name", "digits"} & set(kinds):
            protection.report_search(actor, hidden, "ticket.search")
        best = sorted(rows, key=lambda r: (scores[r.id], r.last_activity_at, r.id), reverse=True)
        ids = [r.id for r in best[:limit]]
        loaded = {
            t.id: t
            for t in db.session.scalars(
                sa.select(Ticket)
                .where(Ticket.id.in_(ids))
                .options(
                    selectinload(Ticket.citizen),
                    selectinload(Ticket.category),
                    selectinload(Ticket.assignee),
                )
            )
        }
        found_tickets = [loaded[i] for i in ids if i in loaded]
    snippets = {}
    if with_snippets and words is not None and found_tickets:
        texts = search_index.snippet_texts(found_tickets)
        for ticket in found_tickets:
            passage = search_index.snippet(texts[ticket.id], words.runs)
            if passage is not None:
                snippets[ticket.id] = passage
    audit.record(actor, "search", "ticket", None, f"by={'+'.join(kinds) or 'other'}")
    return SearchResults(found_tickets, snippets, kinds)


def desk_staff() -> list[Staff]:
    return list(
        db.session.scalars(
            sa.select(Staff)
            .where(Staff.active.is_(True), Staff.role.in_([Role.CONSULTANT, Role.SUPERVISOR]))
            .order_by(Staff.full_name)
        )
    )
