"""Gapless numbers (ticket numbers per fiscal year, reception numbers per day).

The counter row is advanced with a single UPDATE … RETURNING (created first with INSERT … ON
CONFLICT DO NOTHING when there is none yet), in the caller's transaction: PostgreSQL serialises
concurrent updates of the row, SQLite serialises writers, and a rollback gives the number back,
so there are no gaps.
"""

from __future__ import annotations

import sqlalchemy as sa

from consult import upsert
from consult.extensions import db
from consult.models import NumberSequence


def next_value(name: str, key: str) -> int:
    return _advance(name, key, 1)


def _advance(name: str, key: str, count: int) -> int:
    """Add `count` to the counter and answer the new last value (the last number taken)."""
    table = NumberSequence.__table__
    advance = (
        sa.update(table)
        .where(table.c.name == name, table.c.key == key)
        .values(last_value=table.c.last_value + count)
        .returning(table.c.last_value)
    )
    # The row exists for all but the first number of a year or day: one statement, not two.
    value = db.session.execute(advance).scalar_one_or_none()
    if value is not None:
        return value
    upsert.insert_ignore(table, {"name": name, "key": key, "last_value": 0}, ["name", "key"])
    return db.session.execute(advance).scalar_one()


class Reservation:
    """Numbers taken ahead, `size` at a time, inside one transaction that creates many rows.

    One UPDATE instead of one per number. The counter row stays locked (PostgreSQL row lock,
    SQLite write lock) from the first UPDATE until the transaction ends, so nobody else can take
    a number in between and `release` can give the unused ones back: still no gaps. Only for a
    transaction that is committed or rolled back as a whole (no savepoint rollbacks in between).
    """

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, max(1, size)
        self.pools: dict[str, list[int]] = {}  # key: [next, last]

    def take(self, key: str) -> int:
        pool = self.pools.get(key)
        if pool is None or pool[0] > pool[1]:
            last = _advance(self.name, key, self.size)
            pool = self.pools[key] = [last - self.size + 1, last]
        value = pool[0]
        pool[0] += 1
        return value

    def release(self) -> None:
        """Give back what was not used; call before the commit."""
        table = NumberSequence.__table__
        for key, (following, last) in self.pools.items():
            unused = last - following + 1
            if unused <= 0:
                continue
            back = db.session.execute(
                sa.update(table)
                .where(table.c.name == self.name, table.c.key == key, table.c.last_value == last)
                .values(last_value=table.c.last_value - unused)
                .returning(table.c.last_value)
            ).scalar_one_or_none()
            if back is None:  # cannot happen while the row is locked; refuse rather than gap
                raise RuntimeError(f"number sequence {self.name}/{key} moved during a reservation")
        self.pools = {}
