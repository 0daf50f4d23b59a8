"""Booking rules: free slots with capacity, taking a seat safely, moving, cancelling, check-in.

Seats are taken with a conditional UPDATE on the slot's counter row
(`booked = booked + 1 WHERE booked < capacity`, checking the row count), backed by a unique
(slot, seat) constraint: both hold under concurrency on SQLite and PostgreSQL, where
`SELECT … FOR UPDATE` would be ignored by SQLite. The capacity is read from the
administrator's table at booking time, so changing it takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from channels.booking.models import (
    Booking,
    BookingCapacity,
    BookingConfig,
    BookingSlot,
    BookingStatus,
    CalendarFeed,
    Mode,
    SessionKind,
)
from consult import urls
from consult.extensions import db
from consult.models import Category, Channel, Role, Staff
from consult.services import audit, calendar, citizens, tickets
from consult.services.actor import DESK_ROLES, SYSTEM, Actor
from consult.services.calendar import Hours
from consult.services.errors import DomainError, NotFound, ValidationFailed
from consult.services.normalize import (
    normalize_email,
    normalize_phone,
    single_line,
    strip_controls,
)
from consult.timeutil import EARLIEST, TOKYO, in_range, to_tokyo, utcnow

MAX_CONTENT = 2_000
MANAGE_SALT = "booking-manage"
MANAGE_MAX_AGE = 70 * 86400  # the 8-week horizon and some days after

DEFAULT_CAPACITY = {
    Mode.COUNTER: {"weekday": 3, "weekend": 1, "holiday": 1, "year_end": 1},
    Mode.PHONE: {"weekday": 2, "weekend": 2, "holiday": 2, "year_end": 2},
    Mode.VIDEO: {"weekday": 1, "weekend": 1, "holiday": 1, "year_end": 1},
    Mode.BRANCH_VIDEO: {"weekday": 1, "weekend": 0, "holiday": 0, "year_end": 0},
}


class SlotFull(DomainError):
    """The chosen slot has no seat left; the view offers the nearest free ones."""

    def __init__(self, mode: Mode, starts_at: datetime, kind_id: int | None = None):
        super().__init__("選択された時間は満席です。")
        self.mode = mode
        self.starts_at = starts_at
        self.kind_id = kind_id


class SlotUnavailable(ValidationFailed):
    pass


class BookingChanged(ValidationFailed):
    """Someone changed the booking first (another tab, a double click, another desk).

    The change asked for is not made; the message says what the booking is now.
    """


ALREADY = {
    BookingStatus.CANCELLED: "この予約はすでに取り消されています。",
    BookingStatus.CHECKED_IN: "この予約はすでに受付済みです。",
    BookingStatus.NO_SHOW: "この予約はすでに無断欠席として記録されています。",
}
ALREADY_MOVED = (
    "この予約の日時はすでに変更されています。現在の予約内容を確かめてから、もう一度お選びください。"
)


# --- settings --------------------------------------------------------------------------------


def config() -> BookingConfig:
    found = db.session.get(BookingConfig, 1)
    return found or BookingConfig(id=1, slot_minutes=30, min_lead_minutes=60, horizon_days=56)


def capacities() -> dict[Mode, dict[str, int]]:
    table = {mode: dict(values) for mode, values in DEFAULT_CAPACITY.items()}
    for row in db.session.scalars(sa.select(BookingCapacity)):
        table[row.mode][row.day_type] = row.capacity
    return table


def capacity_for(mode: Mode, day: date, table: dict | None = None) -> int:
    table = table or capacities()
    return table[Mode(mode)][calendar.day_type(day).value]


def save_settings(actor: Actor, slot_minutes: int, table: dict[Mode, dict[str, int]]) -> None:
    actor.require(Role.ADMIN)
    if slot_minutes not in (15, 20, 30, 45, 60, 90):
        raise ValidationFailed("枠の長さは15・20・30・45・60・90分から選んでください。")
    current = db.session.get(BookingConfig, 1)
    if current is None:
        current = BookingConfig(id=1)
        db.session.add(current)
    current.slot_minutes = slot_minutes
    for mode, per_type in table.items():
        for day_type_value, value in per_type.items():
            if not 0 <= value <= 50:
                raise ValidationFailed("同時に受けられる数は0〜50で入力してください。")
            row = db.session.scalar(
                sa.select(BookingCapacity).where(
                    BookingCapacity.mode == mode, BookingCapacity.day_type == day_type_value
                )
            )
            if row is None:
                row = BookingCapacity(mode=mode, day_type=day_type_value)
                db.session.add(row)
            row.capacity = value
    audit.record(actor, "update", "booking_settings")
    db.session.flush()


# --- free slots ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeSlot:
    mode: Mode
    starts_at: datetime  # Tokyo
    ends_at: datetime
    capacity: int
    booked: int
    kind_id: int | None = None  # a specialist session's slot

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)


def slot_times(day: date, hours: Hours, minutes: int) -> list[tuple[datetime, datetime]]:
    out = []
    cursor = datetime.combine(day, hours.opens, TOKYO)
    closes = datetime.combine(day, hours.closes, TOKYO)
    step = timedelta(minutes=minutes)
    while cursor + step <= closes:
        out.append((cursor, cursor + step))
        cursor += step
    return out


def free_slots(
    modes: list[Mode] | tuple[Mode, ...],
    *,
    now: datetime | None = None,
    start: date | None = None,
    days: int | None = None,
    include_full: bool = False,
) -> dict[Mode, list[FreeSlot]]:
    """Bookable slots per mode from `start` for `days` days, honouring lead time and horizon.

    A few queries whatever the range (settings, capacities, the kernel's hours of the whole range,
    counters), so 8 weeks × 3 modes stay fast with many bookings.
    """
    now = now or utcnow()
    settings = config()
    table = capacities()
    earliest = now + timedelta(minutes=settings.min_lead_minutes)
    latest = now + timedelta(days=settings.horizon_days)
    first = start or to_tokyo(now).date()
    count = days if days is not None else settings.horizon_days + 1
    last = first + timedelta(days=count)
    hours_of = calendar.centre_hours_between(first, last - timedelta(days=1))
    lo = datetime.combine(first, time(0), TOKYO)
    hi = datetime.combine(last, time(0), TOKYO)
    counters: dict[tuple[Mode, datetime], int] = {}
    rows = db.session.execute(
        sa.select(BookingSlot.mode, BookingSlot.starts_at, BookingSlot.booked).where(
            BookingSlot.starts_at >= lo,
            BookingSlot.starts_at < hi,
            BookingSlot.mode.in_(modes),
            BookingSlot.kind_key == 0,  # specialist sessions have seats of their own
        )
    )
    for mode, starts_at, booked in rows:
        counters[(Mode(mode), starts_at)] = booked
    result: dict[Mode, list[FreeSlot]] = {Mode(m): [] for m in modes}
    day = first
    while day < last:
        hours = hours_of[day]
        if hours is not None:
            kind = calendar.day_type(day).value
            for begin, end in slot_times(day, hours, settings.slot_minutes):
                if begin < earliest or begin > latest:
                    continue
                begin_utc = begin.astimezone(UTC)
                for mode in result:
                    capacity = table[mode][kind]
                    booked = counters.get((mode, begin_utc), 0)
                    if capacity <= 0:
                        continue
                    if include_full or booked < capacity:
                        result[mode].append(FreeSlot(mode, begin, end, capacity, booked))
        day += timedelta(days=1)
    return result


def slots_asked(
    mode: Mode | None,
    *,
    kind_id: int | None = None,
    office_id: int | None = None,
    start: date | None = None,
    days: int | None = None,
) -> list[FreeSlot]:
    """The free slots one asks for by a way of consulting, a specialist session kind, or a
    branch office's online session (the API's slot list): the combinations that mean nothing
    are refused with a Japanese message; a kind or an office not offered is NotFound."""
    from channels.booking import branch, specialist

    if kind_id is not None:
        kind = specialist.get_kind(kind_id)
        if mode is not None and mode is not kind.mode:
            raise ValidationFailed(
                f"この専門相談の方法は {kind.mode.value} です。"
                "mode は省略するか同じ値にしてください。"
            )
        if office_id is not None:
            raise ValidationFailed("支所は「支所からのオンライン相談」でだけ選べます。")
        return specialist.kind_slots(kind, start=start, days=days)
    if mode is None:
        raise ValidationFailed("mode（相談の方法）か kind_id（専門相談）を指定してください。")
    if mode is Mode.BRANCH_VIDEO:
        if office_id is None:
            raise ValidationFailed("相談に行く支所を office_id で指定してください。")
        branch.get_office(office_id)
        if not branch.offered():
            raise ValidationFailed("支所からのオンライン相談は現在受け付けていません。")
    elif office_id is not None:
        raise ValidationFailed("支所は「支所からのオンライン相談」でだけ選べます。")
    return free_slots([mode], start=start, days=days)[mode]


def nearest_free(
    mode: Mode, around: datetime, limit: int = 5, kind: SessionKind | None = None
) -> list[FreeSlot]:
    """The free slots closest in time to one that was full (the 満席 page offers them)."""
    from channels.booking import specialist

    local_day = to_tokyo(around).date()
    first = max(local_day - timedelta(days=3), to_tokyo(utcnow()).date())
    if kind is not None:
        slots = specialist.kind_slots(kind, start=first, days=10) or specialist.kind_slots(kind)
    else:
        slots = free_slots([mode], start=first, days=10)[Mode(mode)]
        if not slots:
            slots = free_slots([mode])[Mode(mode)]
    slots.sort(key=lambda s: abs((s.starts_at - around).total_seconds()))
    return sorted(slots[:limit], key=lambda s: s.starts_at)


def _refuse_out_of_range(starts_at: datetime) -> None:
    """Year 1 or 9999: refused with the same words as any other time out of reach, before
    anything converts it to UTC, which such a time cannot be."""
    if not in_range(starts_at):
        if starts_at.year < EARLIEST.year:
            raise SlotUnavailable("過去の日時は予約できません。")
        raise SlotUnavailable("予約できるのは8週間先までです。")


def check_slot(
    mode: Mode, starts_at: datetime, now: datetime | None = None
) -> tuple[datetime, int]:
    """The slot's end and capacity, or a clear refusal (past, too soon, too far, outside hours)."""
    now = now or utcnow()
    settings = config()
    _refuse_out_of_range(starts_at)
    local = to_tokyo(starts_at)
    if starts_at < now:
        raise SlotUnavailable("過去の日時は予約できません。")
    if starts_at < now + timedelta(minutes=settings.min_lead_minutes):
        raise SlotUnavailable("開始の1時間前を過ぎた枠は予約できません。")
    if starts_at > now + timedelta(days=settings.horizon_days):
        raise SlotUnavailable("予約できるのは8週間先までです。")
    hours = calendar.centre_hours(local.date())
    valid = hours and any(
        begin == local for begin, _ in slot_times(local.date(), hours, settings.slot_minutes)
    )
    if not valid:
        raise SlotUnavailable("選択された日時は受付時間外です。")
    capacity = capacity_for(mode, local.date())
    if capacity <= 0:
        raise SlotUnavailable("選択された日時は受付時間外です。")
    return starts_at + timedelta(minutes=settings.slot_minutes), capacity


