"""The migrations build exactly the schema the models describe, both ways, on both databases."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade

from consult.extensions import db
from consult.services.search import ENGINE_TABLES
from tests import pg
from tests.conftest import BACKENDS, make_app

# Every migration up and down on a new database: seconds (make test-fast leaves it out).
pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def empty_url(request, pg_server, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        name = f"madoguchi_migrations_{os.getpid()}"
        yield pg.recreate_database(pg_server, name)
        pg.drop_database(pg_server, name)


def _engine_owned(obj, name, type_, reflected, compare_to) -> bool:
    """Leave out what a database engine owns beside the models (SQLite FTS5's tables), and the
    indexes a model makes on another database only (`Index(...).ddl_if(dialect=...)`)."""
    if type_ == "table" and name in ENGINE_TABLES:
        return False
    only = getattr(obj, "_ddl_if", None) if not reflected else None
    return only is None or only.dialect in (None, db.engine.dialect.name)


def _diff() -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _engine_owned,
            },
        )
        return compare_metadata(context, db.metadata)


def _tables() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"} - ENGINE_TABLES


def _script() -> ScriptDirectory:
    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config)


def test_upgrade_matches_models_and_round_trips(empty_url, tmp_path):
    app = make_app(empty_url, tmp_path)
    with app.app_context():
        assert _tables() == set()
        upgrade()
        assert _tables() == set(db.metadata.tables)
        assert _diff() == []

        downgrade(revision="base")
        db.engine.dispose()
        assert _tables() == set()

        upgrade()
        assert _tables() == set(db.metadata.tables)
        assert _diff() == []
        db.engine.dispose()


def test_exactly_one_head(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'heads.db'}", tmp_path)
    with app.app_context():
        heads = _script().get_heads()
        db.engine.dispose()
    assert len(heads) == 1, heads


def test_the_handoff_rollup_is_filled_from_the_handoffs_before_it(empty_url, tmp_path, monkeypatch):
    """0010_handoff_daily counts the handoffs already there, as the flush hook would have."""
    from handoff import rollup
    from handoff.models import HandoffDaily
    from tests.handoff.test_rollup import DAYS, Clock, build_centre, build_handoffs, tokyo

    app = make_app(empty_url, tmp_path)
    with app.app_context():
        upgrade()
        build_handoffs(build_centre(), Clock(monkeypatch, tokyo(2026, 10, 30, 9, 0)), DAYS)
        expected = rollup.stored()
        assert expected == rollup.recount() and expected
        db.session.remove()

        downgrade(revision="0009_line_intake")
        assert "handoff_daily" not in _tables()
        upgrade()
        assert rollup.stored() == expected
        assert db.session.query(HandoffDaily).count() > 0
        db.session.remove()
        db.engine.dispose()
