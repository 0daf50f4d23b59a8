"""A real gunicorn over the test database, for tests of races between processes.

Sync workers are separate processes with their own connection pools, as in production: a race
that one process with threads would hide (the GIL, one SQLite connection at a time) shows here.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(
    database_url: str, tmp_path: Path, secret_key: str, workers: int = 4
) -> Iterator[str]:
    """Start `workers` sync workers on a free port, wait until one answers, yield the base URL.

    The worker timeout is long: on two shared cores a request queued behind a SQLite write lock
    can take seconds, and a worker killed for it would drop its connection mid-answer.
    """
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": secret_key,
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "MADOGUCHI_BOOKING_RATE_LIMIT": "10000 per minute",
            "MADOGUCHI_PASSWORD_HASH_COST": "fast",
            "MADOGUCHI_TOTP_REQUIRED": "none",
            "PYTHONPATH": str(ROOT),
        }
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-k",
                "sync",
                "-w",
                str(workers),
                "--timeout",
                "120",
                "-b",
                f"127.0.0.1:{port}",
                "consult:create_app()",
            ],
            cwd=str(tmp_path),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180  # two shared cores: a cold start can be slow
            while True:
                try:
                    requests.get(f"{base}/booking/", timeout=60)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    assert server.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.3)
            yield base
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found[1]


def get_page(session: requests.Session, url: str, **kwargs) -> requests.Response:
    """A GET that sets up a client: on a fresh connection each time (no kept-alive one that the
    server may have dropped meanwhile)."""
    response = session.get(url, headers={"Connection": "close"}, timeout=60, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response


def all_at_once(count: int, send: Callable[[int], requests.Response]) -> list[tuple[int, str]]:
    """Run `send(n)` for n in 0..count-1 in threads released together; (status, text) each.

    A transport error is reported as status 0 with its repr, so the caller's assertions show it.
    """
    barrier = threading.Barrier(count)
    answers: list[tuple[int, str]] = [(0, "no answer")] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            response = send(n)
            answers[n] = (response.status_code, response.text)
        except requests.RequestException as error:  # pragma: no cover - shown by the asserts
            answers[n] = (0, repr(error))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return answers
