"""Booking across the zones (MADOGUCHI_ROLE=relay|core, consult.transfer).

On the relay, citizens book, move and cancel as on one server; each change also becomes an item
for the core (`booking.created`, `booking.moved`, `booking.cancelled`), and the relay sends no
mail. The core applies the items to its own bookings (the day view shows them) and sends the
confirmations, through the relay. Once the core has a booking, the relay blanks its name,
kana, contact details and words: it keeps the reference, time and mode, which the private link
needs. The core sends the relay its slot counters (`booking.slots`) and its booking settings,
centre calendar, categories and specialist session kinds (`booking.settings`) whenever they
change: the relay counts the core's bookings plus its own that the core has not taken yet, so a
slot filled at the core's desk is full on the relay within a round. A specialist session's kind
crosses without its specialist (a member of staff, who stays in LGWAN); its bookings, with their
intake answers, cross like the others and have seats of their own (the slot's kind_key).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from channels.booking.models import (
    Booking,
    BookingCapacity,
    BookingConfig,
    BookingSlot,
    BookingStatus,
    Mode,
    SessionKind,
    SessionKindDate,
)
from consult import upsert
from consult.extensions import db
from consult.models import BranchOffice, CalendarException, Category
from consult.timeutil import utcnow

CREATED, MOVED, CANCELLED = "booking.created", "booking.moved", "booking.cancelled"
SLOTS, SETTINGS = "booking.slots", "booking.settings"
NO_LIMIT = 10**6


def _role() -> str:
    from consult.transfer.services import role

    return role()


def on_relay() -> bool:
    return _role() == "relay"


def _enqueue(kind: str, item_id: str, payload: dict) -> None:
    from consult.transfer.services import enqueue

    enqueue(kind, item_id, payload)


# --- on the relay: what the core must take ----------------------------------------------------


def created(booking: Booking) -> None:
    if not on_relay():
        return
    _enqueue(
        CREATED,
        f"booking:{booking.uid}:created",
        {
            "uid": booking.uid,
            "reference": booking.reference,
            "mode": booking.mode.value,
            "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat(),
            "category_id": booking.category_id,
            "name": booking.name,
            "kana": booking.kana,
            "email": booking.email,
            "phone": booking.phone,
            "content": booking.content,
            "language": booking.language,
            "created_at": (booking.created_at or utcnow()).isoformat(),
            # 支所からのオンライン相談: the office, and the meeting link the relay made.
            "branch_office_id": booking.branch_office_id,
            "video_url": booking.video_url,
            "kind_id": booking.kind_id,
            "intake": booking.intake,
        },
    )


def moved(booking: Booking, from_starts_at: datetime) -> None:
    if not on_relay():
        return
    _enqueue(
        MOVED,
        f"booking:{booking.uid}:moved:{booking.sequence}",
        {
            "uid": booking.uid,
            "mode": booking.mode.value,
            "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat(),
            "from_starts_at": from_starts_at.isoformat(),
            "sequence": booking.sequence,
            "kind_id": booking.kind_id,
        },
    )


def cancelled(booking: Booking) -> None:
    if not on_relay():
        return
    _enqueue(
        CANCELLED,
        f"booking:{booking.uid}:cancelled",
        {
            "uid": booking.uid,
            "mode": booking.mode.value,
            "starts_at": booking.starts_at.isoformat(),
            "kind_id": booking.kind_id,
        },
    )


def acknowledge(ids: list[str]) -> None:
    """The core has these bookings: forget who made them and what about."""
    uids = [
        item[len("booking:") : -len(":created")]
        for item in ids
        if item.startswith("booking:") and item.endswith(":created")
    ]
    if uids:
        db.session.execute(
            sa.update(Booking)
            .where(Booking.uid.in_(uids))
            .values(
                name="", kana="", email=None, phone=None, content="", video_url=None, intake=None
            )
            .execution_options(synchronize_session=False)
        )


# --- on the core: applying the relay's changes ------------------------------------------------


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _seat(mode: Mode, starts_at: datetime, kind_key: int = 0) -> tuple[BookingSlot, int]:
    """A seat whatever the capacity: the citizen was told on the relay that they have one. (Two
    citizens booking the last seat on the relay and at the desk within one round both keep it;
    the day view shows the slot over capacity.)"""
    from channels.booking.services import _take_seat

    return _take_seat(mode, starts_at, NO_LIMIT, kind_key)


def _by_uid(uid: str) -> Booking | None:
    return db.session.scalar(sa.select(Booking).where(Booking.uid == uid))


def apply_created(payload: dict) -> None:
    from channels.booking import live, notify

    if _by_uid(payload["uid"]) is not None:
        return
    mode = Mode(payload["mode"])
    starts_at = _at(payload["starts_at"])
    kind_id = payload.get("kind_id")
    if kind_id is not None and db.session.get(SessionKind, kind_id) is None:
        kind_id = None
    slot, seat = _seat(mode, starts_at, kind_id or 0)
    category_id = payload.get("category_id")
    if category_id is not None and db.session.get(Category, category_id) is None:
        category_id = None
    office_id = payload.get("branch_office_id")
    if office_id is not None and db.session.get(BranchOffice, office_id) is None:
        office_id = None
    booking = Booking(
        reference=payload["reference"],
        uid=payload["uid"],
        sequence=0,
        slot_id=slot.id,
        seat_no=seat,
        mode=mode,
        starts_at=starts_at,
        ends_at=_at(payload["ends_at"]),
        status=BookingStatus.BOOKED,
        category_id=category_id,
        name=payload["name"],
        kana=payload["kana"],
        email=payload.get("email"),
        phone=payload.get("phone"),
        content=payload["content"],
        language=payload.get("language") or "ja",
        created_at=_at(payload["created_at"]) if payload.get("created_at") else utcnow(),
        branch_office_id=office_id,
        video_url=payload.get("video_url") if office_id is not None else None,
        kind_id=kind_id,
        intake=payload.get("intake") if kind_id else None,
    )
    db.session.add(booking)
    db.session.flush()
    notify.confirmation(booking)
    live.changed(booking, "created")


def apply_moved(payload: dict) -> None:
    from channels.booking import live, notify
    from channels.booking.services import _release_seat

    booking = _by_uid(payload["uid"])
    sequence = int(payload["sequence"])
    if booking is None or booking.status is not BookingStatus.BOOKED:
        return
    if booking.sequence >= sequence:
        return  # already this move, or a later change
    starts_at = _at(payload["starts_at"])
    from_starts_at = booking.starts_at
    slot, seat = _seat(booking.mode, starts_at, booking.kind_id or 0)
    _release_seat(booking)
    db.session.flush()
    booking.slot_id = slot.id
    booking.seat_no = seat
    booking.starts_at = starts_at
    booking.ends_at = _at(payload["ends_at"])
    booking.sequence = sequence
    booking.reminder_sent_at = None
    db.session.flush()
    notify.moved(booking)
    live.changed(booking, "moved", also_day=from_starts_at)


def apply_cancelled(payload: dict) -> None:
    from channels.booking import services
    from consult.services.actor import SYSTEM

    booking = _by_uid(payload["uid"])
    if booking is None or booking.status is not BookingStatus.BOOKED:
        return
    services.cancel_booking(SYSTEM, booking)


# --- the core's state, copied to the relay ----------------------------------------------------


def _since() -> datetime:
    return utcnow() - timedelta(days=1)


def slots_snapshot() -> dict:
    rows = db.session.execute(
        sa.select(BookingSlot.mode, BookingSlot.starts_at, BookingSlot.booked, BookingSlot.kind_key)
        .where(BookingSlot.starts_at >= _since())
        .order_by(BookingSlot.starts_at, BookingSlot.mode, BookingSlot.kind_key)
    )
    return {
        "since": _since().replace(minute=0, second=0, microsecond=0).isoformat(),
        "slots": [
            [Mode(mode).value, at.isoformat(), booked, kind_key]
            for mode, at, booked, kind_key in rows
        ],
    }


def _pending_changes() -> dict[tuple[str, int, datetime], int]:
    """The relay's own bookings the core has not taken yet: +1 where they hold a seat the
    core does not count yet, -1 where they gave one back that the core still counts."""
    from consult.transfer.services import waiting

    change: dict[tuple[str, int, datetime], int] = {}
    for item in waiting("booking."):
        data = item.payload
        mode, kind_key = data["mode"], data.get("kind_id") or 0
        if item.kind in (CREATED, MOVED):
            key = (mode, kind_key, _at(data["starts_at"]))
            change[key] = change.get(key, 0) + 1
        if item.kind == MOVED:
            key = (mode, kind_key, _at(data["from_starts_at"]))
            change[key] = change.get(key, 0) - 1
        if item.kind == CANCELLED:
            key = (mode, kind_key, _at(data["starts_at"]))
            change[key] = change.get(key, 0) - 1
    return change


def apply_slots(payload: dict) -> None:
    """On the relay: every slot counter from the core's, plus what the core has not seen."""
    since = _at(payload["since"])
    core = {
        (slot[0], int(slot[3]) if len(slot) > 3 else 0, _at(slot[1])): int(slot[2])
        for slot in payload["slots"]
    }
    change = _pending_changes()
    local = {
        (Mode(row.mode).value, row.kind_key, row.starts_at): row
        for row in db.session.scalars(sa.select(BookingSlot).where(BookingSlot.starts_at >= since))
    }
    for key in set(core) | set(local) | {k for k in change if k[2] >= since}:
        value = max(core.get(key, 0) + change.get(key, 0), 0)
        row = local.get(key)
        if row is None:
            if value:
                db.session.add(
                    BookingSlot(mode=Mode(key[0]), kind_key=key[1], starts_at=key[2], booked=value)
                )
        elif row.booked != value:
            row.booked = value
    db.session.flush()


