"""Two servers in one test: a relay (internet zone) and a core (LGWAN zone), two databases.

The relay always runs on SQLite (its own file) and answers real HTTP on 127.0.0.1 (a threaded
WSGI server in this process); the core runs on the test's backend (SQLite and PostgreSQL) and
reaches the relay only through `consult.transfer.client`, signed, as in production. The core's
LINE API address is a closed port: anything it tried to send to LINE itself would fail.
"""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from consult.extensions import db
from tests.channels.line.fake_line import SECRET, TOKEN, start_fake_line
from tests.conftest import make_app
from tests.gunicorn import free_port
from tests.helpers import serve_in_thread

KEY = "zones-test-shared-key-0123456789abcdef-0123"
PUBLIC = "https://yoyaku.example.jp"


@dataclass
class Relay:
    app: Flask
    url: str
    server: object = None
    thread: threading.Thread | None = None

    @contextmanager
    def context(self):
        with self.app.app_context():
            try:
                yield
            finally:
                db.session.remove()

    def start(self, port: int | None = None, ssl_context=None) -> None:
        """Serve on 127.0.0.1; over HTTPS when given a server `ssl_context` (tests/tls.py)."""
        self.server = make_server(
            "127.0.0.1", port or 0, self.app, threaded=True, ssl_context=ssl_context
        )
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_port}"
        self.thread = serve_in_thread(self.server)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def fake_line():
    fake, server = start_fake_line()
    yield fake
    server.shutdown()


@pytest.fixture
def relay_settings() -> dict:
    """More settings of the relay (a test parametrises this, e.g. SANITISE_IN=relay)."""
    return {}


@pytest.fixture
def relay(migrated, tmp_path, fake_line, relay_settings):
    folder = tmp_path / "relay"
    folder.mkdir()
    target = folder / "relay.db"
    shutil.copyfile(migrated["sqlite"], target)
    app = make_app(
        f"sqlite:///{target}",
        folder,
        ROLE="relay",
        RELAY_KEY=KEY,
        RELAY_DELIVER_AFTER_PUSH=False,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_HOST=fake_line.url,
        LINE_PROCESS_AFTER_RESPONSE=False,
        LINE_BURST_QUIET_MS=0,
        PUBLIC_URL=PUBLIC,
        **relay_settings,
    )
    found = Relay(app, "")
    found.start()
    yield found
    found.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def core_settings(relay_url: str, **more) -> dict:
    return dict(
        ROLE="core",
        RELAY_KEY=KEY,
        RELAY_URL=relay_url,
        RELAY_TIMEOUT_SECONDS=5,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_HOST=f"http://127.0.0.1:{free_port()}",  # nothing listens: the core has no way out
        LINE_PROCESS_AFTER_RESPONSE=False,
        LINE_BURST_QUIET_MS=0,
        PUBLIC_URL=PUBLIC,
        **more,
    )


@pytest.fixture
def core(app_factory, relay):
    app = app_factory(**core_settings(relay.url))
    with app.app_context():
        yield app
        db.session.remove()


def settle() -> None:
    """Wait for the processing the transfer started in this process (LINE's "line-kick")."""
    for thread in threading.enumerate():
        if thread.name == "line-kick":
            thread.join(timeout=30)
