"""The app under gunicorn with several workers, for tests of races between processes.

Counts kept in one process's memory, a check and an act in two statements: these fail only with
several processes at once, so such tests run the real server over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
SECRET = "concurrency-test-secret-key-long-enough-1234567890"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(
    database_url: str,
    tmp_path: Path,
    settings: dict[str, str] | None = None,
    workers: int = 4,
    threads: int = 8,
    ready_path: str = "/booking/",
) -> Iterator[str]:
    """Start gunicorn over `database_url`, answer its base URL, stop it afterwards.

    `settings` are MADOGUCHI_* variables without the prefix. `threads=1` gives sync workers.
    """
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": SECRET,
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update({f"MADOGUCHI_{name}": str(value) for name, value in (settings or {}).items()})
    command = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(workers)]
    if threads > 1:
        command += ["--threads", str(threads)]
    command += ["-b", f"127.0.0.1:{port}", "consult:create_app()"]
    log_path = tmp_path / "gunicorn.log"
    log = open(log_path, "wb")  # noqa: SIM115
    server = subprocess.Popen(
        command, cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # two shared cores: a cold start can be slow
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}{ready_path}", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.3)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def csrf_token(page_text: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text)[1]