def settings_snapshot() -> dict:
    config = db.session.get(BookingConfig, 1)
    first = date.today() - timedelta(days=1)
    return {
        "config": None
        if config is None
        else [config.slot_minutes, config.min_lead_minutes, config.horizon_days],
        "capacity": [
            [Mode(row.mode).value, row.day_type, row.capacity]
            for row in db.session.scalars(
                sa.select(BookingCapacity).order_by(BookingCapacity.mode, BookingCapacity.day_type)
            )
        ],
        "exceptions": [
            [
                row.day.isoformat(),
                row.closed,
                row.opens.isoformat() if row.opens else None,
                row.closes.isoformat() if row.closes else None,
            ]
            for row in db.session.scalars(
                sa.select(CalendarException)
                .where(CalendarException.day >= first)
                .order_by(CalendarException.day)
            )
        ],
        "categories": [
            [row.id, row.code, row.name, row.name_en, row.sort_order, row.active]
            for row in db.session.scalars(sa.select(Category).order_by(Category.id))
        ],
        "branch_offices": [
            [row.id, row.name, row.name_en, row.address, row.active]
            for row in db.session.scalars(sa.select(BranchOffice).order_by(BranchOffice.id))
        ],
        "kinds": [_kind_values(kind) for kind in specialist_kinds()],
    }


