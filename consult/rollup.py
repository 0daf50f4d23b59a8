"""Rollups: figures per Japanese day and per month, kept in step with the rows they count.

A rollup table has the columns ``grain`` (day or month), ``day`` (the day, or the month's 1st),
its own key columns and its counted columns. A period reads its whole months from the month rows
and its ragged ends from the day rows (``ranges``), so a year adds up a few hundred rows whatever
the number of rows counted. The reports (consult.services.report_rollup: tickets) and the handoff
overview (handoff.rollup: handoffs) are both kept this one way.

Never stale. A package declares a ``Rollup``: the model it counts, the attributes the figures
depend on, and ``counts``, what one row with those values counts under. ``install(app, rollup)``
keeps it per app. Then:

- every flush of the ORM is compared with the rows as the database still holds them, and the
  difference is added to the rollup in the same flush (one UPSERT per table, day and month rows,
  in key order so that two transactions never take the same rows' locks in opposite orders): it
  commits or rolls back with the change, whatever service, command or test made it;
- an UPDATE that goes around the ORM (a conditional UPDATE that claims a row, then refreshes it)
  takes a ``snapshot(obj)`` before and reports ``moved(obj, snapshot)`` when it changed the row;
- anything else that writes the rows around the ORM (a bulk import, a data fix, the benchmark)
  calls the package's rebuild() afterwards (``madoguchi reports rebuild``,
  ``madoguchi handoffs rebuild``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from consult import upsert
from consult.extensions import db
from consult.models import Grain

EXTENSION_KEY = "madoguchi.rollups"

# One row's part of a rollup: (rollup model, (day, *its keys), {counted column: n}).
Contribution = tuple[type, tuple, dict[str, int]]


@dataclass(frozen=True)
class Rollup:
    """A rollup of one model's rows.

    ``columns`` are the model's columns that ``counts`` takes, in its order; ``tracked`` the
    attributes whose change may move a figure (the columns, and a relationship that sets one of
    them, e.g. ``department`` for ``department_id``); ``targets`` the rollup models with their
    key columns (without grain and day)."""

    source: type
    columns: tuple[str, ...]
    counts: Callable[..., Iterable[Contribution]]
    targets: dict[type, tuple[str, ...]]
    tracked: tuple[str, ...] = ()

    def of(self, obj: Any) -> list[Contribution]:
        return list(self.counts(*(getattr(obj, name) for name in self.columns)))


def install(app: Flask, rollup: Rollup) -> None:
    app.extensions.setdefault(EXTENSION_KEY, []).append(rollup)


def _installed() -> list[Rollup]:
    # Every session here is the app's (Flask-SQLAlchemy); outside an app nothing is counted.
    return current_app.extensions.get(EXTENSION_KEY, []) if has_app_context() else []


# --- adding to the rollup ----------------------------------------------------------------------


class Deltas:
    """What to add to the rollup tables: {model: {(day, *keys): Counter of columns}}."""

    def __init__(self) -> None:
        self.tables: dict[type, dict[tuple, Counter]] = defaultdict(lambda: defaultdict(Counter))

    def add(self, contributions: Iterable[Contribution], sign: int = 1) -> None:
        for model, key, counts in contributions:
            row = self.tables[model][key]
            for name, n in counts.items():
                row[name] += sign * n

    def write(self, targets: dict[type, tuple[str, ...]], connection=None) -> None:
        for model in sorted(self.tables, key=lambda m: m.__tablename__):
            add(model, targets[model], self.tables[model], connection=connection)


def add(
    model, keys: tuple[str, ...], deltas: dict[tuple, dict[str, int]], *, connection=None
) -> None:
    """Add ``deltas`` ({(day, *keys): {column: n}}) to the day rows and the month rows."""
    merged: dict[tuple, Counter] = defaultdict(Counter)
    for (day, *rest), counts in deltas.items():
        for grain, start in ((Grain.DAY, day), (Grain.MONTH, day.replace(day=1))):
            row = merged[(grain.value, start, *rest)]
            for name, n in counts.items():
                row[name] += n
    columns = sorted({name for counts in merged.values() for name in counts})
    rows = [
        dict(zip(("grain", "day", *keys), key, strict=True))
        | {name: counts[name] for name in columns}
        for key, counts in sorted(merged.items(), key=lambda item: tuple(map(str, item[0])))
        if any(counts.values())
    ]
    if rows:
        upsert.insert_or_add(
            model.__table__, rows, ("grain", "day", *keys), columns, connection=connection
        )


# --- keeping in step ---------------------------------------------------------------------------

_PENDING = "rollup_before"


def _stored(session: Session, rollup: Rollup, ids: list[int]) -> dict[int, list[Contribution]]:
    """What these rows count under as the database holds them (not the objects' memory of it,
    which an expired attribute would have lost)."""
    table = rollup.source.__table__
    rows = session.connection().execute(
        sa.select(table.c.id, *(table.c[name] for name in rollup.columns)).where(
            table.c.id.in_(sorted(ids))
        )
    )
    return {row_id: list(rollup.counts(*values)) for row_id, *values in rows}


def _before_flush(session: Session, flush_context, instances) -> None:
    pending = []
    rollups = _installed()
    touched = (*session.dirty, *session.deleted) if rollups else ()
    for rollup in rollups:
        changed = {}
        for obj in touched:
            if not isinstance(obj, rollup.source) or obj.id is None:
                continue
            state = sa.inspect(obj)
            if obj in session.deleted or any(
                state.attrs[name].history.has_changes() for name in rollup.tracked
            ):
                changed[obj.id] = obj
        before = _stored(session, rollup, list(changed)) if changed else {}
        pending.append((rollup, [(changed[i], old) for i, old in before.items()]))
    session.info[_PENDING] = pending


def _after_flush(session: Session, flush_context) -> None:
    """Add the difference: the rows as written now, less what they counted before."""
    for rollup, before in session.info.pop(_PENDING, []):
        deltas = Deltas()
        for obj in session.new:
            if isinstance(obj, rollup.source):
                deltas.add(rollup.of(obj))
        for obj, old in before:
            if obj not in session.deleted:
                deltas.add(rollup.of(obj))
            deltas.add(old, sign=-1)
        deltas.write(rollup.targets, connection=session.connection())


# Once per process: the hooks act only on the rollups the current app installed.
sa.event.listen(Session, "before_flush", _before_flush)
sa.event.listen(Session, "after_flush", _after_flush)


def snapshot(obj: Any) -> list[tuple[Rollup, list[Contribution]]]:
    """What ``obj`` counts under now (flushed), before an UPDATE that goes around the ORM."""
    return [(r, r.of(obj)) for r in _installed() if isinstance(obj, r.source)]


def moved(obj: Any, before: list[tuple[Rollup, list[Contribution]]]) -> None:
    """Count the difference an UPDATE around the ORM made to ``obj`` (refreshed since
    ``snapshot``). Call it only when the UPDATE changed the row: a conditional UPDATE that lost
    to another transaction must not count that one's change a second time."""
    for rollup, old in before:
        deltas = Deltas()
        deltas.add(rollup.of(obj))
        deltas.add(old, sign=-1)
        deltas.write(rollup.targets)


# --- reading a period ----------------------------------------------------------------------------


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def ranges(first: date, last: date) -> list[tuple[Grain, date, date]]:
    """The rows that add up to the days first…last exactly (both included): month rows for the
    whole months inside, day rows for the ragged ends."""
    whole = first if first.day == 1 else next_month(first)
    after = next_month(last) if (last + timedelta(days=1)).day == 1 else last.replace(day=1)
    if whole >= after:
        return [(Grain.DAY, first, last)]
    parts = [(Grain.MONTH, whole, after - timedelta(days=1))]
    if first < whole:
        parts.append((Grain.DAY, first, whole - timedelta(days=1)))
    if after <= last:
        parts.append((Grain.DAY, after, last))
    return parts


# --- recomputing --------------------------------------------------------------------------------


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


def months_from_days(model, keys: tuple[str, ...], where: Iterable = ()) -> None:
    """Write the month rows of ``model`` by adding up its day rows (those ``where`` selects)."""
    counted = [c.name for c in model.__table__.columns if c.name not in ("grain", "day", *keys)]
    month = month_of(model.day).label("day")
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
            .where(model.grain == Grain.DAY, *where)
            .group_by(month, *key_columns),
        )
    )
