"""Specialist sessions (専門相談): the kinds administrators set up, their slots, intake answers,
and the specialist's own list.

A kind's seats are taken exactly as the centre's slots are (`services._take_seat`): a
conditional UPDATE on the slot's counter row, whose unique key is (mode, kind_key, starts_at)
with kind_key = the kind's id. The kind's capacity is read at booking time.

Messages raised here are Japanese msgids: the public pages show them translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from channels.booking.models import Booking, BookingSlot, Mode, SessionKind, SessionKindDate
from consult.extensions import db
from consult.models import Role, Staff
from consult.services import audit, calendar
from consult.services.actor import Actor
from consult.services.calendar import DayType
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import single_line, strip_controls
from consult.timeutil import TOKYO, to_tokyo, utcnow

MAX_ANSWER = 500
MAX_QUESTIONS = 10
SLOT_LENGTHS = (15, 20, 30, 45, 60, 90, 120)
WEEKDAY_LABELS = ("月", "火", "水", "木", "金", "土", "日")
# Weekly days run on ordinary days only: not on national holidays nor over the year-end.
WEEKLY_DAY_TYPES = (DayType.WEEKDAY, DayType.WEEKEND)

ANSWER_REQUIRED = "事前の質問への回答を入力してください。"
ANSWER_TOO_LONG = "回答は500文字以内で入力してください。"


# --- administrators ----------------------------------------------------------------------------


@dataclass
class KindInput:
    """What the administrator's form gives; `clean()` refuses anything out of shape."""

    name: str
    mode: str = Mode.COUNTER.value
    name_en: str | None = None
    description: str | None = None
    description_en: str | None = None
    specialist_id: int | None = None
    weekdays: list[int] = field(default_factory=list)
    dates_only: bool = False
    dates: str = ""  # one YYYY-MM-DD a line
    opens: time | None = None
    closes: time | None = None
    slot_minutes: int = 60
    capacity: int = 1
    questions: str = ""  # one a line: 「* 質問 | English question」, * for required
    active: bool = True


