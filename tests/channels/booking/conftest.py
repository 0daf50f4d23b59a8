"""Fixtures shared by the booking tests."""

from __future__ import annotations

import pytest

from tests.gunicorn import gunicorn_server


@pytest.fixture
def booking_server(app, database_url, tmp_path):
    """The app under gunicorn (4 workers, 8 threads each, CSRF on), as in production, with a
    rate limit that a crowd of test clients from one address does not reach; its URL.

    Started after ``app`` has migrated the database. The test commits what it set up before it
    sends requests (on SQLite, an open transaction would hold the server's writes)."""
    env = {"MADOGUCHI_BOOKING_RATE_LIMIT": "10000 per minute"}
    with gunicorn_server(database_url, tmp_path, workers=4, env=env) as server:
        yield server.url
