"""Time: stored in UTC, shown in Asia/Tokyo; the Japanese fiscal year runs April to March."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

TOKYO = ZoneInfo("Asia/Tokyo")


# The dates the system deals in. Outside them Python's datetime cannot even move a time between
# Tokyo and UTC (0001-01-01 00:00 in Tokyo is before datetime.min in UTC; 9999-12-31 plus a slot
# overflows), so every date a person types is checked against this range first.
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
OUT_OF_RANGE = "2000年1月1日から2100年12月31日までの日付で入力してください。"


def in_range(value: date | datetime | None) -> bool:
    """True for a date (or a date-time, judged by its own calendar date) in EARLIEST…LATEST."""
    if value is None:
        return False
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST <= day <= LATEST


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_tokyo(moment: datetime) -> datetime:
    return moment.astimezone(TOKYO)


def tokyo_today(moment: datetime | None = None) -> date:
    return to_tokyo(moment or utcnow()).date()


def fiscal_year(day: date) -> int:
    """2026年度 is 2026-04-01 … 2027-03-31."""
    return day.year if day.month >= 4 else day.year - 1


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC on both databases (SQLite keeps no offset, so we restore it)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


WEEKDAYS_JA = "月火水木金土日"


def format_tokyo(moment: datetime | None, with_weekday: bool = False) -> str:
    """'2026/11/22 14:05' or '2026/11/22(日) 14:05', as Japanese offices write it."""
    if moment is None:
        return ""
    local = to_tokyo(moment)
    if with_weekday:
        return (
            local.strftime("%Y/%m/%d")
            + f"({WEEKDAYS_JA[local.weekday()]}) "
            + local.strftime("%H:%M")
        )
    return local.strftime("%Y/%m/%d %H:%M")


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}時間{minutes}分"
    if minutes:
        return f"{minutes}分{sec:02d}秒" if sec else f"{minutes}分"
    return f"{sec}秒"
