"""The real app under gunicorn on 127.0.0.1, for tests of what only several processes show.

    with gunicorn_server(database_url, tmp_path, workers=4, env={...}) as server:
        requests.get(f"{server.url}/booking/")

Why it is built this way. The flake ("Remote end closed connection without response" on one of
the sequential GETs before any concurrency) was not the test's doing: each GET had a connection of
its own (a new Session, ``Connection: close``), so no kept-alive connection was reused, and
``max_requests`` is off. What closes a fresh connection without an answer is a worker that ends
while it holds it. gunicorn's arbiter kills (SIGABRT, then SIGKILL) a worker whose heartbeat is
older than ``--timeout`` (30 s by default) and boots another: on two cores shared by several
suites, with the tests ``nice``d below the others, a worker busy with its first requests (templates
compiled, catalogs read) while its siblings still boot can go that long without its main thread
running. The old fixture wrote gunicorn's log but never showed it, so the failing run cannot say
which worker ended or why; this one does:

- ``--timeout 300``: a test server is slow, never hung; nothing is killed for being slow.
- ready when *every* worker has booted (a ``post_worker_init`` hook leaves a file per worker), not
  when the first one answers: no request is served while siblings still boot, and no worker
  boots in the middle of a test.
- anything the arbiter reports about a worker (a timeout, a crash, a kill) fails the test with
  the log, and any failure of the test body carries the log too.
- keep-alive is explicit (``KEEPALIVE`` s): gunicorn closes a kept-alive connection idle that long,
  and a POST sent into a connection the server is closing is lost (requests retries only
  idempotent methods), so tests that POST later send ``Connection: close``.
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
KEEPALIVE = 5
# What gunicorn's arbiter logs when a worker did not end its life normally.
WORKER_TROUBLE = (
    "WORKER TIMEOUT",
    "was sent",
    "exited with code",
    "Worker failed to boot",
    "Exception in worker process",
)

# Read by gunicorn as its config file: one file per booted worker, named by its pid.
#
# The app is built once, in the arbiter, and the workers are forked from it (``preload_app``):
# a fresh process takes ~3 s of CPU to import the packages and build the app, so four workers
# booting each their own cost 12 s of the two shared cores per server, before the test began.
# Each worker still is its own process with its own connections, as in production: the pool
# the arbiter may have opened is dropped in the child (``close=False``: the parent's sockets are
# not the child's to close), so no connection is shared across processes.
_HOOKS = """
import gc
import os
from pathlib import Path

preload_app = True
# The collector is off while the arbiter imports and builds the app (as `madoguchi` does,
# consult.start), and on again in each worker.
gc.disable()


def pre_fork(server, worker):
    # What the arbiter built stays put: no collection walks it in a worker (each page it touches
    # would be copied), nor at a worker's end.
    gc.freeze()


def when_ready(server):
    gc.enable()


def post_fork(server, worker):
    gc.enable()
    from consult.extensions import db

    with server.app.wsgi().app_context():
        db.engine.dispose(close=False)


def post_worker_init(worker):
    Path(os.environ["MADOGUCHI_TEST_READY_DIR"], str(os.getpid())).touch()


def worker_exit(server, worker):
    # Told to stop (the test is over; a crash leaves ``alive`` set and exits with its code):
    # end now rather than wait for the streams it still holds, or tear down the forked heap.
    if not worker.alive:
        os._exit(0)