def _slot_row(mode: Mode, starts_at: datetime, kind_key: int = 0) -> BookingSlot:
    """The counter row for a slot, created on first use (a concurrent creator is tolerated).

    `kind_key` is the specialist session's kind id, 0 for the centre's ordinary slots."""
    query = sa.select(BookingSlot).where(
        BookingSlot.mode == mode,
        BookingSlot.kind_key == kind_key,
        BookingSlot.starts_at == starts_at,
    )
    found = db.session.scalar(query)
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            row = BookingSlot(mode=mode, kind_key=kind_key, starts_at=starts_at, booked=0)
            db.session.add(row)
    except IntegrityError:
        row = db.session.scalar(query)
    return row


def _take_seat(
    mode: Mode, starts_at: datetime, capacity: int, kind_key: int = 0
) -> tuple[BookingSlot, int]:
    slot = _slot_row(mode, starts_at, kind_key)
    taken = db.session.execute(
        sa.update(BookingSlot)
        .where(BookingSlot.id == slot.id, BookingSlot.booked < capacity)
        .values(booked=BookingSlot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise SlotFull(mode, starts_at, kind_key or None)
    db.session.refresh(slot)
    used = set(
        db.session.scalars(
            sa.select(Booking.seat_no).where(
                Booking.slot_id == slot.id, Booking.seat_no.is_not(None)
            )
        )
    )
    seat = next(n for n in range(1, capacity + 1 + len(used)) if n not in used)
    return slot, seat


def _require_booked(booking: Booking) -> None:
    if booking.status is not BookingStatus.BOOKED:
        raise BookingChanged(ALREADY[booking.status])


def _take_over(booking: Booking, values: dict, *conditions) -> None:
    """Change a live booking with one conditional UPDATE, so that of two requests at once only
    one changes it.

    A read of the status followed by a write lets every concurrent request through (on
    PostgreSQL each one read 予約済 before any committed): ten cancellations gave the seat back
    four times. `WHERE status = 'booked'` (plus `conditions`) checked by its row count lets one
    win; the others wait for its commit, see the new row and match nothing.
    """
    db.session.flush()
    result = db.session.execute(
        sa.update(Booking)
        .where(Booking.id == booking.id, Booking.status == BookingStatus.BOOKED, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(booking)
    if result.rowcount != 1:
        raise BookingChanged(ALREADY.get(booking.status, ALREADY_MOVED))


def _lock_slots_in_order(*slot_ids: int | None) -> None:
    """Lock the slot rows a move touches, lowest id first, before changing their counters.

    A move takes the new seat and then gives the old one back. Two moves in opposite directions
    between the same two slots each locked their new slot and then waited for the other's: on
    PostgreSQL one of them failed with "deadlock detected". Taking the locks in one order makes
    the second move wait for the first instead. (SQLite holds its write lock for the whole
    transaction already; FOR UPDATE is left out there.)
    """
    ids = sorted({slot_id for slot_id in slot_ids if slot_id is not None})
    if len(ids) < 2:
        return
    db.session.execute(
        sa.select(BookingSlot.id)
        .where(BookingSlot.id.in_(ids))
        .order_by(BookingSlot.id)
        .with_for_update()
    ).all()


def _release_seat(booking: Booking) -> None:
    db.session.execute(
        sa.update(BookingSlot)
        .where(BookingSlot.id == booking.slot_id, BookingSlot.booked > 0)
        .values(booked=BookingSlot.booked - 1)
        .execution_options(synchronize_session=False)
    )
    booking.seat_no = None


# --- booking ---------------------------------------------------------------------------------


@dataclass
class BookingInput:
    mode: str
    starts_at: datetime
    name: str
    kana: str
    content: str
    category_id: int | None = None
    email: str | None = None
    phone: str | None = None
    language: str = "ja"
    # A specialist session: the kind and the answers to its questions, by question number.
    kind_id: int | None = None
    answers: dict[int, str] | None = None
    # 支所からのオンライン相談: the branch office chosen (channels.booking.branch).
    branch_office_id: int | None = None

    def clean(self) -> BookingInput:
        try:
            mode = Mode(self.mode)
        except ValueError:
            raise ValidationFailed("相談の方法を選んでください。") from None
        name = single_line(self.name)
        kana = single_line(self.kana)
        content = strip_controls(self.content).strip()
        if not name:
            raise ValidationFailed("氏名を入力してください。")
        if len(name) > 80 or len(kana) > 80:
            raise ValidationFailed("氏名とふりがなは80文字以内で入力してください。")
        if not kana:
            raise ValidationFailed("ふりがなを入力してください。")
        if not content:
            raise ValidationFailed("相談内容を入力してください。")
        if len(content) > MAX_CONTENT:
            raise ValidationFailed("相談内容は2,000文字以内で入力してください。")
        email = phone = None
        if self.email and self.email.strip():
            email = normalize_email(self.email)
            if email is None:
                raise ValidationFailed("メールアドレスの形式が正しくありません。")
        if self.phone and self.phone.strip():
            phone = normalize_phone(self.phone)
            if phone is None:
                raise ValidationFailed(
                    "電話番号の形式が正しくありません。市外局番から入力してください。"
                )
        if not email and not phone:
            raise ValidationFailed("メールアドレスか電話番号のどちらかを入力してください。")
        if mode is Mode.PHONE and not phone:
            raise ValidationFailed("電話での相談には電話番号を入力してください。")
        if mode is Mode.VIDEO and not email:
            raise ValidationFailed("オンライン相談にはメールアドレスを入力してください。")
        if self.category_id is not None:
            category = db.session.get(Category, self.category_id)
            if category is None or not category.active:
                raise ValidationFailed("相談の分類を一覧から選んでください。")
        _refuse_out_of_range(self.starts_at)
        return BookingInput(
            mode=mode,
            starts_at=self.starts_at.astimezone(UTC),
            name=name,
            kana=kana,
            content=content,
            category_id=self.category_id,
            email=email,
            phone=phone,
            language=self.language if self.language in ("ja", "en") else "ja",
            kind_id=self.kind_id,
            answers=self.answers,
            branch_office_id=self.branch_office_id,
        )


def _reference() -> str:
    alphabet = "ACDEFGHJKLMNPQRTUVWXY34679"  # no look-alikes (0/O, 1/I, 5/S, 8/B)
    raw = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def create_booking(actor: Actor, data: BookingInput, now: datetime | None = None) -> Booking:
    """Book a seat for a citizen (public, or staff on behalf of a caller) and queue the mail."""
    if actor.staff is not None:
        actor.require(*DESK_ROLES)
    kind = intake = None
    if data.kind_id is not None:
        from channels.booking import specialist

        try:
            kind = specialist.get_kind(data.kind_id)
        except NotFound as error:
            raise SlotUnavailable(error.message) from None
        data.mode = kind.mode.value  # the kind decides how the session is held
    data = data.clean()
    if kind is not None:
        intake = specialist.clean_answers(kind, data.answers)
        ends_at, capacity = specialist.check_kind_slot(kind, data.starts_at, now)
    else:
        ends_at, capacity = check_slot(data.mode, data.starts_at, now)
    from channels.booking import branch

    office, meeting_link = branch.resolve(data.mode, data.branch_office_id)
    slot, seat = _take_seat(data.mode, data.starts_at, capacity, kind.id if kind else 0)
    booking = Booking(
        reference=_reference(),
        uid=f"{uuid.uuid4()}@{current_app.config['MADOGUCHI']['MAIL_DOMAIN']}",
        sequence=0,
        slot_id=slot.id,
        seat_no=seat,
        mode=data.mode,
        starts_at=data.starts_at,
        ends_at=ends_at,
        status=BookingStatus.BOOKED,
        category_id=data.category_id,
        name=data.name,
        kana=data.kana,
        email=data.email,
        phone=data.phone,
        content=data.content,
        language=data.language,
        created_by_id=actor.staff_id,
        kind_id=kind.id if kind else None,
        intake=intake,
        branch_office=office,
        video_url=meeting_link,
    )
    db.session.add(booking)
    db.session.flush()
    if actor.staff is not None:
        audit.record(actor, "create", "booking", booking.reference)
    from channels.booking import live, notify, transfer

    transfer.created(booking)
    notify.confirmation(booking)
    live.changed(booking, "created")
    return booking


def get_live(booking_id: int) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("予約が見つかりません。")
    return booking


def move_booking(
    actor: Actor,
    booking: Booking,
    starts_at: datetime,
    now: datetime | None = None,
    *,
    seen_sequence: int | None = None,
) -> Booking:
    """Another time, same mode: a new seat first, then the old one back; SEQUENCE goes up.

    `seen_sequence` is the version of the booking the citizen was looking at when they chose
    the new time: a move from a page that is out of date (the booking moved meanwhile, in
    another tab or by a request sent at the same time) is refused, not made a second time.
    The move is taken with one conditional UPDATE on that version and the slot it leaves.
    """
    if actor.staff is not None:
        actor.require(*DESK_ROLES)
    _require_booked(booking)
    expected = booking.sequence if seen_sequence is None else seen_sequence
    if expected != booking.sequence:
        raise BookingChanged(ALREADY_MOVED)
    starts_at = starts_at.astimezone(UTC)
    if starts_at == booking.starts_at:
        raise ValidationFailed("今と同じ日時です。別の日時を選んでください。")
    if booking.kind is not None:
        from channels.booking import specialist

        ends_at, capacity = specialist.check_kind_slot(booking.kind, starts_at, now)
    else:
        ends_at, capacity = check_slot(booking.mode, starts_at, now)
    kind_key = booking.kind_id or 0
    _take_over(
        booking,
        {"sequence": Booking.sequence + 1, "reminder_sent_at": None},
        Booking.sequence == expected,
        Booking.slot_id == booking.slot_id,
    )
    from_starts_at = booking.starts_at
    _lock_slots_in_order(booking.slot_id, _slot_row(booking.mode, starts_at, kind_key).id)
    slot, seat = _take_seat(booking.mode, starts_at, capacity, kind_key)
    _release_seat(booking)
    db.session.flush()
    booking.slot_id = slot.id
    booking.seat_no = seat
    booking.starts_at = starts_at
    booking.ends_at = ends_at
    db.session.flush()
    if actor.staff is not None:
        audit.record(actor, "update", "booking", booking.reference, "日時変更")
    from channels.booking import live, notify, transfer

    transfer.moved(booking, from_starts_at)
    notify.moved(booking)
    live.changed(booking, "moved", also_day=from_starts_at)
    return booking


def cancel_booking(actor: Actor, booking: Booking, now: datetime | None = None) -> Booking:
    if actor.staff is not None:
        actor.require(*DESK_ROLES)
    _require_booked(booking)
    _take_over(
        booking,
        {
            "status": BookingStatus.CANCELLED,
            "cancelled_at": now or utcnow(),
            "sequence": Booking.sequence + 1,
        },
    )
    _release_seat(booking)
    db.session.flush()
    if actor.staff is not None:
        audit.record(actor, "update", "booking", booking.reference, "取消")
    from channels.booking import live, notify, transfer

    transfer.cancelled(booking)
    notify.cancelled(booking)
    live.changed(booking, "cancelled")
    return booking


# --- private manage link ---------------------------------------------------------------------


def _split_zones() -> bool:
    from consult.transfer.services import role

    return role() != "all"


def _serializer() -> URLSafeTimedSerializer:
    key = current_app.config["SECRET_KEY"]
    if _split_zones():
        # The core writes the link (in the confirmation mail) and the relay opens it: a key
        # both hold, derived from the transfer's, never the sessions' secret.
        from consult.transfer.services import settings

        key = hashlib.sha256(b"booking-manage\n" + settings().key.encode()).hexdigest()
    return URLSafeTimedSerializer(key, salt=MANAGE_SALT)


def manage_token(booking: Booking) -> str:
    return _serializer().dumps({"b": booking.id, "r": booking.reference})


def booking_from_token(token: str, max_age: int = MANAGE_MAX_AGE) -> Booking:
    """The booking a link points to; tampered, expired or stale links are all just invalid."""
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        raise NotFound("リンクが正しくないか、有効期限が切れています。") from None
    if not isinstance(payload, dict):
        booking = None
    elif _split_zones():
        # The relay's and the core's rows of one booking share its reference, not their ids.
        booking = db.session.scalar(
            sa.select(Booking).where(Booking.reference == str(payload.get("r")))
        )
    else:
        booking = db.session.get(Booking, payload.get("b"))
    if booking is None or not secrets.compare_digest(booking.reference, str(payload.get("r"))):
        raise NotFound("リンクが正しくないか、有効期限が切れています。")
    return booking


def manage_url(booking: Booking) -> str:
    base = urls.base_url()
    return f"{base}/booking/manage/{manage_token(booking)}"


# --- staff -----------------------------------------------------------------------------------


def bookings_between(actor: Actor, first: date, last: date) -> list[Booking]:
    """Bookings from `first` to `last` inclusive (Tokyo dates), for the desk's day/week views."""
    actor.require(*DESK_ROLES)
    lo = datetime.combine(first, time(0), TOKYO)
    hi = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    rows = list(
        db.session.scalars(
            sa.select(Booking)
            .where(Booking.starts_at >= lo, Booking.starts_at < hi)
            .options(selectinload(Booking.branch_office))
            .order_by(Booking.starts_at, Booking.mode, Booking.seat_no)
        )
    )
    audit.record(actor, "view", "booking", f"{first.isoformat()}..{last.isoformat()}", "予約一覧")
    return rows


def staff_get(actor: Actor, booking_id: int) -> Booking:
    actor.require(*DESK_ROLES)
    booking = get_live(booking_id)
    audit.record(actor, "view", "booking", booking.reference)
    return booking


CHECK_IN_CHANNEL = {
    Mode.COUNTER: Channel.COUNTER,
    Mode.PHONE: Channel.PHONE,
    Mode.VIDEO: Channel.BOOKING,
    Mode.BRANCH_VIDEO: Channel.BOOKING,
}


def citizen_candidates(actor: Actor, booking: Booking) -> list:
    """Registered citizens who may be the person who booked, for the desk to choose at 受付."""
    if booking.status != BookingStatus.BOOKED:
        return []
    try:
        return citizens.match(actor, _citizen_input(booking))
    except ValidationFailed:
        return []


def _citizen_input(booking: Booking) -> citizens.CitizenInput:
    return citizens.CitizenInput(
        name=booking.name, kana=booking.kana, phone=booking.phone, email=booking.email
    )


def check_in(actor: Actor, booking: Booking, choice: str | None = None) -> object:
    """Arrival (or the call or video starting) turns the booking into a ticket with 相談内容.

    The citizen is the one chosen among the candidates, or a new one; with a strong match and
    no choice, ``citizens.ChoiceRequired`` asks first (never a silent duplicate)."""
    actor.require(*DESK_ROLES)
    _require_booked(booking)
    # Taken first: of six desks pressing 受付 at once, one makes the citizen and the ticket.
    _take_over(
        booking,
        {
            "status": BookingStatus.CHECKED_IN,
            "staff_id": sa.func.coalesce(Booking.staff_id, actor.staff_id),
        },
    )
    citizen = citizens.citizen_for_intake(actor, _citizen_input(booking), choice=choice)
    kind_label = f"{booking.kind.name}・" if booking.kind else ""
    note = f"予約時の相談内容：\n{booking.content}"
    for item in booking.intake or []:
        note += f"\n\n{item['label']}：\n{item['answer'] or '（回答なし）'}"
    ticket = tickets.create_ticket(
        actor,
        channel=CHECK_IN_CHANNEL[booking.mode],
        subject=f"予約相談（{kind_label}{booking.mode_label}）{booking.reference}",
        category_id=booking.category_id,
        citizen=citizen,
        first_note=note,
        session_started_at=utcnow(),
    )
    booking.ticket = ticket
    audit.record(actor, "update", "booking", booking.reference, "受付")
    db.session.flush()
    from channels.booking import live

    live.changed(booking, "checked_in")
    return ticket


def mark_no_show(actor: Actor, booking: Booking, now: datetime | None = None) -> None:
    actor.require(*DESK_ROLES)
    _require_booked(booking)
    now = now or utcnow()
    if booking.starts_at > now:
        raise ValidationFailed("開始時刻の前に無断欠席にはできません。")
    _take_over(booking, {"status": BookingStatus.NO_SHOW}, Booking.starts_at <= now)
    audit.record(actor, "update", "booking", booking.reference, "無断欠席")
    db.session.flush()
    from channels.booking import live

    live.changed(booking, "no_show")


DETAILS_CHANGED = (
    "この予約はほかの操作で先に変更されました。"
    "現在の予約内容を確かめてから、もう一度保存してください。"
)


def set_details(
    actor: Actor,
    booking: Booking,
    video_url: str | None,
    staff_id: int | None,
    *,
    seen_sequence: int | None = None,
) -> None:
    """The meeting URL (mailed to the citizen when it is set or changed) and the assignee.

    Taken with one conditional UPDATE on the version the form showed (`seen_sequence`), with
    SEQUENCE raised in SQL: `booking.sequence += 1` in Python wrote back the number it read, so a
    move committed meanwhile lost its increment and calendars kept the old time. A save from a
    page older than the booking is refused and nothing is written.
    """
    actor.require(*DESK_ROLES)
    url = (video_url or "").strip() or None
    if booking.mode is Mode.BRANCH_VIDEO:
        url = booking.video_url  # the branch's link was made at booking time and stays
    elif url and (
        not url.startswith("https://") or len(url) > 500 or any(c.isspace() for c in url)
    ):
        raise ValidationFailed("会議のURLは https:// で始まる500文字以内で入力してください。")
    if url and booking.mode not in (Mode.VIDEO, Mode.BRANCH_VIDEO):
        raise ValidationFailed("会議のURLはオンライン相談の予約にだけ設定できます。")
    if staff_id is not None:
        member = db.session.get(Staff, staff_id)
        if member is None or not member.active or member.role not in DESK_ROLES:
            raise ValidationFailed("担当者は一覧から選んでください。")
    expected = booking.sequence if seen_sequence is None else seen_sequence
    if expected != booking.sequence:
        raise BookingChanged(DETAILS_CHANGED)
    changed = url != booking.video_url
    notify_citizen = changed and url is not None and booking.status is BookingStatus.BOOKED
    values: dict = {"staff_id": staff_id, "video_url": url}
    if notify_citizen:
        values["sequence"] = Booking.sequence + 1
    db.session.flush()
    saved = db.session.execute(
        sa.update(Booking)
        .where(Booking.id == booking.id, Booking.sequence == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(booking)
    if saved != 1:
        raise BookingChanged(DETAILS_CHANGED)
    audit.record(actor, "update", "booking", booking.reference, "詳細")
    db.session.flush()
    if notify_citizen:
        from channels.booking import notify

        notify.moved(booking)


# --- reminders -------------------------------------------------------------------------------


def send_reminders(now: datetime | None = None) -> int:
    """Queue the day-before reminder for tomorrow's bookings (worker task; idempotent)."""
    now = now or utcnow()
    tomorrow = to_tokyo(now).date() + timedelta(days=1)
    lo = datetime.combine(tomorrow, time(0), TOKYO)
    hi = lo + timedelta(days=1)
    due = list(
        db.session.scalars(
            sa.select(Booking).where(
                Booking.starts_at >= lo,
                Booking.starts_at < hi,
                Booking.status == BookingStatus.BOOKED,
                Booking.reminder_sent_at.is_(None),
                Booking.email.is_not(None),
            )
        )
    )
    from channels.booking import notify

    sent = 0
    for booking in due:
        # Taken with one conditional UPDATE: every `madoguchi worker` runs this task, and two of
        # them at once both read the booking as not yet reminded; one of them sends the mail.
        taken = db.session.execute(
            sa.update(Booking)
            .where(
                Booking.id == booking.id,
                Booking.reminder_sent_at.is_(None),
                Booking.status == BookingStatus.BOOKED,
                Booking.starts_at >= lo,
                Booking.starts_at < hi,
            )
            .values(reminder_sent_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.refresh(booking)
        if taken == 1:
            notify.reminder(booking)
            sent += 1
    db.session.flush()
    return sent


# --- private feeds ---------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def reset_feed(actor: Actor, kind: str, key: str) -> str:
    """A new secret URL for a feed; the old one stops working at once. Returns the token."""
    actor.require(*DESK_ROLES, Role.ADMIN)
    if kind == "staff" and key != str(actor.staff_id) and not actor.staff.has_role(Role.ADMIN):
        raise ValidationFailed("他の職員のカレンダーは再発行できません。")
    if kind == "room":
        mode, _, number = key.partition(":")
        if (
            mode not in {m.value for m in Mode}
            or not number.isdigit()
            or not 1 <= int(number) <= 50
        ):
            raise ValidationFailed("部屋の指定が正しくありません。")
    token = secrets.token_urlsafe(32)
    row = db.session.scalar(
        sa.select(CalendarFeed).where(CalendarFeed.kind == kind, CalendarFeed.key == key)
    )
    if row is None:
        row = CalendarFeed(kind=kind, key=key)
        db.session.add(row)
    row.token_hash = _hash(token)
    row.created_at = utcnow()
    audit.record(actor, "update", "calendar_feed", f"{kind}:{key}", "再発行")
    db.session.flush()
    return token


def feed_for_token(token: str) -> CalendarFeed:
    row = db.session.scalar(sa.select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token)))
    if row is None:
        raise NotFound("カレンダーが見つかりません。")
    return row


def feed_bookings(feed: CalendarFeed, now: datetime | None = None) -> list[Booking]:
    now = now or utcnow()
    query = sa.select(Booking).where(
        Booking.starts_at >= now - timedelta(days=7),
        Booking.status.in_([BookingStatus.BOOKED, BookingStatus.CHECKED_IN]),
    )
    if feed.kind == "room":
        mode, _, number = feed.key.partition(":")
        query = query.where(
            Booking.mode == mode, Booking.seat_no == int(number), Booking.kind_id.is_(None)
        )
    else:
        query = query.where(Booking.staff_id == int(feed.key))
    audit.record(SYSTEM, "export", "calendar_feed", f"{feed.kind}:{feed.key}")
    return list(db.session.scalars(query.order_by(Booking.starts_at)))


def group_by_day(slots: list[FreeSlot]) -> dict[date, list[FreeSlot]]:
    days: dict[date, list[FreeSlot]] = defaultdict(list)
    for slot in slots:
        days[slot.starts_at.date()].append(slot)
    return dict(days)
