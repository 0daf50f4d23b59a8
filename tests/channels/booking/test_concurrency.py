"""50 citizens press 予約する at once for a slot of capacity 3, against gunicorn, over HTTP.

Exactly 3 bookings, 47 clear 満席 pages, no 5xx, on SQLite and PostgreSQL. The app runs with
CSRF on (as in production), so each client first loads the form, as a browser would.
"""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from channels.booking.models import Booking, BookingSlot, Mode
from consult.extensions import db
from consult.models import RateLimitCounter
from tests.gunicorn import csrf_token, gunicorn_server

from .helpers import form_data, set_capacity, slot_in

CLIENTS = 50


@pytest.fixture
def gunicorn(database_url, tmp_path):
    """The app under gunicorn (4 workers, 8 threads each), as in production; its URL."""
    env = {"MADOGUCHI_BOOKING_RATE_LIMIT": "10000 per minute"}
    with gunicorn_server(database_url, tmp_path, workers=4, env=env) as server:
        yield server.url


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
            # No kept-alive connection: the server drops idle ones after tests.gunicorn.KEEPALIVE
            # seconds, and a POST sent into a dropped connection is reset (requests does not
            # retry POSTs).
            headers={"Connection": "close"},
            timeout=60,
        )
        assert page.status_code == 200, page.text[:500]
        data["csrf_token"] = csrf_token(page.text)
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


RATE_CLIENTS = 40


@pytest.fixture(params=["database", "redis"])
def counts_in(request) -> dict[str, str]:
    """Settings that keep the counts in the database (the default) or in Redis."""
    if request.param == "redis":
        return {"REDIS_URL": request.getfixturevalue("redis_url")}
    return {}


def test_rate_limit_is_one_count_across_workers(app, database_url, tmp_path, counts_in):
    """Issue 14 item 13: "10 per minute" with four workers let 40 through (a count per process).

    Forty POSTs at once from one address: exactly ten are answered (422, the form is incomplete)
    and thirty get 429 with the wait, whichever worker takes them.
    """
    start = slot_in(7)
    settings = {"BOOKING_RATE_LIMIT": "10 per minute", **counts_in}
    with gunicorn_server(database_url, tmp_path, settings) as server:
        base = server.url
        clients = []
        for _ in range(RATE_CLIENTS):
            session = requests.Session()
            data = form_data(start, consent="")
            page = session.get(
                f"{base}/booking/details",
                params={"mode": "counter", "start": data["start"]},
                headers={"Connection": "close"},
                timeout=60,
            )
            assert page.status_code == 200, page.text[:500]
            data["csrf_token"] = csrf_token(page.text)
            clients.append((session, data))
        barrier = threading.Barrier(RATE_CLIENTS)
        answers: list = [None] * RATE_CLIENTS

        def post(n: int) -> None:
            session, data = clients[n]
            barrier.wait()
            try:
                response = session.post(
                    f"{base}/booking/details",
                    data=data,
                    headers={"Connection": "close"},
                    allow_redirects=False,
                    timeout=120,
                )
                answers[n] = (response.status_code, response.text, response.headers)
            except requests.RequestException as error:  # pragma: no cover - reported below
                answers[n] = (0, repr(error), {})

        threads = [threading.Thread(target=post, args=(n,)) for n in range(RATE_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    codes = [code for code, _, _ in answers]
    assert codes.count(422) == 10, codes
    assert codes.count(429) == RATE_CLIENTS - 10, codes
    for code, text, headers in answers:
        if code == 429:
            assert "しばらく待ってから、もう一度お試しください（あと" in text
            assert 1 <= int(headers["Retry-After"]) <= 60
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    # The count was kept where the settings say (Redis leaves the table empty).
    rows = db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter))
    assert (rows == 0) == bool(counts_in)
