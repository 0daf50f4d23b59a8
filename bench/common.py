"""Helpers the bench scripts share: throwaway databases, gunicorn, timing and logging.

One copy, so every benchmark sets up, serves and measures the same way and their figures stay
comparable. Imported as `bench.common` (each script puts the repository root on sys.path);
the app's packages are imported inside the functions, so importing this costs nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
DB_CHOICES = ["sqlite", "postgresql", "both"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1366, "height": 768}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def kinds(choice: str) -> list[str]:
    """The databases a `--db` choice stands for, SQLite first."""
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


# --- databases -------------------------------------------------------------------------------


def postgres_base() -> str:
    """The server to create the throwaway database on (its own database is left alone)."""
    return (
        os.environ.get("MADOGUCHI_BENCH_POSTGRES_URL")
        or os.environ.get("MADOGUCHI_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )


@contextmanager
def scratch(kind: str, label: str = "", keep: bool = False) -> Iterator[tuple[Path, str]]:
    """A temporary folder and a database URL in it (SQLite) or on a fresh PostgreSQL database.

    Both are removed on the way out, also after a failure, so runs leave nothing behind;
    `keep` keeps the PostgreSQL database or the SQLite file (to time again, to study plans).
    The process id in the name lets two runs share a server.
    """
    part = f"{label}-" if label else ""
    tmp = Path(tempfile.mkdtemp(prefix=f"madoguchi-bench-{part}{kind}-"))
    name = f"madoguchi_bench_{part.replace('-', '_')}{os.getpid()}"
    pg_base = url = None
    try:
        if kind == "sqlite":
            kept, url = tmp if keep else None, f"sqlite:///{tmp / 'bench.db'}"
            if keep:
                tmp = None  # kept however the run ends (--build-only ends it by SystemExit)
            yield kept or tmp, url
            return
        pg_base = postgres_base()
        with psycopg.connect(pg_base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{pg_base.rpartition('/')[0]}/{name}"
        yield tmp, url
    finally:
        if keep and url:
            log(f"kept {url}")
        elif pg_base:
            with psycopg.connect(pg_base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def add_reuse_arguments(parser: argparse.ArgumentParser) -> None:
    """`--keep-db` and `--reuse-db`: build a large centre once, time it several times.

    Building 1,000,000 tickets and their search index takes far longer than timing them, and
    the timing wants a quiet machine while the building does not: build with `--keep-db`
    (the targets the requests ask for are written beside, in a JSON file), then time on the
    kept database with `--reuse-db URL`, from any script that builds with `bench.desk.populate`.
    """
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the database (or SQLite file) and its targets"
    )
    parser.add_argument(
        "--reuse-db",
        metavar="URL",
        help="time on a database kept by --keep-db instead of building one",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="with --keep-db: build, keep, time nothing"
    )


def targets_file(url: str) -> Path:
    if url.startswith("sqlite"):
        return Path(url.partition(":///")[2]).with_suffix(".targets.json")
    return Path(tempfile.gettempdir()) / f"{url.rpartition('/')[2]}.targets.json"


@contextmanager
def built(kind: str, args, populate) -> Iterator[tuple[Path, str, dict]]:
    """A folder, a database URL and the request targets: a kept database, or a new build."""
    import json

    if getattr(args, "reuse_db", None):
        tmp = Path(tempfile.mkdtemp(prefix="madoguchi-bench-reuse-"))
        try:
            targets = json.loads(targets_file(args.reuse_db).read_text())
            args.tickets, args.entries = targets["size"]
            log(f"reusing {args.reuse_db}: {args.tickets:,} tickets, {args.entries:,} entries")
            # The code may have moved on since the build: its later migrations first (timed, as
            # a city upgrading a large centre would run them).
            from flask_migrate import upgrade

            started = time.perf_counter()
            with build_app(args.reuse_db, tmp).app_context():
                upgrade()
            log(f"migrated in {time.perf_counter() - started:.1f}s")
            yield tmp, args.reuse_db, targets
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    with scratch(kind, keep=args.keep_db) as (tmp, url):
        log(f"{kind}: building {args.tickets:,} tickets, {args.entries:,} entries")
        targets = populate(url, tmp, args.tickets, args.entries)
        if args.keep_db:
            targets_file(url).write_text(
                json.dumps({**targets, "size": [args.tickets, args.entries]})
            )
            log(f"targets in {targets_file(url)}")
        if args.build_only:
            raise SystemExit(0 if args.keep_db else "--build-only needs --keep-db")
        yield tmp, url, targets


def build_app(url: str, tmp: Path):
    """The app on `url` with its files in `tmp`; fast password hashing keeps setup short."""
    from consult import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": SECRET,
            "ENV": "testing",
            "PASSWORD_HASH_COST": "fast",
            "TOTP_REQUIRED": "none",
        },
        instance_path=str(tmp / "instance"),
    )


# --- serving ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    url: str, tmp: Path, port: int, options: list[str] | None = None, env: dict | None = None
) -> subprocess.Popen:
    """Two gunicorn workers on 127.0.0.1:port, returned once /login answers.

    A real server rather than the test client, so the figures include what production pays.
    Stopped again if it does not come up within a minute; its output goes to tmp/gunicorn.log.
    """
    environment = dict(os.environ)
    environment.update(
        {
            "MADOGUCHI_DATABASE_URL": url,
            "MADOGUCHI_SECRET_KEY": SECRET,
            "MADOGUCHI_DATA_DIR": str(tmp / "data"),
            "PYTHONPATH": str(ROOT),
            # The benchmarks sign in with passwords (two-factor has its own tests).
            "MADOGUCHI_TOTP_REQUIRED": "none",
            **(env or {}),
        }
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [
            str(gunicorn),
            *(options or ["-w", "2"]),
            "-b",
            f"127.0.0.1:{port}",
            "consult:create_app()",
        ],
        cwd=str(tmp),
        env=environment,
        stdout=open(tmp / "gunicorn.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/login", timeout=30)
                return server
            except (requests.ConnectionError, requests.Timeout):
                if server.poll() is not None:
                    break
                time.sleep(0.3)
    except BaseException:
        stop(server)
        raise
    stop(server)
    raise RuntimeError(f"gunicorn did not start; see {tmp / 'gunicorn.log'}")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


@contextmanager
def serve(app) -> Iterator[str]:
    """The app in a thread on a free port (for the screenshots); yields its base URL."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def launch_chromium(playwright, args: list[str] = CHROMIUM_ARGS):
    """Debian's Chromium, never a downloaded browser, so the pictures match what users run."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


def screenshots_main(run, description: str | None = None) -> None:
    """The screenshot scripts' one option: where to save the PNGs (the docs by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    run(parser.parse_args().out)


