"""The city's calendar: when the centre is open, and when departments count business time.

The centre opens every day (weekdays 8:30–17:15; weekends, national holidays and the year-end
days 9:00–15:00). Departments keep office hours only: weekdays 8:30–17:15, never on national
holidays nor on 12/29–1/3, so due times and escalations for handoffs count only those minutes.

National holidays (substitute and citizens' holidays included) come from the maintained
`holidays` package; the year-end days are the city's own rule and live here. Administrators'
exceptions (a closed day, shorter or extra hours) and the closed-day duty rota (閉庁日当番) are
the kernel's too (`CalendarException`, `DutyAssignment`), so every channel reads the same hours
and tells citizens the same thing through `hours_text()` / `hours_summary()`: no channel keeps
its own copy of the hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays
import sqlalchemy as sa
from flask import g, has_app_context
from icalendar import Calendar, Event
from sqlalchemy.orm import joinedload

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import CalendarException, Department, DutyAssignment, Role
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import single_line
from consult.timeutil import TOKYO, WEEKDAYS_JA, tokyo_today, utcnow


class DayType(LabelledEnum):
    WEEKDAY = "weekday", "平日"
    WEEKEND = "weekend", "土日"
    HOLIDAY = "holiday", "祝日"
    YEAR_END = "year_end", "年末年始"


WEEKDAY_HOURS = (time(8, 30), time(17, 15))
CLOSED_DAY_HOURS = (time(9, 0), time(15, 0))
DEPARTMENT_HOURS = WEEKDAY_HOURS
BUSINESS_DAY_MINUTES = 525  # 8:30–17:15, counted whole (the lunch hour too)


@dataclass(frozen=True)
class Hours:
    opens: time
    closes: time
    note: str = ""


_HOURS_KEY = "centre_hours"


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("JP", years=year, language="ja"))


def holiday_name(day: date) -> str | None:
    """The national holiday's Japanese name (振替休日 and 国民の休日 included), else None."""
    return _holidays_of(day.year).get(day)


