"""Walk-in reception: one short form makes the ticket, starts its timer, gives a number."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from channels.counter.models import ROOMS, CounterVisit, VisitState
from consult import plugins, signals
from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from consult.services import citizens, numbering, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, NotFound, ValidationFailed
from consult.timeutil import tokyo_today, utcnow


@dataclass
class WalkIn:
    category_id: int | None
    room: int
    first_note: str
    subject: str | None = None
    anonymous: bool = False
    name: str | None = None
    kana: str | None = None
    phone: str | None = None
    citizen_id: int | None = None
    birth_date: str | None = None
    # "new" once the consultant has seen the candidates and chosen a new person.
    citizen_choice: str | None = None


def receive(actor: Actor, walk_in: WalkIn) -> CounterVisit:
    """Reception: the ticket, its timer, and the day's next reception number.

    The consultant who receives the citizen becomes the case's 担当, so that 「自分の担当」 lists
    it without a separate step; 担当変更 hands it on."""
    actor.require(*DESK_ROLES)
    if walk_in.room not in ROOMS:
        raise ValidationFailed("相談室は1〜3から選んでください。")
    citizen = None
    if walk_in.citizen_id or not walk_in.anonymous:
        citizen = citizens.citizen_for_intake(
            actor,
            citizens.CitizenInput(
                name=walk_in.name,
                kana=walk_in.kana,
                phone=walk_in.phone,
                birth_date=walk_in.birth_date,
            ),
            choice=walk_in.citizen_id or walk_in.citizen_choice,
        )
    now = utcnow()
    note = (walk_in.first_note or "").strip()
    subject = (walk_in.subject or "").strip() or _subject_from(note)
    ticket = tickets.create_ticket(
        actor,
        channel=Channel.COUNTER,
        subject=subject,
        category_id=walk_in.category_id,
        citizen=citizen,
        first_note=note,
        assignee=actor.staff,
        session_started_at=now,
        at=now,
    )
    today = tokyo_today(now)
    visit = CounterVisit(
        ticket=ticket,
        service_date=today,
        reception_number=numbering.next_value("reception", today.isoformat()),
        room=walk_in.room,
        state=VisitState.WAITING,
        received_at=now,
    )
    db.session.add(visit)
    tickets.add_entry(
        ticket,
        EntryKind.SESSION,
        author=actor.staff,
        body=f"窓口受付（受付番号 {visit.reception_number}・相談室{visit.room}）",
        data={"reception_number": visit.reception_number, "room": visit.room},
        at=now,
    )
    db.session.flush()
    return visit


def _subject_from(note: str) -> str:
    first_line = note.splitlines()[0] if note else ""
    return (first_line[:40] + ("…" if len(first_line) > 40 else "")) or "窓口相談"


def visit_for(ticket: Ticket) -> CounterVisit | None:
    return db.session.scalar(sa.select(CounterVisit).where(CounterVisit.ticket_id == ticket.id))


def visit_lookup(tickets_: list[Ticket]) -> dict[int, plugins.VisitInfo]:
    """The plugin hook: the room and reception number of these tickets' visits, in one query."""
    ids = [t.id for t in tickets_ if t.channel == Channel.COUNTER and t.id is not None]
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(CounterVisit.ticket_id, CounterVisit.room, CounterVisit.reception_number).where(
            CounterVisit.ticket_id.in_(ids)
        )
    )
    return {row.ticket_id: plugins.VisitInfo(row.room, row.reception_number) for row in rows}


_MOVES = {
    "call": ({VisitState.WAITING, VisitState.CALLED}, VisitState.CALLED, "呼び出し"),
    "serve": ({VisitState.WAITING, VisitState.CALLED}, VisitState.SERVING, "相談開始"),
    "finish": (
        {VisitState.WAITING, VisitState.CALLED, VisitState.SERVING},
        VisitState.DONE,
        "窓口対応終了",
    ),
}


