"""Insert-or-ignore and insert-or-add on both databases, written once.

PostgreSQL and SQLite both have `INSERT … ON CONFLICT`; SQLAlchemy exposes it per dialect. The
statement is built for the dialect of the connection that will run it. Rows are counted with
RETURNING, never with rowcount: psycopg reports -1 for an INSERT … ON CONFLICT run as
executemany through SQLAlchemy's insertmanyvalues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from consult.extensions import db


def insert(table: sa.Table, bind=None):
    """An INSERT with `on_conflict_*` for the dialect of `bind` (the session's by default)."""
    dialect = (bind if bind is not None else db.session.get_bind()).dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_ignore(
    table: sa.Table,
    rows: Mapping | Sequence[Mapping],
    conflict: Iterable[str],
    *,
    returning: sa.ColumnElement | None = None,
    connection=None,
):
    """INSERT … ON CONFLICT DO NOTHING; with `returning`, the values of the rows really added."""
    statement = insert(table, connection).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is not None:
        statement = statement.returning(returning)
    executor = connection if connection is not None else db.session
    if isinstance(rows, Mapping):
        return executor.execute(statement.values(**rows))
    return executor.execute(statement, list(rows))


def insert_or_add(
    table: sa.Table,
    rows: Sequence[Mapping],
    keys: Iterable[str],
    counted: Iterable[str],
    *,
    connection=None,
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET column = column + new value, for counters.

    The rollups' one way of adding to a day's or a month's figures in the same transaction as
    the change, whatever other transactions add at the same time.
    """
    if not rows:
        return
    statement = insert(table, connection).values(list(rows))
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in counted},
    )
    (connection if connection is not None else db.session).execute(statement)
