"""0005_safety widens the timeline's kinds; down again, its 'safety' entries go and the
append-only triggers stay, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from consult.extensions import db
from consult.models import Channel
from consult.services import safety, tickets
from consult.services.actor import SYSTEM, Actor
from tests.conftest import make_app
from tests.test_migrations import empty_url  # noqa: F401 (the fixture)

# Migrations down and up on a new database: seconds (make test-fast leaves it out).
pytestmark = pytest.mark.slow


def test_downgrade_with_safety_entries_keeps_the_timeline_append_only(empty_url, tmp_path):  # noqa: F811
    from consult.services import staff as staff_service

    app = make_app(empty_url, tmp_path)
    with app.app_context():
        upgrade()
        staff = staff_service.create_staff(
            None, login="c1", full_name="窓口 一郎", display_name="まどぐち / Madoguchi",
            role="consultant", password="correct-horse-battery",
        )  # fmt: skip
        ticket = tickets.create_ticket(
            SYSTEM, channel=Channel.COUNTER, subject="件名", first_note="メモ"
        )
        safety.raise_alert(Actor(staff, "127.0.0.1"), place="room1", ticket=ticket)
        db.session.commit()
        db.session.remove()
        downgrade(revision="0001_desk")
        with db.engine.begin() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM timeline_entry")).scalars().all()
            assert kinds == ["note"]
        with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM timeline_entry"))
        upgrade()
        db.engine.dispose()
