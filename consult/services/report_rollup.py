"""The reports' rollup, derived from the tickets: per Japanese day (of created_at) and per month,
tickets and ended sessions by channel (report_daily), tickets by category
(report_category_daily), and ended sessions by channel and minutes (report_session_daily).
A period reads whole months from the month rows and its ragged ends from the day rows, so a
fiscal year is a few hundred rows to add up whatever the number of tickets.

Never stale: kept in step by the kernel's one rollup mechanism (consult.rollup), which counts
every ticket the session writes (created, category changed) in the same flush, and the session's
end, a conditional UPDATE, through tickets._update_conditional; so the rollup commits or rolls
back with the change itself.

Anything that writes tickets around the services (a bulk import, the benchmark, a data fix) must
call rebuild() afterwards: `madoguchi reports rebuild [--from DATE --to DATE]`.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from consult import rollup
from consult.extensions import db
from consult.models import (
    SESSION_MINUTES_CAP,
    Channel,
    Grain,
    ReportCategoryDaily,
    ReportDaily,
    ReportSessionDaily,
    Ticket,
)
from consult.timeutil import TOKYO, tokyo_today

NO_CATEGORY = 0


def category_key(category_id: int | None) -> int:
    return NO_CATEGORY if category_id is None else category_id


def session_minutes(duration_seconds: int) -> int:
    """Whole minutes, capped: 'at least m minutes' stays exact for every m up to the cap."""
    if duration_seconds < 60:
        return 0
    return min(duration_seconds // 60, SESSION_MINUTES_CAP)


# --- keeping in step (consult.rollup) -------------------------------------------------------------

DAILY_KEYS = ("channel",)
CATEGORY_KEYS = ("category_key",)
SESSION_KEYS = ("channel", "minutes")


def counts(
    created_at: datetime, channel: str, category_id: int | None, duration_seconds: int | None
) -> list[rollup.Contribution]:
    """What one ticket counts under: its day and channel (with its session once it ended), its
    category, and its session's minutes."""
    day, channel = tokyo_today(created_at), Channel(channel)
    has_session = duration_seconds is not None
    session = {"sessions": int(has_session), "session_seconds": duration_seconds or 0}
    parts = [
        (ReportDaily, (day, channel), {"tickets": 1} | session),
        (ReportCategoryDaily, (day, category_key(category_id)), {"tickets": 1}),
    ]
    if has_session:
        key = (day, channel, session_minutes(duration_seconds))
        parts.append((ReportSessionDaily, key, {"sessions": 1}))
    return parts


MODELS = {
    ReportDaily: DAILY_KEYS,
    ReportCategoryDaily: CATEGORY_KEYS,
    ReportSessionDaily: SESSION_KEYS,
}

TICKETS = rollup.Rollup(
    source=Ticket,
    columns=("created_at", "channel", "category_id", "duration_seconds"),
    counts=counts,
    targets=MODELS,
    tracked=("created_at", "channel", "category_id", "category", "duration_seconds"),
)


def register(app) -> None:
    """Keep the reports' rollup in step with the app's tickets (create_app calls this)."""
    rollup.install(app, TICKETS)


# --- reading a period ----------------------------------------------------------------------------


def in_period(model, start: date, end: date):
    """The rows that add up to the days start…end exactly: month rows for the whole months
    inside, day rows for the ragged ends."""
    return sa.or_(
        *(
            sa.and_(model.grain == grain, model.day >= first, model.day <= last)
            for grain, first, last in rollup.ranges(start, end)
        )
    )


# --- recomputing from the tickets --------------------------------------------------------------


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), TOKYO)


