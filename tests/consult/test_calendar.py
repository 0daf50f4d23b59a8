"""The city's calendar against the Cabinet Office's own list and the city's year-end rule."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from consult.services import calendar
from consult.services.calendar import DayType
from consult.timeutil import TOKYO

FIXTURE = Path(__file__).parent.parent / "fixtures" / "holidays" / "syukujitsu.utf8.csv"


def cabinet_office_dates() -> set[date]:
    with FIXTURE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return {date(*map(int, row[0].split("/"))) for row in rows}


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.mark.parametrize("year", range(1986, 2028))
def test_national_holidays_match_the_cabinet_office_list(year):
    official = {d for d in cabinet_office_dates() if d.year == year}
    day, ours = date(year, 1, 1), set()
    while day.year == year:
        if calendar.holiday_name(day):
            ours.add(day)
        day += timedelta(days=1)
    assert ours == official


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 5, 6), DayType.HOLIDAY),  # 振替休日
        (date(2026, 9, 22), DayType.HOLIDAY),  # 国民の休日
        (date(2026, 11, 24), DayType.WEEKDAY),
        (date(2026, 11, 22), DayType.WEEKEND),
        (date(2026, 12, 28), DayType.WEEKDAY),
        (date(2026, 12, 29), DayType.YEAR_END),
        (date(2026, 12, 31), DayType.YEAR_END),
        (date(2027, 1, 1), DayType.YEAR_END),
        (date(2027, 1, 3), DayType.YEAR_END),
        (date(2027, 1, 4), DayType.WEEKDAY),
    ],
)
def test_day_types(day, expected):
    assert calendar.day_type(day) is expected


def test_centre_hours_every_day_of_the_year():
    assert calendar.centre_hours(date(2026, 11, 24)) == calendar.Hours(*calendar.WEEKDAY_HOURS)
    for closed_day in (date(2026, 5, 6), date(2026, 12, 29), date(2026, 11, 22)):
        hours = calendar.centre_hours(closed_day)
        assert (hours.opens.hour, hours.closes.hour) == (9, 15)
    assert calendar.centre_is_open(tokyo(2027, 1, 1, 10, 0))
    assert not calendar.centre_is_open(tokyo(2027, 1, 1, 15, 0))
    assert not calendar.centre_is_open(tokyo(2026, 11, 24, 8, 29))
    assert calendar.centre_is_open(tokyo(2026, 11, 24, 8, 30))


def test_next_centre_opening():
    evening = tokyo(2026, 11, 24, 18, 0)
    assert calendar.next_centre_opening(evening) == tokyo(2026, 11, 25, 8, 30)
    friday_night = tokyo(2026, 11, 27, 20, 0)
    assert calendar.next_centre_opening(friday_night) == tokyo(2026, 11, 28, 9, 0)
    open_now = tokyo(2026, 11, 24, 10, 0)
    assert calendar.next_centre_opening(open_now) == open_now


def test_an_override_closes_a_day_and_shortens_another(app):
    """A plugin's exceptions (booking's, in the product) decide the centre's hours."""
    from consult import plugins

    def override(day):
        if day == date(2026, 11, 25):
            return False
        if day == date(2026, 11, 26):
            return calendar.Hours(calendar.time(10, 0), calendar.time(12, 0), "研修")
        return None

    plugins.install(app, plugins.Plugin(name="test-override", hour_override=override))
    assert calendar.centre_hours(date(2026, 11, 25)) is None
    assert calendar.next_centre_opening(tokyo(2026, 11, 24, 18, 0)) == tokyo(2026, 11, 26, 10, 0)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # Saturday 2026-12-26: departments are closed until Monday 2026-12-28.
        (tokyo(2026, 12, 26, 11, 0), 10, tokyo(2026, 12, 28, 8, 40)),
        (tokyo(2026, 12, 26, 11, 0), 525, tokyo(2026, 12, 28, 17, 15)),
        # 2026-12-29 is year-end: nothing counts until Monday 2027-01-04.
        (tokyo(2026, 12, 29, 10, 0), 525, tokyo(2027, 1, 4, 17, 15)),
        (tokyo(2026, 12, 29, 10, 0), 60, tokyo(2027, 1, 4, 9, 30)),
        # Within a day, and across the evening.
        (tokyo(2026, 11, 24, 10, 0), 30, tokyo(2026, 11, 24, 10, 30)),
        (tokyo(2026, 11, 24, 17, 0), 30, tokyo(2026, 11, 25, 8, 45)),
        # Friday evening to Monday; a holiday Monday (2027-01-11 成人の日) is skipped.
        (tokyo(2027, 1, 8, 17, 0), 30, tokyo(2027, 1, 12, 8, 45)),
    ],
)
def test_add_business_minutes(start, minutes, due):
    assert calendar.add_business_minutes(start, minutes) == due.astimezone(UTC)


def test_business_minutes_between_is_the_inverse():
    start = tokyo(2026, 12, 25, 16, 0)
    for minutes in (0, 1, 75, 525, 1000):
        end = calendar.add_business_minutes(start, minutes)
        assert calendar.business_minutes_between(start, end) == minutes


def test_expected_answer_text_for_a_sunday_handoff():
    sunday = tokyo(2026, 11, 22, 14, 0)
    due = calendar.add_business_minutes(sunday, 90)
    # Monday 11-23 is 勤労感謝の日, so the department answers on Tuesday.
    assert calendar.expected_answer_text(due) == (
        "11月24日(火) 10:00 頃までに担当課からご連絡します"
    )


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        calendar.centre_is_open(datetime(2026, 11, 24, 10, 0))