# --- HTTP ------------------------------------------------------------------------------------


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if not match:
        raise RuntimeError("no CSRF token in the page")
    return match.group(1)


def sign_in(base: str, login: str, password: str, landing: str) -> tuple[requests.Session, str]:
    """A session signed in through the real form, and the CSRF token of its `landing` page."""
    session = requests.Session()
    token = csrf_from(session.get(f"{base}/login", timeout=10).text)
    response = session.post(
        f"{base}/login",
        data={"login": login, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login {login} failed: {response.status_code}")
    page = session.get(f"{base}{landing}", timeout=30)
    return session, csrf_from(page.text)


def browser_sign_in(page, base: str, login: str, password: str) -> None:
    """Sign a Playwright page in through the login form and wait for the signed-in header."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


# --- timing ----------------------------------------------------------------------------------


def percentiles(times: list[float]) -> dict:
    """p50 (median), p95 (nearest rank, rounded down) and max, as the README's tables give."""
    times = sorted(times)
    return {
        "p50": statistics.median(times),
        "p95": times[max(int(len(times) * 0.95) - 1, 0)],
        "max": times[-1],
    }


def summary(name: str, times: list[float]) -> dict:
    return {"name": name, **percentiles(times)}


def measure(session, name, make_request, n: int, expect: int) -> dict:
    """Milliseconds per `make_request(i)` over n calls, after a short warm-up of both workers."""
    for _ in range(min(5, n)):
        make_request(0)
    times = []
    for i in range(n):
        start = time.perf_counter()
        response = make_request(i)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != expect:
            raise RuntimeError(f"{name}: HTTP {response.status_code} (expected {expect})")
    return summary(name, times)


def print_table(results: dict[str, list[dict]]) -> None:
    """One row per database and page: p50, p95 and max in milliseconds."""
    print(f"{'database':<11} {'page':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, rows in results.items():
        for row in rows:
            print(
                f"{kind:<11} {row['name']:<26} {row['p50']:>8.1f} {row['p95']:>8.1f}"
                f" {row['max']:>8.1f}"
            )