KIND_FIELDS = (
    "name",
    "name_en",
    "description",
    "description_en",
    "weekdays",
    "dates_only",
    "slot_minutes",
    "capacity",
    "questions",
    "active",
)


def specialist_kinds() -> list[SessionKind]:
    from channels.booking import specialist

    return specialist.list_kinds()


def _kind_values(kind: SessionKind) -> dict:
    """What the relay needs to offer a kind: never its specialist (a member of staff)."""
    first = date.today() - timedelta(days=1)
    return {
        "id": kind.id,
        **{name: getattr(kind, name) for name in KIND_FIELDS},
        "mode": kind.mode.value,
        "opens": kind.opens.isoformat(),
        "closes": kind.closes.isoformat(),
        "dates": [d.day.isoformat() for d in kind.dates if d.day >= first],
    }


def _apply_kinds(items: list[dict]) -> None:
    """On the relay: the kinds as the core has them (a kind the core no longer has is closed)."""
    wanted = {int(item["id"]): item for item in items}
    current = {row.id: row for row in db.session.scalars(sa.select(SessionKind))}
    # Names are unique: free them first, so that two kinds swapping names apply in one go.
    for kind_id, row in current.items():
        item = wanted.get(kind_id)
        if item is not None and row.name != item["name"]:
            row.name = f"~{kind_id}"
    db.session.flush()
    for kind_id, item in wanted.items():
        row = current.get(kind_id)
        if row is None:
            row = SessionKind(id=kind_id)
            db.session.add(row)
        for name in KIND_FIELDS:
            setattr(row, name, item.get(name))
        row.mode = Mode(item["mode"])
        row.opens = time.fromisoformat(item["opens"])
        row.closes = time.fromisoformat(item["closes"])
        row.specialist_id = None
        days = {date.fromisoformat(day) for day in item.get("dates") or []}
        kept = {d.day: d for d in row.dates}
        row.dates = [kept.get(day) or SessionKindDate(day=day) for day in sorted(days)]
    for kind_id, row in current.items():
        if kind_id not in wanted:
            row.active = False


