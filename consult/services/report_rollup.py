"""The reports' rollup, derived from the tickets: per Japanese day (of created_at) and per month,
tickets and ended sessions by channel (report_daily), tickets by category
(report_category_daily), and ended sessions by channel and minutes (report_session_daily).
A period reads whole months from the month rows and its ragged ends from the day rows, so a
fiscal year is a few hundred rows to add up whatever the number of tickets.

Never stale: the ticket services send a signal for every change that moves a figure (created,
category changed, session ended) and the handlers here add to the rollup in the same session, so
it commits or rolls back with the change itself. Each change is one UPSERT per table
(`INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n`, on SQLite ≥ 3.24 and PostgreSQL
alike) writing the day row and the month row, in key order, so that two transactions never take
the same rows' locks in opposite orders.

Anything that writes tickets around the services (a bulk import, the benchmark, a data fix) must
call rebuild() afterwards: `madoguchi reports rebuild [--from DATE --to DATE]`.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from consult import signals, upsert
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


# --- keeping in step ---------------------------------------------------------------------------

DAILY_KEY = ("grain", "day", "channel")
CATEGORY_KEY = ("grain", "day", "category_key")
SESSION_KEY = ("grain", "day", "channel", "minutes")


def _upsert(model, keys: tuple[str, ...], deltas: dict[tuple, dict[str, int]]) -> None:
    """Add `deltas` ({key without grain: {column: n}}) to the day rows and the month rows."""
    merged: dict[tuple, dict[str, int]] = {}
    for key, counts in deltas.items():
        day, rest = key[0], key[1:]
        for grain, start in ((Grain.DAY, day), (Grain.MONTH, day.replace(day=1))):
            row = merged.setdefault((grain.value, start, *rest), dict.fromkeys(counts, 0))
            for name, n in counts.items():
                row[name] += n
    rows = [
        dict(zip(keys, key, strict=True)) | counts
        for key, counts in sorted(merged.items(), key=lambda item: _sortable(item[0]))
        if any(counts.values())
    ]
    if not rows:
        return
    counted = [name for name in rows[0] if name not in keys]
    upsert.insert_or_add(model.__table__, rows, keys, counted)


def _sortable(key: tuple) -> tuple:
    return tuple(str(part) for part in key)


def _day(ticket: Ticket) -> date:
    return tokyo_today(ticket.created_at)


def _session_counts(ticket: Ticket, sign: int) -> dict[str, int]:
    return {"sessions": sign, "session_seconds": sign * (ticket.duration_seconds or 0)}


def on_created(ticket: Ticket, **_) -> None:
    day, channel = _day(ticket), Channel(ticket.channel)
    counts = {"tickets": 1, "sessions": 0, "session_seconds": 0}
    if ticket.duration_seconds is not None:
        counts |= _session_counts(ticket, +1)
    _upsert(ReportDaily, DAILY_KEY, {(day, channel): counts})
    _upsert(
        ReportCategoryDaily,
        CATEGORY_KEY,
        {(day, category_key(ticket.category_id)): {"tickets": 1}},
    )
    if ticket.duration_seconds is not None:
        _add_session(ticket)


def on_category_changed(ticket: Ticket, *, old: int | None, new: int | None, **_) -> None:
    if category_key(old) == category_key(new):
        return
    day = _day(ticket)
    deltas = {(day, category_key(old)): {"tickets": -1}, (day, category_key(new)): {"tickets": 1}}
    _upsert(ReportCategoryDaily, CATEGORY_KEY, deltas)


def on_session_ended(ticket: Ticket, **_) -> None:
    """A session's duration is set once (end_session); it counts on the ticket's day."""
    if ticket.duration_seconds is None:
        return
    counts = {"tickets": 0} | _session_counts(ticket, +1)
    _upsert(ReportDaily, DAILY_KEY, {(_day(ticket), Channel(ticket.channel)): counts})
    _add_session(ticket)


def _add_session(ticket: Ticket) -> None:
    key = (_day(ticket), Channel(ticket.channel), session_minutes(ticket.duration_seconds))
    _upsert(ReportSessionDaily, SESSION_KEY, {key: {"sessions": 1}})


def register() -> None:
    """Connect to the ticket services' signals (create_app calls this once per app)."""
    signals.ticket_created.connect(on_created)
    signals.ticket_category_changed.connect(on_category_changed)
    signals.ticket_session_ended.connect(on_session_ended)


# --- reading a period ----------------------------------------------------------------------------


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def in_period(model, start: date, end: date):
    """The rows that add up to the days start…end exactly: month rows for the whole months
    inside, day rows for the ragged ends."""
    first = start if start.day == 1 else _next_month(start)
    last = _next_month(end) if (end + timedelta(days=1)).day == 1 else end.replace(day=1)
    # The whole months are first … last (exclusive).
    if first >= last:
        return sa.and_(model.grain == Grain.DAY, model.day >= start, model.day <= end)
    return sa.or_(
        sa.and_(model.grain == Grain.MONTH, model.day >= first, model.day < last),
        sa.and_(model.grain == Grain.DAY, model.day >= start, model.day < first),
        sa.and_(model.grain == Grain.DAY, model.day >= last, model.day <= end),
    )


# --- recomputing from the tickets --------------------------------------------------------------


def local_day(column):
    """The Japanese calendar day of a stored UTC timestamp, in SQL (both databases)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Tokyo", column), sa.Date)
    return sa.func.date(column, "+9 hours")


def month_of(column):
    """The first day of that timestamp's month, in SQL (both databases)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.date_trunc("month", sa.cast(column, sa.DateTime)), sa.Date)
    return sa.func.date(column, "start of month")


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), TOKYO)


MODELS = {
    ReportDaily: ("channel",),
    ReportCategoryDaily: ("category_key",),
    ReportSessionDaily: ("channel", "minutes"),
}


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

    day = local_day(Ticket.created_at).label("day")
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
        counted = [c.name for c in model.__table__.columns if c.name not in ("grain", "day", *keys)]
        month = month_of(model.day).label("day")
        where = [model.grain == Grain.DAY]
        if month_start:
            where.append(model.day >= month_start)
        if month_end:
            where.append(model.day < _next_month(month_end))
        key_columns = [getattr(model, k) for k in keys]
        db.session.execute(
            sa.insert(model).from_select(
                ["grain", "day", *keys, *counted],
                sa.select(
                    sa.literal(Grain.MONTH.value).label("grain"),
                    month,
                    *key_columns,
                    *[sa.func.sum(getattr(model, c)) for c in counted],
                )
                .where(*where)
                .group_by(month, *key_columns),
            )
        )
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
