"""`madoguchi handoffs …`: upkeep of the handoff figures."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from consult.extensions import db
from consult.services import audit
from consult.services.actor import Actor


@click.group("handoffs", help="引継ぎ")
def handoffs_group() -> None:
    pass


@handoffs_group.command(
    "rebuild", help="引継ぎ状況の日別集計を引継ぎデータから作り直します（データ修正の後など）。"
)
@with_appcontext
def rebuild_command():
    """After handoffs were written around the services (SQL, a bulk import): the overview's
    rollup is recomputed from the rows, in one transaction."""
    from handoff import rollup

    began = time.perf_counter()
    counted = rollup.rebuild()
    audit.record(Actor.command_line(), "rebuild", "handoff_daily", None)
    db.session.commit()
    click.echo(
        f"引継ぎ状況の日別集計を作り直しました（引継ぎ{counted:,}件、"
        f"{time.perf_counter() - began:.1f}秒）。"
    )