def move(actor: Actor, ticket: Ticket, action: str, room: int | None = None) -> CounterVisit:
    """Call the number to a room, seat the citizen, or finish the visit (which ends the timer)."""
    actor.require(*DESK_ROLES)
    visit = visit_for(ticket)
    if visit is None or action not in _MOVES:
        raise InvalidTransition("この相談には窓口の受付がありません。")
    allowed, target, label = _MOVES[action]
    if visit.state not in allowed:
        raise InvalidTransition(
            f"受付番号 {visit.reception_number} は既に「{visit.state_label}」です。"
        )
    if room is not None and room not in ROOMS:
        raise ValidationFailed("相談室は1〜3から選んでください。")
    now = utcnow()
    values: dict = {"state": target}
    if room is not None:
        values["room"] = room
    if target == VisitState.CALLED:
        values["called_at"] = now
    if target == VisitState.DONE:
        values["done_at"] = now
    # One conditional UPDATE on the state (and the call) this request read: a double press at
    # once read the same state in both requests and wrote the step twice on the timeline.
    seen_called = visit.called_at
    db.session.flush()
    taken = db.session.execute(
        sa.update(CounterVisit)
        .where(
            CounterVisit.id == visit.id,
            CounterVisit.state == visit.state,
            CounterVisit.called_at.is_(None)
            if seen_called is None
            else CounterVisit.called_at == seen_called,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(visit)
    if taken != 1:
        raise InvalidTransition(
            f"受付番号 {visit.reception_number} はほかの操作で「{visit.state_label}」になりました。"
            "画面を確かめてから、もう一度操作してください。"
        )
    if target == VisitState.DONE and ticket.session_started_at and not ticket.session_ended_at:
        tickets.end_session(actor, ticket, at=now)
    tickets.add_entry(
        ticket,
        EntryKind.SESSION,
        author=actor.staff,
        body=f"{label}（受付番号 {visit.reception_number}・相談室{visit.room}）",
        data={"visit_state": target.value},
        at=now,
    )
    db.session.flush()
    signals.counter_visit_moved.send(visit, action=action)
    return visit


DISPLAY_AUDIENCE = "display"  # the lobby's public stream; no member of staff is in it


def publish_call(visit: CounterVisit, action: str | None = None, **_) -> None:
    """A number called to a room reaches the lobby display at once: the number and the room,
    nothing else (the display is public)."""
    if action != "call":
        return
    from consult.live import services as live

    live.publish(
        "display.call",
        [DISPLAY_AUDIENCE],
        {"number": visit.reception_number, "room": visit.room},
    )


def finish_on_close(ticket: Ticket, **_kwargs) -> None:
    """Closing the ticket takes its number off the lobby display."""
    visit = visit_for(ticket)
    if visit is not None and visit.state != VisitState.DONE:
        visit.state = VisitState.DONE
        visit.done_at = utcnow()


@dataclass
class DisplayBoard:
    called: list[dict]
    waiting: list[int]


def display_board() -> DisplayBoard:
    """Today's numbers for the lobby: called ones with their room, then those waiting.

    Nothing but numbers and rooms: the display is public and shows no personal data.
    """
    today = tokyo_today()
    visits = db.session.scalars(
        sa.select(CounterVisit)
        .where(
            CounterVisit.service_date == today,
            CounterVisit.state.in_([VisitState.WAITING, VisitState.CALLED]),
        )
        .order_by(CounterVisit.reception_number)
    ).all()
    called = sorted(
        (v for v in visits if v.state == VisitState.CALLED),
        key=lambda v: v.called_at or v.received_at,
        reverse=True,
    )
    return DisplayBoard(
        called=[{"number": v.reception_number, "room": v.room} for v in called],
        waiting=[v.reception_number for v in visits if v.state == VisitState.WAITING],
    )


def ticket_panel(ticket: Ticket):
    if ticket.channel != Channel.COUNTER:
        return None
    visit = visit_for(ticket)
    if visit is None:
        return None
    return "counter/_panel.html", {"visit": visit, "rooms": ROOMS}


def room_in_progress(ticket: Ticket, found: list[int] | None = None, **_) -> None:
    """Receiver of signals.visit_place_asked: the room of a visit called or seated.

    The help alert asks it, so that the support room goes to the room the consultant is in,
    whatever a device's select says.
    """
    if found is None or ticket.channel != Channel.COUNTER:
        return
    visit = visit_for(ticket)
    if visit is not None and visit.state in (VisitState.CALLED, VisitState.SERVING):
        found.append(visit.room)


@dataclass(frozen=True)
class Receipt:
    """What the counter's printed receipt (受付票) shows: numbers and the satisfaction QR code,
    no personal data."""

    ticket_number: str
    reception_number: int
    printed_on: str
    survey_url: str | None
    survey_qr: str | None  # an SVG data URI


def receipt(actor: Actor, ticket: Ticket) -> Receipt:
    """The receipt of a walk-in's visit, with the QR code of the satisfaction question (one
    per ticket: a reprint shows the same code, and a used code is not printed again)."""
    import segno

    from consult import urls
    from consult.voice import services as voice

    actor.require(*DESK_ROLES)
    visit = visit_for(ticket)
    if visit is None:
        raise NotFound("この相談には窓口の受付がありません。")
    token = voice.ask(ticket, Channel.COUNTER.value, again=True)
    url = urls.public_url("voice.satisfaction", token=token) if token else None
    qr = segno.make(url, error="m").svg_data_uri(scale=4, border=4) if url else None
    tickets.record_print(actor, ticket)
    today = tokyo_today()
    return Receipt(
        ticket_number=ticket.number,
        reception_number=visit.reception_number,
        printed_on=f"{today.year}年{today.month}月{today.day}日",
        survey_url=url,
        survey_qr=qr,
    )
