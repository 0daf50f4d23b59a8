"""Gapless numbers (ticket numbers per fiscal year, reception numbers per day).

The counter row is created with INSERT … ON CONFLICT DO NOTHING and advanced with a single
UPDATE … RETURNING, in the caller's transaction: PostgreSQL serialises concurrent updates of the
row, SQLite serialises writers, and a rollback gives the number back, so there are no gaps.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from consult.extensions import db
from consult.models import NumberSequence


def next_value(name: str, key: str) -> int:
    table = NumberSequence.__table__
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    db.session.execute(
        insert.values(name=name, key=key, last_value=0).on_conflict_do_nothing(
            index_elements=["name", "key"]
        )
    )
    return db.session.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.key == key)
        .values(last_value=table.c.last_value + 1)
        .returning(table.c.last_value)
    ).scalar_one()
