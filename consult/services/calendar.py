"""The city's calendar: when the centre is open, and when departments count business time.

The centre opens every day (weekdays 8:30–17:15; weekends, national holidays and the year-end
days 9:00–15:00). Departments keep office hours only: weekdays 8:30–17:15, never on national
holidays nor on 12/29–1/3, so due times and escalations for handoffs count only those minutes.

National holidays (substitute and citizens' holidays included) come from the maintained
`holidays` package; the year-end days are the city's own rule and live here. Administrators'
exceptions (a closed day, shorter hours) are looked up through the plugins' `hour_override`,
which the booking package declares, so the kernel never imports it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays
from flask import g, has_app_context

from consult.timeutil import TOKYO, WEEKDAYS_JA


class DayType(enum.StrEnum):
    WEEKDAY = "weekday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    YEAR_END = "year_end"


DAY_TYPE_LABELS = {
    DayType.WEEKDAY: "平日",
    DayType.WEEKEND: "土日",
    DayType.HOLIDAY: "祝日",
    DayType.YEAR_END: "年末年始",
}

WEEKDAY_HOURS = (time(8, 30), time(17, 15))
CLOSED_DAY_HOURS = (time(9, 0), time(15, 0))
DEPARTMENT_HOURS = WEEKDAY_HOURS
BUSINESS_DAY_MINUTES = 525  # 8:30–17:15, counted whole (the lunch hour too)


@dataclass(frozen=True)
class Hours:
    opens: time
    closes: time
    note: str = ""


def hour_overrides() -> list[Callable[[date], Hours | bool | None]]:
    """The plugins' exceptions: (day) -> Hours | None | False (None: no exception, False: closed).

    Outside an app (a pure calendar computation) there are none.
    """
    if not has_app_context():
        return []
    from consult import plugins

    return plugins.registry().hour_overrides


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


def centre_hours(day: date) -> Hours | None:
    """The centre's opening hours on a day, or None when an administrator closed it.

    Asked several times for every LINE message and email (is it open? when does it open next?):
    each day's answer is kept for the app context (one request, one worker round), as an
    override is a query. Whoever changes an exception calls `forget_centre_hours`.
    """
    cache = g.setdefault(_HOURS_KEY, {}) if has_app_context() else {}
    if day in cache:
        return cache[day]
    hours = _centre_hours(day)
    cache[day] = hours
    return hours


def forget_centre_hours() -> None:
    if has_app_context():
        g.pop(_HOURS_KEY, None)


def _centre_hours(day: date) -> Hours | None:
    for override in hour_overrides():
        found = override(day)
        if found is False:
            return None
        if isinstance(found, Hours):
            return found
    opens, closes = WEEKDAY_HOURS if day_type(day) is DayType.WEEKDAY else CLOSED_DAY_HOURS
    return Hours(opens, closes)


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
