"""MADOGUCHI_ROLE: read once, checked at start, and what each role runs."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from consult import create_app
from consult.config import ConfigError, RelaySettings
from consult.extensions import db
from consult.models import Channel, Ticket
from consult.settings import section
from consult.worker import Worker, tasks_by_lane
from tests.transfer.conftest import KEY
from tests.transfer.test_zones import send_line


def _names(app) -> set[str]:
    return {task.name for tasks in tasks_by_lane(app).values() for task in tasks}


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"ROLE": "dmz"}, "MADOGUCHI_ROLE"),
        ({"ROLE": "relay"}, "MADOGUCHI_RELAY_KEY"),
        ({"ROLE": "core", "RELAY_KEY": KEY}, "MADOGUCHI_RELAY_URL"),
        ({"ROLE": "core", "RELAY_KEY": "short", "RELAY_URL": "https://r"}, "MADOGUCHI_RELAY_KEY"),
        # Personal data crosses the link: plain http only to a relay on this machine.
        ({"ROLE": "core", "RELAY_KEY": KEY, "RELAY_URL": "http://relay.example.jp"}, "https"),
        ({"ROLE": "core", "RELAY_KEY": KEY, "RELAY_URL": "http://10.0.0.5:8080"}, "RELAY_URL"),
        ({"ROLE": "core", "RELAY_KEY": KEY, "RELAY_URL": "http://127.0.0.1.example.jp"}, "https"),
        ({"ROLE": "relay", "RELAY_KEY": KEY, "RELAY_HOLD_DAYS": 0}, "MADOGUCHI_RELAY_HOLD_DAYS"),
    ],
)
def test_a_role_that_cannot_work_stops_the_start(tmp_path, values, variable):
    with pytest.raises(ConfigError, match=variable):
        create_app(
            {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **values},
            instance_path=str(tmp_path / "instance"),
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://relay.city.example.jp",
        "http://127.0.0.1:8080",
        "http://localhost:8080/",
        "http://[::1]:8080",
    ],
)
def test_the_core_accepts_https_or_a_relay_on_its_own_loopback(tmp_path, url):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "ROLE": "core",
            "RELAY_KEY": KEY,
            "RELAY_URL": url,
        },
        instance_path=str(tmp_path / "instance"),
    )
    assert section(RelaySettings, app).url == url


def test_each_role_runs_its_own_worker_tasks(relay, core, app):
    assert not any(name.startswith("transfer") for name in _names(app))  # all: as before
    assert "line.events" in _names(app) and "outbox.line-out" in _names(app)
    relay_tasks = _names(relay.app)
    assert "line.events" not in relay_tasks and "email.inbound" not in relay_tasks
    assert {"outbox.line-out", "outbox.mail-out", "transfer.housekeeping"} <= relay_tasks
    assert {"transfer.run", "line.events", "email.inbound"} <= _names(core)


def test_the_cores_worker_takes_a_line_message_within_seconds(relay, core):
    db.session.commit()
    worker = Worker(core, lanes={"transfer", "line-in"})
    worker.start()
    try:
        started = time.monotonic()
        assert send_line(relay, "ワーカーが取りに行く相談").status_code == 200
        found = None
        while time.monotonic() - started < 20 and found is None:
            found = db.session.scalar(
                sa.select(Ticket.number).where(Ticket.channel == Channel.LINE)
            )
            db.session.remove()  # no transaction (SQLite's write lock) held while waiting
            time.sleep(0.1)
        assert found is not None
    finally:
        worker.stop.set()
        worker.join(timeout=30)
        for thread in threading.enumerate():
            if thread.name == "line-kick":
                thread.join(timeout=30)
        db.session.remove()


def test_the_relay_command_refuses_another_role(app):
    result = app.test_cli_runner().invoke(args=["relay"])
    assert result.exit_code == 2
    assert "MADOGUCHI_ROLE=relay" in result.output
    result = app.test_cli_runner().invoke(args=["transfer", "run", "--once"])
    assert result.exit_code == 2