def is_year_end(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def day_type(day: date) -> DayType:
    if is_year_end(day):
        return DayType.YEAR_END
    if holiday_name(day):
        return DayType.HOLIDAY
    if day.weekday() >= 5:
        return DayType.WEEKEND
    return DayType.WEEKDAY


def usual_hours(day: date) -> Hours:
    """The centre's hours on a day of this type, before any administrator's exception."""
    opens, closes = WEEKDAY_HOURS if day_type(day) is DayType.WEEKDAY else CLOSED_DAY_HOURS
    return Hours(opens, closes)


def exception_hours(row: CalendarException) -> Hours | None:
    """An exception's hours, or None when it closes the day."""
    if row.closed or row.opens is None or row.closes is None:
        return None
    return Hours(row.opens, row.closes, row.note)


def centre_hours(day: date) -> Hours | None:
    """The centre's opening hours on a day, or None when an administrator closed it.

    Asked several times for every LINE message and email (is it open? when does it open next?):
    each day's answer is kept for the app context (one request, one worker round), as an
    exception is a query. Whoever changes an exception calls `forget_centre_hours`.
    """
    cache = _hours_cache()
    if day not in cache:
        return centre_hours_between(day, day)[day]
    return cache[day]


def centre_hours_between(first: date, last: date) -> dict[date, Hours | None]:
    """The centre's hours for every day from `first` to `last` (both included), in one query.

    For pages that show many days (booking's slots over eight weeks, the staff week): the
    exceptions of the whole range are read at once and kept for the app context like
    `centre_hours`. Outside an app (a pure calendar computation) there are no exceptions.
    """
    cache = _hours_cache()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if any(day not in cache for day in days):
        exceptions = _exceptions_between(first, last) if has_app_context() else {}
        for day in days:
            row = exceptions.get(day)
            cache[day] = usual_hours(day) if row is None else exception_hours(row)
    return {day: cache[day] for day in days}


def _hours_cache() -> dict[date, Hours | None]:
    return g.setdefault(_HOURS_KEY, {}) if has_app_context() else {}


def _exceptions_between(first: date, last: date) -> dict[date, CalendarException]:
    # Asked for every LINE message and email ack: the caller's pending rows are not flushed for
    # it (they cannot change a calendar exception; save_exception flushes its own).
    with db.session.no_autoflush:
        rows = db.session.scalars(
            sa.select(CalendarException).where(
                CalendarException.day >= first, CalendarException.day <= last
            )
        )
        return {row.day: row for row in rows}


def forget_centre_hours() -> None:
    if has_app_context():
        g.pop(_HOURS_KEY, None)


# --- what citizens are told -------------------------------------------------------------------

SUMMARY_DAYS = 14  # how far ahead the usual week's summary names the exceptions


def _clock(moment: time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def _span(hours: Hours) -> str:
    return f"{_clock(hours.opens)}〜{_clock(hours.closes)}"


def _day_label(day: date) -> str:
    return f"{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


def hours_text(day: date) -> str:
    """One day's hours as citizens read them.

    「12月5日(土)は9:00〜15:00」, or with an administrator's exception 「…は休業（設備点検）」.
    """
    row = _exceptions_between(day, day).get(day) if has_app_context() else None
    return _describe(day, usual_hours(day) if row is None else exception_hours(row), row)


def _describe(day: date, hours: Hours | None, row: CalendarException | None) -> str:
    note = f"（{row.note}）" if row is not None and row.note else ""
    if hours is None:
        return f"{_day_label(day)}は休業{note}"
    return f"{_day_label(day)}は{_span(hours)}{note}"


def hours_summary(start: date | None = None, days: int = SUMMARY_DAYS) -> str:
    """The usual week, then the administrators' exceptions of the coming days.

    「平日 8:30〜17:15／土日祝・年末年始 9:00〜15:00」, built from the hours above, and, when an
    administrator changed a day among the `days` days from `start` (today), a second line such
    as 「臨時の変更：12月5日(土)は休業（設備点検）」. Every channel that tells citizens the hours
    (LINE's greeting and out-of-hours answer, email's acknowledgement) says this. One query.
    """
    text = (
        f"平日 {_span(Hours(*WEEKDAY_HOURS))}／土日祝・年末年始 {_span(Hours(*CLOSED_DAY_HOURS))}"
    )
    if not has_app_context():
        return text
    first = start or tokyo_today()
    last = first + timedelta(days=days - 1)
    exceptions = _exceptions_between(first, last)
    changed = []
    for day in sorted(exceptions):
        row = exceptions[day]
        hours = exception_hours(row)
        usual = usual_hours(day)
        if hours is None or (hours.opens, hours.closes) != (usual.opens, usual.closes):
            changed.append(_describe(day, hours, row))
    if changed:
        text += "\n臨時の変更：" + "、".join(changed)
    return text


def _tokyo(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use a timezone-aware one")
    return moment.astimezone(TOKYO)


def centre_is_open(moment: datetime) -> bool:
    local = _tokyo(moment)
    hours = centre_hours(local.date())
    return hours is not None and hours.opens <= local.time() < hours.closes


def next_centre_opening(moment: datetime) -> datetime:
    """When a consultant is next at the desk: now if open, else the next opening."""
    local = _tokyo(moment)
    day = local.date()
    for offset in range(0, 30):
        current = day + timedelta(days=offset)
        hours = centre_hours(current)
        if hours is None:
            continue
        opens = datetime.combine(current, hours.opens, TOKYO)
        closes = datetime.combine(current, hours.closes, TOKYO)
        if local < closes:
            return max(local, opens).astimezone(UTC)
    raise ValueError("the centre is closed for 30 days in a row")


def to_tokyo_date(moment: datetime) -> date:
    return _tokyo(moment).date()


def is_business_day(day: date) -> bool:
    """A department's working day: Monday to Friday, not a national holiday, not year-end."""
    return day_type(day) is DayType.WEEKDAY


def add_business_days(day: date, days: int) -> date:
    """The `days`-th business day after `day` (the day of receipt itself is not counted): a
    deadline of "10開庁日以内" for a letter received on a Friday before a holiday."""
    if days < 0:
        raise ValueError("days must not be negative")
    found = day
    while days > 0:
        found += timedelta(days=1)
        if is_business_day(found):
            days -= 1
    return found


def business_days_between(first: date, last: date) -> int:
    """Business days after `first` up to and including `last` (0 when last is not after)."""
    count = 0
    day = first
    while day < last:
        day += timedelta(days=1)
        if is_business_day(day):
            count += 1
    return count


def add_business_minutes(start: datetime, minutes: int) -> datetime:
    """`minutes` of department office time after `start` (which may fall on a closed day)."""
    local = _tokyo(start)
    remaining = minutes
    day = local.date()
    opens, closes = DEPARTMENT_HOURS
    while True:
        if is_business_day(day):
            day_open = datetime.combine(day, opens, TOKYO)
            day_close = datetime.combine(day, closes, TOKYO)
            cursor = max(local, day_open)
            if cursor < day_close:
                available = int((day_close - cursor).total_seconds() // 60)
                if remaining <= available:
                    return (cursor + timedelta(minutes=remaining)).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
        local = datetime.combine(day, time(0), TOKYO)


def business_minutes_between(start: datetime, end: datetime) -> int:
    """Department office minutes from start to end (0 when end is not after start)."""
    if end <= start:
        return 0
    local_start, local_end = _tokyo(start), _tokyo(end)
    opens, closes = DEPARTMENT_HOURS
    total = 0.0
    day = local_start.date()
    while day <= local_end.date():
        if is_business_day(day):
            lo = max(local_start, datetime.combine(day, opens, TOKYO))
            hi = min(local_end, datetime.combine(day, closes, TOKYO))
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return int(total // 60)


def expected_answer_text(moment: datetime) -> str:
    """What a citizen is told, e.g. 「12月28日(月) 10:00 頃までに担当課からご連絡します」."""
    local = _tokyo(moment)
    # Round up to the next quarter hour so the promise is never earlier than the due time.
    rounded = local + timedelta(minutes=(-local.minute) % 15)
    rounded = rounded.replace(second=0, microsecond=0)
    return (
        f"{rounded.month}月{rounded.day}日({WEEKDAYS_JA[rounded.weekday()]}) "
        f"{rounded:%H:%M} 頃までに担当課からご連絡します"
    )


# --- administrators' exceptions ----------------------------------------------------------------


def save_exception(
    actor: Actor, day: date, closed: bool, opens: time | None, closes: time | None, note: str
) -> CalendarException:
    actor.require(Role.ADMIN)
    note = single_line(note)[:200]
    if not closed:
        if opens is None or closes is None:
            raise ValidationFailed("休業にしない場合は、開始と終了の時刻を入力してください。")
        if opens >= closes:
            raise ValidationFailed("終了時刻は開始時刻より後にしてください。")
    row = db.session.scalar(sa.select(CalendarException).where(CalendarException.day == day))
    if row is None:
        row = CalendarException(day=day)
        db.session.add(row)
    row.closed = closed
    row.opens = None if closed else opens
    row.closes = None if closed else closes
    row.note = note
    audit.record(actor, "update", "calendar_exception", day.isoformat())
    db.session.flush()
    forget_centre_hours()
    return row


def delete_exception(actor: Actor, exception_id: int) -> None:
    actor.require(Role.ADMIN)
    row = db.session.get(CalendarException, exception_id)
    if row is None:
        raise NotFound("指定された例外日は見つかりません。")
    audit.record(actor, "update", "calendar_exception", row.day.isoformat(), "削除")
    db.session.delete(row)
    db.session.flush()
    forget_centre_hours()


def list_exceptions(start: date | None = None) -> list[CalendarException]:
    query = sa.select(CalendarException).order_by(CalendarException.day)
    if start:
        query = query.where(CalendarException.day >= start)
    return list(db.session.scalars(query))


# --- the closed-day duty rota (閉庁日当番) --------------------------------------------------------


def duty_department_for(day: date) -> Department | None:
    """The department on duty on a closed day (weekend, holiday, year-end), for handoffs."""
    row = db.session.scalar(sa.select(DutyAssignment).where(DutyAssignment.day == day))
    return row.department if row else None


def duty_departments_between(first: date, last: date) -> dict[date, Department]:
    """The duty departments of a range (the staff week view), in one query."""
    return {row.day: row.department for row in rota_between(first, last)}


def generate_rota(actor: Actor, first: date, last: date, department_ids: list[int]) -> int:
    """Assign the departments in turn to each weekend, holiday and year-end day in the range.

    The turn carries on from the last assignment before `first`, so consecutive runs are fair.
    Existing assignments in the range are replaced.
    """
    actor.require(Role.ADMIN)
    if last < first:
        raise ValidationFailed("終了日は開始日以後にしてください。")
    if (last - first).days > 366:
        raise ValidationFailed("当番表は1年以内の期間で作成してください。")
    departments = [db.session.get(Department, i) for i in department_ids]
    if not departments or any(d is None or not d.active for d in departments):
        raise ValidationFailed("当番の担当課を1つ以上選んでください。")
    previous = db.session.scalar(
        sa.select(DutyAssignment)
        .where(DutyAssignment.day < first)
        .order_by(DutyAssignment.day.desc())
    )
    index = 0
    if previous is not None and previous.department_id in department_ids:
        index = department_ids.index(previous.department_id) + 1
    db.session.execute(
        sa.delete(DutyAssignment).where(DutyAssignment.day >= first, DutyAssignment.day <= last)
    )
    count = 0
    day = first
    while day <= last:
        if day_type(day) is not DayType.WEEKDAY:
            department = departments[index % len(departments)]
            db.session.add(DutyAssignment(day=day, department_id=department.id))
            index += 1
            count += 1
        day += timedelta(days=1)
    audit.record(actor, "update", "duty_rota", f"{first.isoformat()}..{last.isoformat()}")
    db.session.flush()
    return count


def rota_between(first: date, last: date) -> list[DutyAssignment]:
    return list(
        db.session.scalars(
            sa.select(DutyAssignment)
            .where(DutyAssignment.day >= first, DutyAssignment.day <= last)
            .order_by(DutyAssignment.day)
            .options(joinedload(DutyAssignment.department))
        )
    )


def rota_ical(assignments: list[DutyAssignment], domain: str) -> str:
    """The rota as an iCalendar file of all-day events, one per closed day."""
    cal = Calendar.new(prodid="-//madoguchi//calendar//JA", name="閉庁日当番")
    for row in assignments:
        cal.add_component(
            Event.new(
                uid=f"duty-{row.day.isoformat()}@{domain}",
                stamp=utcnow(),
                start=row.day,
                end=row.day + timedelta(days=1),
                summary=f"閉庁日当番：{row.department.name}",
            )
        )
    return cal.to_ical().decode("utf-8")