def parse_questions(text: str) -> list[dict]:
    """「* 相談したいことは | What would you like to discuss」 a line → the kind's questions."""
    questions = []
    for raw in strip_controls(text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        required = line.startswith(("*", "＊"))
        if required:
            line = line[1:].strip()
        label, _, label_en = (part.strip() for part in line.partition("|"))
        if not label:
            raise ValidationFailed("質問の文を入力してください（「| 英語」の前）。")
        if len(label) > 200 or len(label_en) > 200:
            raise ValidationFailed("質問は日本語・英語それぞれ200文字以内で入力してください。")
        questions.append({"label": label, "label_en": label_en, "required": required})
    if len(questions) > MAX_QUESTIONS:
        raise ValidationFailed("質問は10個までです。")
    return questions


def questions_text(kind: SessionKind) -> str:
    lines = []
    for q in kind.questions or []:
        line = ("* " if q.get("required") else "") + q["label"]
        if q.get("label_en"):
            line += f" | {q['label_en']}"
        lines.append(line)
    return "\n".join(lines)


def parse_dates(text: str) -> list[date]:
    days = set()
    for raw in (text or "").split():
        try:
            day = date.fromisoformat(raw.strip().replace("/", "-"))
        except ValueError:
            raise ValidationFailed(
                f"実施日「{single_line(raw)[:20]}」は 2027-01-11 の形で入力してください。"
            ) from None
        if not 2000 <= day.year <= 2100:
            raise ValidationFailed("実施日は2000年から2100年の日付で入力してください。")
        days.add(day)
    if len(days) > 400:
        raise ValidationFailed("実施日は400日までです。")
    return sorted(days)


def save_kind(actor: Actor, kind: SessionKind | None, data: KindInput) -> SessionKind:
    """Create or change a kind (administrators). Bookings already made keep their time."""
    actor.require(Role.ADMIN)
    name = single_line(data.name or "")
    if not name or len(name) > 80:
        raise ValidationFailed("名称を80文字以内で入力してください。")
    name_en = single_line(data.name_en or "") or None
    if name_en and len(name_en) > 120:
        raise ValidationFailed("英語の名称は120文字以内で入力してください。")
    try:
        mode = Mode(data.mode)
    except ValueError:
        raise ValidationFailed("相談の方法を選んでください。") from None
    if mode is Mode.BRANCH_VIDEO:
        raise ValidationFailed("専門相談の方法は窓口・電話・オンラインから選んでください。")
    if data.slot_minutes not in SLOT_LENGTHS:
        raise ValidationFailed("1回の長さは15・20・30・45・60・90・120分から選んでください。")
    if not 1 <= data.capacity <= 50:
        raise ValidationFailed("定員は1〜50で入力してください。")
    if data.opens is None or data.closes is None:
        raise ValidationFailed("開始・終了の時刻を入力してください。")
    start = datetime.combine(date(2000, 1, 3), data.opens)
    if start + timedelta(minutes=data.slot_minutes) > datetime.combine(start.date(), data.closes):
        raise ValidationFailed("終了の時刻は、開始の時刻から1回の長さ以上あとにしてください。")
    weekdays = sorted(set(data.weekdays))
    if any(not 0 <= d <= 6 for d in weekdays):
        raise ValidationFailed("曜日は一覧から選んでください。")
    days = parse_dates(data.dates)
    if data.dates_only and not days and data.active:
        raise ValidationFailed("「選んだ日だけ」の専門相談には実施日を1日以上入力してください。")
    if not data.dates_only and not weekdays and not days and data.active:
        raise ValidationFailed("曜日か実施日を選んでください。")
    if data.specialist_id is not None:
        member = db.session.get(Staff, data.specialist_id)
        if member is None or not member.active:
            raise ValidationFailed("担当の専門相談員は一覧から選んでください。")
    questions = parse_questions(data.questions)
    clash = db.session.scalar(
        sa.select(SessionKind.id).where(
            SessionKind.name == name, SessionKind.id != (kind.id if kind else -1)
        )
    )
    if clash is not None:
        raise ValidationFailed("同じ名称の専門相談がすでにあります。")
    if kind is None:
        kind = SessionKind(name=name)
        db.session.add(kind)
    kind.name = name
    kind.name_en = name_en
    kind.description = strip_controls(data.description or "").strip()[:2000] or None
    kind.description_en = strip_controls(data.description_en or "").strip()[:2000] or None
    kind.mode = mode
    kind.specialist_id = data.specialist_id
    kind.weekdays = "".join(str(d) for d in weekdays)
    kind.dates_only = bool(data.dates_only)
    kind.opens = data.opens
    kind.closes = data.closes
    kind.slot_minutes = data.slot_minutes
    kind.capacity = data.capacity
    kind.questions = questions
    kind.active = bool(data.active)
    # Rows kept for the days that stay: replacing them all would insert a day before deleting
    # the same day's old row and break the (kind, day) unique key.
    kept = {row.day: row for row in kind.dates if row.day in set(days)}
    kind.dates = [kept.get(d) or SessionKindDate(day=d) for d in days]
    db.session.flush()
    audit.record(actor, "update", "session_kind", str(kind.id))
    return kind


def list_kinds(active_only: bool = False) -> list[SessionKind]:
    query = sa.select(SessionKind).options(selectinload(SessionKind.dates))
    if active_only:
        query = query.where(SessionKind.active.is_(True))
    return list(db.session.scalars(query.order_by(SessionKind.id)))


def get_kind(kind_id: int | None, *, active_only: bool = True) -> SessionKind:
    kind = db.session.get(SessionKind, kind_id) if kind_id else None
    if kind is None or (active_only and not kind.active):
        raise NotFound("この専門相談は現在予約を受け付けていません。")
    return kind


# --- days and slots ------------------------------------------------------------------------------


def _chosen_days(kind: SessionKind, first: date, last: date) -> set[date]:
    return set(
        db.session.scalars(
            sa.select(SessionKindDate.day).where(
                SessionKindDate.kind_id == kind.id,
                SessionKindDate.day >= first,
                SessionKindDate.day <= last,
            )
        )
    )


def offered_days(kind: SessionKind, first: date, last: date) -> set[date]:
    """The days from `first` to `last` on which the kind runs.

    Chosen dates always; with `dates_only` nothing else. Weekly days on ordinary days the centre
    is open (a national holiday, the year-end or a closure the administrator entered stops
    them).
    """
    days = _chosen_days(kind, first, last)
    if kind.dates_only or not kind.weekdays:
        return days
    hours = calendar.centre_hours_between(first, last)
    day = first
    while day <= last:
        if (
            str(day.weekday()) in kind.weekdays
            and hours.get(day) is not None
            and calendar.day_type(day) in WEEKLY_DAY_TYPES
        ):
            days.add(day)
        day += timedelta(days=1)
    return days


def kind_times(kind: SessionKind, day: date) -> list[tuple[datetime, datetime]]:
    out = []
    cursor = datetime.combine(day, kind.opens, TOKYO)
    closes = datetime.combine(day, kind.closes, TOKYO)
    step = timedelta(minutes=kind.slot_minutes)
    while cursor + step <= closes:
        out.append((cursor, cursor + step))
        cursor += step
    return out


def kind_slots(
    kind: SessionKind,
    *,
    now: datetime | None = None,
    start: date | None = None,
    days: int | None = None,
    include_full: bool = False,
):
    """The kind's bookable slots (`services.FreeSlot`), with the same lead time and horizon as
    the centre's slots; three queries whatever the range."""
    from channels.booking.services import FreeSlot, config

    now = now or utcnow()
    settings = config()
    earliest = now + timedelta(minutes=settings.min_lead_minutes)
    latest = now + timedelta(days=settings.horizon_days)
    first = start or to_tokyo(now).date()
    count = days if days is not None else settings.horizon_days + 1
    last = first + timedelta(days=count - 1)
    lo = datetime.combine(first, time(0), TOKYO)
    hi = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    counters = dict(
        db.session.execute(
            sa.select(BookingSlot.starts_at, BookingSlot.booked).where(
                BookingSlot.kind_key == kind.id,
                BookingSlot.mode == kind.mode,
                BookingSlot.starts_at >= lo,
                BookingSlot.starts_at < hi,
            )
        ).all()
    )
    out = []
    for day in sorted(offered_days(kind, first, last)):
        for begin, end in kind_times(kind, day):
            if begin < earliest or begin > latest:
                continue
            booked = counters.get(begin.astimezone(UTC), 0)
            if include_full or booked < kind.capacity:
                out.append(FreeSlot(kind.mode, begin, end, kind.capacity, booked, kind.id))
    return out


def check_kind_slot(
    kind: SessionKind, starts_at: datetime, now: datetime | None = None
) -> tuple[datetime, int]:
    """The slot's end and the kind's capacity, or a clear refusal (past, too soon, too far, not
    a day or time the kind runs)."""
    from channels.booking.services import SlotUnavailable, _refuse_out_of_range, config

    now = now or utcnow()
    settings = config()
    _refuse_out_of_range(starts_at)
    if starts_at < now:
        raise SlotUnavailable("過去の日時は予約できません。")
    if starts_at < now + timedelta(minutes=settings.min_lead_minutes):
        raise SlotUnavailable("開始の1時間前を過ぎた枠は予約できません。")
    if starts_at > now + timedelta(days=settings.horizon_days):
        raise SlotUnavailable("予約できるのは8週間先までです。")
    local = to_tokyo(starts_at)
    day = local.date()
    if day not in offered_days(kind, day, day) or not any(
        begin == local for begin, _ in kind_times(kind, day)
    ):
        raise SlotUnavailable("選択された日時にはこの専門相談を行っていません。")
    return starts_at + timedelta(minutes=kind.slot_minutes), kind.capacity


# --- intake answers ------------------------------------------------------------------------------


def clean_answers(kind: SessionKind, answers: dict[int, str] | None) -> list[dict]:
    """The answers to the kind's questions, by question number: required ones present, each
    500 characters at most, control characters removed. Stored with the question's Japanese
    text (personal data: kept on the booking, shown to the desk and the specialist)."""
    answers = answers or {}
    out = []
    for number, question in enumerate(kind.questions or []):
        text = strip_controls(answers.get(number) or "").strip()
        if question.get("required") and not text:
            raise ValidationFailed(ANSWER_REQUIRED)
        if len(text) > MAX_ANSWER:
            raise ValidationFailed(ANSWER_TOO_LONG)
        out.append({"label": question["label"], "answer": text})
    return out


# --- the specialist ------------------------------------------------------------------------------


def kinds_of(staff: Staff) -> list[SessionKind]:
    return list(
        db.session.scalars(
            sa.select(SessionKind)
            .where(SessionKind.specialist_id == staff.id)
            .order_by(SessionKind.id)
        )
    )


def specialist_bookings(actor: Actor, first: date, days: int = 28) -> list[Booking]:
    """The bookings of the kinds the signed-in member of staff holds, from `first` (audited)."""
    if actor.staff is None:
        raise NotFound("ページが見つかりません。")
    lo = datetime.combine(first, time(0), TOKYO)
    hi = lo + timedelta(days=days)
    rows = list(
        db.session.scalars(
            sa.select(Booking)
            .join(SessionKind, SessionKind.id == Booking.kind_id)
            .where(
                SessionKind.specialist_id == actor.staff_id,
                Booking.starts_at >= lo,
                Booking.starts_at < hi,
            )
            .options(selectinload(Booking.kind))
            .order_by(Booking.starts_at, Booking.id)
        )
    )
    if rows:
        audit.record(
            actor, "view", "booking", f"specialist:{first.isoformat()}+{days}", "専門相談の一覧"
        )
    return rows


def format_weekdays(kind: SessionKind) -> str:
    return "・".join(WEEKDAY_LABELS[int(d)] for d in kind.weekdays if re.fullmatch(r"[0-6]", d))


# --- demo ----------------------------------------------------------------------------------------


def _next_holiday_or_weekend(count: int) -> str:
    """The next `count` holidays or Sundays within the horizon, one a line (the 経営相談会)."""
    day = to_tokyo(utcnow()).date() + timedelta(days=1)
    found = []
    while len(found) < count and day < to_tokyo(utcnow()).date() + timedelta(days=55):
        if calendar.day_type(day) is DayType.HOLIDAY or day.weekday() == 6:
            found.append(day.isoformat())
        day += timedelta(days=1)
    return "\n".join(found)


def seed_demo(members: dict) -> None:
    """The three specialist sessions of Imabari's centre, as the demo administrator sets them."""
    admin = Actor(members["admin"], "seed")
    save_kind(
        admin,
        None,
        KindInput(
            name="心理カウンセラー",
            name_en="Psychological counsellor",
            description="公認心理師が、こころの悩みやストレスについてお話を伺います。",
            description_en="A certified psychologist listens to your worries and stress.",
            specialist_id=members["sato"].id,
            weekdays=[1, 3],
            opens=time(13, 0),
            closes=time(16, 0),
            slot_minutes=60,
            questions=(
                "* 今、いちばん困っていること | What troubles you most at the moment\n"
                "これまでに相談した機関 | Anyone you have consulted before"
            ),
        ),
    )
    save_kind(
        admin,
        None,
        KindInput(
            name="家計相談",
            name_en="Household budget consultation",
            description="家計の立て直しを、家計表をつくりながら一緒に考えます。",
            description_en="We work out a household budget with you, step by step.",
            specialist_id=members["yamada"].id,
            weekdays=[0, 2, 4],
            opens=time(10, 0),
            closes=time(12, 0),
            slot_minutes=60,
            capacity=2,
            questions="* 毎月の収入と支出のおおよその額 | Your monthly income and spending",
        ),
    )
    save_kind(
        admin,
        None,
        KindInput(
            name="経営相談会（よろず支援拠点）",
            name_en="Business consultation day (Yorozu Support Centre)",
            description="県のよろず支援拠点のコーディネーターが、休日に経営の相談を受けます。",
            description_en="Coordinators of the prefecture's Yorozu Support Centre, on holidays.",
            dates_only=True,
            dates=_next_holiday_or_weekend(3),
            opens=time(10, 0),
            closes=time(15, 0),
            slot_minutes=60,
            capacity=2,
            questions=(
                "* 業種 | Your line of business\n* ご相談のテーマ | What you would like to discuss"
            ),
        ),
    )
