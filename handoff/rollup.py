"""The handoff overview's rollup (handoff_daily), derived from the handoffs: per Japanese day of
the request (created_at) and per month, by department, the handoffs created and declined
(bounces), and the accepted and arrived ones by whole minutes from the request. A period reads
its whole months from the month rows and its ragged ends from the day rows, as the ticket reports
do (consult.services.report_rollup): a year adds up twelve months of rows (one per department,
measure and minute) instead of computing minutes from two timestamps of every handoff.

Never stale: kept in step by the kernel's one rollup mechanism (consult.rollup) rather than a
call in each service step (create, accept, on_the_way, arrive, finish, decline, cancel, the
external body's answers): every Handoff the session writes is compared with its row as the
database still holds it, and the difference is added in the same flush. Only SQL that goes around
the ORM (`sa.update(Handoff)`, a bulk insert) must leave created_at, department_id, state,
accepted_at and arrived_at alone, or call rebuild() afterwards (`madoguchi handoffs rebuild`;
bench/handoff.py calls it after its bulk insert).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from consult import rollup
from consult.extensions import db
from consult.models import Grain
from consult.timeutil import TOKYO, tokyo_today
from handoff.models import Handoff, HandoffDaily, HandoffState, Measure

KEYS = ("department_id", "measure", "minutes")
KEY = ("grain", "day", *KEYS)
# What the rollup reads of a handoff; a change to anything else never moves a figure.
TRACKED = ("created_at", "department_id", "department", "state", "accepted_at", "arrived_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- minutes from the request --------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, to the nearest (SQLite's julianday() keeps no more)."""
    return ((moment - _EPOCH) // timedelta(microseconds=1) + 500) // 1000


def minutes_between(requested: datetime, then: datetime) -> int:
    """Whole minutes, to the nearest (half a minute counts up), never below 0; the same on both
    databases (minutes_sql) and here, to the millisecond, so the rollup and the rows agree."""
    return max(0, (_ms(then) - _ms(requested) + 30_000) // 60_000)


def minutes_sql(column, created=Handoff.created_at):
    """minutes_between() in SQL, for the rows themselves (ragged ends, rebuild, the migration)."""
    if db.session.get_bind().dialect.name == "postgresql":
        ms = sa.func.round(sa.extract("epoch", column) * 1000) - sa.func.round(
            sa.extract("epoch", created) * 1000
        )
        return sa.cast(sa.func.greatest(0, sa.func.floor((ms + 30_000) / 60_000)), sa.Integer)
    ms = sa.cast(
        sa.func.round((sa.func.julianday(column) - sa.func.julianday(created)) * 86_400_000.0),
        sa.Integer,
    )
    return sa.func.max(0, (ms + 30_000) // 60_000)  # SQLite's integer division: 0 or more


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), TOKYO)


# --- keeping in step -----------------------------------------------------------------------------


def _keys(created_at, department_id, state, accepted_at, arrived_at) -> list[tuple]:
    """The rollup keys (without grain) that one handoff counts under."""
    if created_at is None or department_id is None:
        return []
    day = tokyo_today(created_at)
    keys = [(day, department_id, Measure.CREATED, 0)]
    if state == HandoffState.DECLINED:
        keys.append((day, department_id, Measure.DECLINED, 0))
    if accepted_at is not None:
        keys.append(
            (day, department_id, Measure.ACCEPTED, minutes_between(created_at, accepted_at))
        )
    if arrived_at is not None:
        keys.append((day, department_id, Measure.ARRIVED, minutes_between(created_at, arrived_at)))
    return keys


def counts(created_at, department_id, state, accepted_at, arrived_at) -> list:
    """What one handoff counts under (consult.rollup's contributions)."""
    return [
        (HandoffDaily, key, {"handoffs": 1})
        for key in _keys(created_at, department_id, state, accepted_at, arrived_at)
    ]


HANDOFFS = rollup.Rollup(
    source=Handoff,
    columns=("created_at", "department_id", "state", "accepted_at", "arrived_at"),
    counts=counts,
    targets={HandoffDaily: KEYS},
    tracked=TRACKED,
)


def register(app) -> None:
    """Keep the overview's rollup in step with the app's handoffs (handoff.register calls it)."""
    rollup.install(app, HANDOFFS)


# --- reading a period ----------------------------------------------------------------------------


@dataclass
class Tally:
    """One department's figures for a period, before the medians are taken."""

    created: int = 0
    declined: int = 0
    accepted: Counter = field(default_factory=Counter)  # minutes → handoffs
    arrived: Counter = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.created += other.created
        self.declined += other.declined
        self.accepted.update(other.accepted)
        self.arrived.update(other.arrived)


def _inline(day: date):
    """A date written into the SQL text. As a parameter, psycopg prepares the statement after
    five runs and PostgreSQL then plans the day ranges generically: a year's overview went from
    60 to 95 ms from the sixth request on (bench data)."""
    return sa.literal(day, sa.Date, literal_execute=True)


def from_rollup(first: date, last: date) -> dict[int, Tally]:
    """The whole Japanese days first…last, from the rollup: one UNION ALL of index range scans
    (an OR of the ranges makes SQLite scan the whole table), grouped once."""
    parts = [
        sa.select(
            HandoffDaily.department_id,
            HandoffDaily.measure,
            HandoffDaily.minutes,
            HandoffDaily.handoffs,
        ).where(
            HandoffDaily.grain == grain,
            HandoffDaily.day >= _inline(start),
            HandoffDaily.day <= _inline(end),
        )
        for grain, start, end in rollup.ranges(first, last)
    ]
    rows = sa.union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    query = sa.select(
        rows.c.department_id, rows.c.measure, rows.c.minutes, sa.func.sum(rows.c.handoffs)
    ).group_by(rows.c.department_id, rows.c.measure, rows.c.minutes)
    tallies: dict[int, Tally] = defaultdict(Tally)
    for department_id, measure, minutes, n in _stream(query):
        tally, n = tallies[department_id], int(n)
        if measure == Measure.CREATED:
            tally.created += n
        elif measure == Measure.DECLINED:
            tally.declined += n
        elif measure == Measure.ACCEPTED:
            tally.accepted[minutes] += n
        else:
            tally.arrived[minutes] += n
    return {department_id: t for department_id, t in tallies.items() if t.created}


def _stream(query):
    """Rows one at a time from the cursor. The session would first build all of a year's
    thousands of histogram rows as objects, which then outlive two garbage collections, and
    every few requests Python's full collection added some 100 ms (measured on bench data)."""
    return db.session.connection().execute(query)


def from_rows(start: datetime, end: datetime) -> dict[int, Tally]:
    """The same, counted from the handoffs requested in [start, end): any moments, any length."""
    in_period = sa.and_(Handoff.created_at >= start, Handoff.created_at < end)
    tallies: dict[int, Tally] = defaultdict(Tally)
    counts = _stream(
        sa.select(
            Handoff.department_id,
            sa.func.count(Handoff.id),
            sa.func.sum(sa.case((Handoff.state == HandoffState.DECLINED, 1), else_=0)),
        )
        .where(in_period)
        .group_by(Handoff.department_id)
    )
    for department_id, total, declined in counts:
        tallies[department_id].created = total
        tallies[department_id].declined = int(declined or 0)
    for column, name in ((Handoff.accepted_at, "accepted"), (Handoff.arrived_at, "arrived")):
        minutes = minutes_sql(column).label("minutes")
        rows = _stream(
            sa.select(Handoff.department_id, minutes, sa.func.count())
            .where(in_period, column.is_not(None))
            .group_by(Handoff.department_id, minutes)
        )
        for department_id, value, n in rows:
            getattr(tallies[department_id], name)[value] += n
    return dict(tallies)


def tallies(start: datetime, end: datetime) -> dict[int, Tally]:
    """Handoffs requested in [start, end): the whole Japanese days inside from the rollup, and any
    part-days at either end (a caller's arbitrary moments) from the rows."""
    first = tokyo_today(start)
    if midnight(first) < start:
        first += timedelta(days=1)
    after = tokyo_today(end)  # the day after the last whole day
    if first >= after:
        return from_rows(start, end)
    result = from_rollup(first, after - timedelta(days=1))
    for ragged in ((start, midnight(first)), (midnight(after), end)):
        if ragged[0] < ragged[1]:
            for department_id, tally in from_rows(*ragged).items():
                result.setdefault(department_id, Tally()).merge(tally)
    return result


# --- recomputing from the handoffs ---------------------------------------------------------------


def rebuild() -> int:
    """Recompute the whole rollup from the handoffs (after a bulk import or a data fix), in the
    caller's transaction: day rows from the handoffs, month rows from the day rows. Returns the
    handoffs counted. The migration 0010_handoff_daily does the same in plain SQL."""
    db.session.flush()
    db.session.execute(sa.delete(HandoffDaily))
    day = rollup.local_day(Handoff.created_at).label("day")
    grain = sa.literal(Grain.DAY.value).label("grain")
    columns = ["grain", "day", "department_id", "measure", "minutes", "handoffs"]
    measures = (
        (Measure.CREATED, sa.literal(0), None),
        (Measure.DECLINED, sa.literal(0), Handoff.state == HandoffState.DECLINED),
        (Measure.ACCEPTED, minutes_sql(Handoff.accepted_at), Handoff.accepted_at.is_not(None)),
        (Measure.ARRIVED, minutes_sql(Handoff.arrived_at), Handoff.arrived_at.is_not(None)),
    )
    for measure, minutes, where in measures:
        minutes = minutes.label("minutes")
        query = sa.select(
            grain,
            day,
            Handoff.department_id,
            sa.literal(measure.value).label("measure"),
            minutes,
            sa.func.count(),
        ).group_by(day, Handoff.department_id, minutes)
        if where is not None:
            query = query.where(where)
        db.session.execute(sa.insert(HandoffDaily).from_select(columns, query))
    rollup.months_from_days(HandoffDaily, KEYS)
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(HandoffDaily.handoffs), 0)).where(
                HandoffDaily.grain == Grain.DAY, HandoffDaily.measure == Measure.CREATED
            )
        )
    )


def recount() -> dict[tuple, int]:
    """What the rollup should hold, counted from the handoffs in Python (for checks and tests),
    in stored()'s shape: {(grain, day, department_id, measure, minutes): n}."""
    expected: Counter = Counter()
    table = Handoff.__table__
    query = sa.select(
        table.c.created_at,
        table.c.department_id,
        table.c.state,
        table.c.accepted_at,
        table.c.arrived_at,
    )
    for row in db.session.execute(query):
        for day, *rest in _keys(*row):
            expected[(Grain.DAY.value, day, *rest)] += 1
            expected[(Grain.MONTH.value, day.replace(day=1), *rest)] += 1
    return {key: n for key, n in expected.items() if n}


def stored() -> dict[tuple, int]:
    """The rollup as it is, zero rows left out."""
    rows = db.session.execute(
        sa.select(*(HandoffDaily.__table__.c[k] for k in KEY), HandoffDaily.handoffs)
    )
    return {
        (Grain(grain).value, day, department_id, Measure(measure), minutes): n
        for grain, day, department_id, measure, minutes, n in rows
        if n
    }
