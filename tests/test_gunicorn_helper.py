"""tests/gunicorn.py: a worker lost in the middle of a test fails it, with gunicorn's log."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import requests

from tests.gunicorn import gunicorn_server

pytestmark = pytest.mark.slow  # a real gunicorn


def test_every_worker_is_up_and_a_killed_one_fails_the_test(migrated, tmp_path):
    database = tmp_path / "test.db"
    shutil.copyfile(migrated["sqlite"], database)
    url = f"sqlite:///{database}"
    with (
        pytest.raises(AssertionError, match="gunicorn lost a worker") as lost,
        gunicorn_server(url, tmp_path, workers=2, threads=2) as server,
    ):
        workers = sorted(int(p.name) for p in (tmp_path / "gunicorn-ready").iterdir())
        assert len(workers) == 2  # both booted before the test began
        os.kill(workers[0], signal.SIGKILL)
        page = requests.get(f"{server.url}/booking/", timeout=60)
        assert page.status_code == 200  # the other worker still answers
        deadline = time.monotonic() + 60  # the arbiter logs the loss when it reaps the worker
        while not server.trouble() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert f"Worker (pid:{workers[0]}) was sent SIGKILL" in str(lost.value)