def rebuild(start: date | None = None, end: date | None = None) -> tuple[int, int]:
    """Recompute the rollup from the tickets for the Japanese days start…end (both included;
    either may be open), and the months that touch them. Set-based: per table, a delete and an
    INSERT … SELECT for the days, then the same for the months from the day rows; all in the
    caller's transaction. Returns (tickets counted, day rows written)."""
    where_ticket = []
    if start is not None:
        where_ticket.append(Ticket.created_at >= _utc(start))
    if end is not None:
        where_ticket.append(Ticket.created_at < _utc(end + timedelta(days=1)))
    month_start = start.replace(day=1) if start else None
    month_end = end.replace(day=1) if end else None

    def days(model):
        return [
            model.grain == Grain.DAY,
            *([model.day >= start] if start else []),
            *([model.day <= end] if end else []),
        ]

    def months(model):
        return [
            model.grain == Grain.MONTH,
            *([model.day >= month_start] if month_start else []),
            *([model.day <= month_end] if month_end else []),
        ]

    for model in MODELS:
        db.session.execute(sa.delete(model).where(*days(model)))
        db.session.execute(sa.delete(model).where(*months(model)))

    day = rollup.local_day(Ticket.created_at).label("day")
    grain = sa.literal(Grain.DAY.value).label("grain")
    db.session.execute(
        sa.insert(ReportDaily).from_select(
            ["grain", "day", "channel", "tickets", "sessions", "session_seconds"],
            sa.select(
                grain,
                day,
                Ticket.channel,
                sa.func.count(),
                sa.func.count(Ticket.duration_seconds),
                sa.func.coalesce(sa.func.sum(Ticket.duration_seconds), 0),
            )
            .where(*where_ticket)
            .group_by(day, Ticket.channel),
        )
    )
    category = sa.func.coalesce(Ticket.category_id, NO_CATEGORY).label("category_key")
    db.session.execute(
        sa.insert(ReportCategoryDaily).from_select(
            ["grain", "day", "category_key", "tickets"],
            sa.select(grain, day, category, sa.func.count())
            .where(*where_ticket)
            .group_by(day, category),
        )
    )
    minutes = sa.case(
        (Ticket.duration_seconds >= SESSION_MINUTES_CAP * 60, SESSION_MINUTES_CAP),
        (Ticket.duration_seconds < 60, 0),
        else_=Ticket.duration_seconds // 60,
    ).label("minutes")
    db.session.execute(
        sa.insert(ReportSessionDaily).from_select(
            ["grain", "day", "channel", "minutes", "sessions"],
            sa.select(grain, day, Ticket.channel, minutes, sa.func.count())
            .where(*where_ticket, Ticket.duration_seconds.is_not(None))
            .group_by(day, Ticket.channel, minutes),
        )
    )
    # The months, from the day rows (whole months: the days outside the range are kept).
    for model, keys in MODELS.items():
        where = []
        if month_start:
            where.append(model.day >= month_start)
        if month_end:
            where.append(model.day < rollup.next_month(month_end))
        rollup.months_from_days(model, keys, where)
    counted_tickets = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(ReportDaily.tickets), 0)).where(*days(ReportDaily))
    )
    rows = db.session.scalar(
        sa.select(sa.func.count()).select_from(ReportDaily).where(*days(ReportDaily))
    )
    return int(counted_tickets), int(rows)


def recount() -> dict[str, dict]:
    """What the rollup should hold, counted from the tickets in Python (for checks and tests),
    in stored()'s shape: {table: {(grain, day, *key): counts}}, zero rows left out."""
    expected: dict[str, dict] = {name: defaultdict(lambda: None) for name in _NAMES.values()}

    def add(table: str, key: tuple, counts: tuple) -> None:
        for grain, start in (("day", key[0]), ("month", key[0].replace(day=1))):
            full = (grain, start, *key[1:])
            old = expected[table][full]
            expected[table][full] = (
                counts if old is None else tuple(a + b for a, b in zip(old, counts, strict=True))
            )

    query = sa.select(
        Ticket.created_at, Ticket.channel, Ticket.category_id, Ticket.duration_seconds
    )
    for created_at, channel, category_id, duration in db.session.execute(query):
        day, channel = tokyo_today(created_at), Channel(channel).value
        has_session = duration is not None
        add("daily", (day, channel), (1, int(has_session), duration or 0))
        add("category", (day, category_key(category_id)), (1,))
        if has_session:
            add("sessions", (day, channel, session_minutes(duration)), (1,))
    return {table: dict(rows) for table, rows in expected.items()}


_NAMES = {ReportDaily: "daily", ReportCategoryDaily: "category", ReportSessionDaily: "sessions"}


def stored() -> dict[str, dict]:
    """The rollup as it is (zero rows left out)."""
    result: dict[str, dict] = {}
    for model, keys in MODELS.items():
        rows = {}
        counted = [c for c in model.__table__.columns if c.name not in ("grain", "day", *keys)]
        key_columns = [getattr(model, k) for k in keys]
        for row in db.session.execute(sa.select(model.grain, model.day, *key_columns, *counted)):
            counts = tuple(int(v) for v in row[2 + len(keys) :])
            if any(counts):
                key = tuple(
                    k.value if isinstance(k, enum.Enum) else k for k in row[: 2 + len(keys)]
                )
                rows[key] = counts
        result[_NAMES[model]] = rows
    return result
