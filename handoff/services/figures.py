"""The supervisor's overview: per department, handoffs, overdue now, bounces and median minutes
(the whole days from the rollup, handoff.rollup)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Department, Role
from consult.services.actor import Actor
from consult.timeutil import utcnow
from handoff import rollup
from handoff.models import ACTIVE_STATES, Handoff


@dataclass
class DepartmentFigures:
    department: str
    handoffs: int = 0
    overdue_now: int = 0
    bounces: int = 0
    median_accept_minutes: float | None = None
    median_arrive_minutes: float | None = None


def _median(buckets: list[tuple[int, int]]) -> float:
    """The middle value (or the mean of the two middle values) of a (value, count) histogram."""
    buckets.sort()
    total = sum(count for _, count in buckets)
    wanted = {(total - 1) // 2, total // 2}  # zero-based positions of the middle value(s)
    found, seen = [], 0
    for value, count in buckets:
        found += [value for position in wanted if seen <= position < seen + count]
        seen += count
    return round(sum(found) / len(found), 1)


def overdue_now(actor: Actor, limit: int = 100) -> list[Handoff]:
    actor.require(Role.SUPERVISOR, Role.ADMIN)
    return list(
        db.session.scalars(
            sa.select(Handoff)
            .where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < utcnow())
            .order_by(Handoff.due_at)
            .limit(limit)
            .options(sa.orm.selectinload(Handoff.ticket), sa.orm.selectinload(Handoff.department))
        )
    )


def overview(actor: Actor, start: datetime, end: datetime) -> list[DepartmentFigures]:
    """Per department for a period: handoffs, overdue now, bounces, median minutes."""
    actor.require(Role.SUPERVISOR, Role.ADMIN)
    return department_figures(start, end)


def department_figures(start: datetime, end: datetime) -> list[DepartmentFigures]:
    """The figures of the handoffs requested in [start, end): the whole Japanese days from the
    rollup (handoff.rollup; a year is as quick as a month), part-days at the ends from the rows.
    Overdue-now is a live count."""
    return _figures(rollup.tallies(start, end))


def _department_figures_from_rows(start: datetime, end: datetime) -> list[DepartmentFigures]:
    """The same figures counted from the handoffs alone (what the rollup must always equal)."""
    return _figures(rollup.from_rows(start, end))


def _figures(tallies: dict[int, rollup.Tally]) -> list[DepartmentFigures]:
    names = dict(db.session.execute(sa.select(Department.id, Department.name)).all())
    figures: dict[int, DepartmentFigures] = {}
    for department_id, tally in tallies.items():
        if tally.created <= 0:
            continue
        figures[department_id] = DepartmentFigures(
            names[department_id],
            tally.created,
            0,
            tally.declined,
            _median(list((+tally.accepted).items())) if +tally.accepted else None,
            _median(list((+tally.arrived).items())) if +tally.arrived else None,
        )
    overdue = db.session.execute(
        sa.select(Handoff.department_id, sa.func.count(Handoff.id))
        .where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < utcnow())
        .group_by(Handoff.department_id)
    )
    for department_id, count in overdue:
        figures.setdefault(
            department_id, DepartmentFigures(names[department_id])
        ).overdue_now = count
    return sorted(figures.values(), key=lambda f: (-f.overdue_now, -f.handoffs, f.department))