def on_exit(server):
    # The workers have ended; the arbiter's own interpreter teardown (the preloaded app's
    # heap) is a second of nothing a test needs.
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
"""


@dataclass
class GunicornServer:
    url: str
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def trouble(self) -> list[str]:
        """The arbiter's lines about workers that timed out, crashed or were killed (before the
        test stopped the server: how workers end then is not the test's business)."""
        lines = []
        for line in self.log().splitlines():
            if "Handling signal: int" in line or "Handling signal: term" in line:
                break
            if any(t in line for t in WORKER_TROUBLE):
                lines.append(line)
        return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(
    database_url: str,
    tmp_path: Path,
    settings: dict | None = None,
    *,
    workers: int = 4,
    threads: int = 8,
    env: dict | None = None,
    ready_path: str = "/booking/",
    boot_timeout: float = 180,
):
    """Start ``consult:create_app()`` under gunicorn; stop it afterwards.

    ``settings`` are MADOGUCHI_* variables without the prefix; ``env`` adds or overrides
    variables (the database, secret key and data folder are
    set here). Fails the test if a worker timed out, crashed or was killed while it ran.
    """
    tmp_path = Path(tmp_path)
    port = free_port()
    ready_dir = tmp_path / "gunicorn-ready"
    ready_dir.mkdir(exist_ok=True)
    hooks = tmp_path / "gunicorn_hooks.py"
    hooks.write_text(_HOOKS)
    full_env = dict(os.environ)
    full_env.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": "gunicorn-test-secret-key-long-enough-1234567890",
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "MADOGUCHI_TEST_READY_DIR": str(ready_dir),
            # As in every test app: only the tests about two-factor sign-in turn it on.
            "MADOGUCHI_TOTP_REQUIRED": "none",
            "PYTHONPATH": str(ROOT),
        }
    )
    full_env.update({f"MADOGUCHI_{name}": str(value) for name, value in (settings or {}).items()})
    full_env.update(env or {})
    log_path = tmp_path / "gunicorn.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the server
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            str(hooks),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "300",
            "--graceful-timeout",
            "10",
            "--keep-alive",
            str(KEEPALIVE),
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            "consult:create_app()",
        ],
        cwd=str(tmp_path),
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = GunicornServer(f"http://127.0.0.1:{port}", log_path, process)
    try:
        _wait_until_ready(server, ready_dir, workers, ready_path, boot_timeout)
        yield server
    except BaseException as error:
        # Whatever failed in the test (a dropped connection, a 500), gunicorn's side of it.
        error.add_note("gunicorn's log:\n" + server.log())
        raise
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    trouble = server.trouble()
    assert not trouble, "gunicorn lost a worker during the test:\n" + server.log()


def _wait_until_ready(server, ready_dir: Path, workers: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout  # two shared cores: a cold start can be slow
    while len(list(ready_dir.iterdir())) < workers:
        assert server.process.poll() is None, "gunicorn stopped:\n" + server.log()
        assert time.monotonic() < deadline, "gunicorn workers did not boot:\n" + server.log()
        time.sleep(0.2)
    response = requests.get(server.url + path, headers={"Connection": "close"}, timeout=60)
    assert response.status_code == 200, server.log()


@contextmanager
def race_server(
    database_url: str, tmp_path: Path, secret_key: str, workers: int = 4
) -> Iterator[str]:
    """``workers`` sync workers (one thread each) with the test app's secret key; the base URL.

    Sync workers are separate processes with their own connection pools, as in production: a
    race that one process with threads would hide (the GIL, one SQLite connection at a time)
    shows here. The key is the test app's, so that what the test signs the server accepts."""
    env = {
        "MADOGUCHI_SECRET_KEY": secret_key,
        "MADOGUCHI_BOOKING_RATE_LIMIT": "10000 per minute",
        "MADOGUCHI_PASSWORD_HASH_COST": "fast",
    }
    with gunicorn_server(database_url, tmp_path, workers=workers, threads=1, env=env) as server:
        yield server.url


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(page_text: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(page_text)
    assert found, page_text[:500]
    return found[1]


def get_page(session: requests.Session, url: str, **kwargs) -> requests.Response:
    """A GET that sets up a client: on a fresh connection each time (no kept-alive one that the
    server may have dropped meanwhile)."""
    response = session.get(url, headers={"Connection": "close"}, timeout=60, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response


def form_with_token(url: str, data: dict, **kwargs) -> tuple[requests.Session, dict]:
    """A client that loaded the form at ``url`` as a browser would: its session (the CSRF
    cookie) and ``data`` with the page's token added."""
    session = requests.Session()
    page = get_page(session, url, **kwargs)
    return session, {**data, "csrf_token": csrf_token(page.text)}


def all_at_once(count: int, send: Callable[[int], requests.Response]) -> list[tuple[int, str]]:
    """Run `send(n)` for n in 0..count-1 in threads released together; (status, text) each.

    A transport error is reported as status 0 with its repr, so the caller's assertions show it.
    """
    return [(status, text) for status, text, _headers in all_at_once_with_headers(count, send)]


def all_at_once_with_headers(
    count: int, send: Callable[[int], requests.Response]
) -> list[tuple[int, str, Mapping]]:
    """``all_at_once`` keeping each answer's headers too."""
    barrier = threading.Barrier(count)
    answers: list[tuple[int, str, Mapping]] = [(0, "no answer", {})] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            response = send(n)
            answers[n] = (response.status_code, response.text, response.headers)
        except requests.RequestException as error:  # pragma: no cover - shown by the asserts
            answers[n] = (0, repr(error), {})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return answers
