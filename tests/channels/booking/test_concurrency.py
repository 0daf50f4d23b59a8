"""50 citizens press 予約する at once for a slot of capacity 3, against gunicorn, over HTTP.

Exactly 3 bookings, 47 clear 満席 pages, no 5xx, on SQLite and PostgreSQL. The app runs with
CSRF on (as in production), so each client first loads the form, as a browser would.
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
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from channels.booking.models import Booking, BookingSlot, Mode
from consult.extensions import db

from .helpers import form_data, set_capacity, slot_in

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(database_url, tmp_path):
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": "concurrency-test-secret-key-long-enough-1234567890",
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "MADOGUCHI_BOOKING_RATE_LIMIT": "10000 per minute",
            "PYTHONPATH": str(ROOT),
        }
    )
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            "4",
            "--threads",
            "8",
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
    deadline = time.monotonic() + 180  # two shared cores: a cold start can be slow
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/booking/", timeout=60)
            break
        except (requests.ConnectionError, requests.Timeout):
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.3)
    yield base
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_fifty_at_once_for_three_seats(app, gunicorn):
    set_capacity(Mode.COUNTER, 3)
    start = slot_in(7)
    db.session.commit()
    sessions, forms = [], []
    for n in range(CLIENTS):
        session = requests.Session()
        data = form_data(start, email=f"citizen{n}@example.jp", phone="")
        page = session.get(
            f"{gunicorn}/booking/details",
            params={"mode": "counter", "start": data["start"]},
            # No kept-alive connection: the server drops idle ones after 2 s, and a POST sent
            # into a dropped connection is reset (requests does not retry POSTs).
            headers={"Connection": "close"},
            timeout=60,
        )
        assert page.status_code == 200, page.text[:500]
        data["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)[1]
        sessions.append(session)
        forms.append(data)
    barrier = threading.Barrier(CLIENTS)
    answers: list = [None] * CLIENTS

    def book(n: int) -> None:
        barrier.wait()
        try:
            response = sessions[n].post(
                f"{gunicorn}/booking/details",
                data=forms[n],
                allow_redirects=False,
                timeout=120,
            )
            answers[n] = (response.status_code, response.text)
        except requests.RequestException as error:  # pragma: no cover - reported below
            answers[n] = (0, repr(error))

    threads = [threading.Thread(target=book, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [code for code, _ in answers]
    errors = [text[:300] for code, text in answers if code not in (303, 409)]
    assert codes.count(303) == 3, (codes, errors)
    assert codes.count(409) == CLIENTS - 3, (codes, errors)
    assert all("満席" in text for code, text in answers if code == 409)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 3
    slot = db.session.scalar(sa.select(BookingSlot))
    assert slot.booked == 3
    seats = sorted(db.session.scalars(sa.select(Booking.seat_no)))
    assert seats == [1, 2, 3]