def apply_settings(payload: dict) -> None:
    """On the relay: the core's booking settings, calendar exceptions and categories."""
    if payload.get("config"):
        minutes, lead, horizon = payload["config"]
        config = db.session.get(BookingConfig, 1) or BookingConfig(id=1)
        config.slot_minutes, config.min_lead_minutes, config.horizon_days = minutes, lead, horizon
        db.session.add(config)
    db.session.execute(sa.delete(BookingCapacity))
    for mode, day_type, capacity in payload.get("capacity", []):
        db.session.add(BookingCapacity(mode=Mode(mode), day_type=day_type, capacity=capacity))
    db.session.execute(sa.delete(CalendarException))
    for day, closed, opens, closes in payload.get("exceptions", []):
        db.session.add(
            CalendarException(
                day=date.fromisoformat(day),
                closed=closed,
                opens=time.fromisoformat(opens) if opens else None,
                closes=time.fromisoformat(closes) if closes else None,
                note="",
            )
        )
    rows = [
        {
            "id": i,
            "code": code,
            "name": name,
            "name_en": name_en,
            "sort_order": order,
            "active": active,
        }
        for i, code, name, name_en, order, active in payload.get("categories", [])
    ]
    if rows:
        table = Category.__table__
        statement = upsert.insert(table).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                c: statement.excluded[c]
                for c in ("code", "name", "name_en", "sort_order", "active")
            },
        )
        db.session.execute(statement)
    offices = [
        {"id": i, "name": name, "name_en": name_en, "address": address, "active": active}
        for i, name, name_en, address, active in payload.get("branch_offices", [])
    ]
    if offices:
        statement = upsert.insert(BranchOffice.__table__).values(offices)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={c: statement.excluded[c] for c in ("name", "name_en", "address", "active")},
        )
        db.session.execute(statement)
    if "kinds" in payload:
        _apply_kinds(payload["kinds"])
    db.session.flush()


def kinds():
    from consult import plugins

    return (
        plugins.TransferKind(CREATED, apply_created, acknowledge=acknowledge),
        plugins.TransferKind(MOVED, apply_moved),
        plugins.TransferKind(CANCELLED, apply_cancelled),
        plugins.TransferKind(SLOTS, apply_slots, to="relay", snapshot=_core_only(slots_snapshot)),
        plugins.TransferKind(
            SETTINGS, apply_settings, to="relay", snapshot=_core_only(settings_snapshot)
        ),
    )


def _core_only(snapshot):
    def wrapped():
        return snapshot() if _role() == "core" else None

    return wrapped
