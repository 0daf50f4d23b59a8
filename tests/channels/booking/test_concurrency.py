"""50 citizens press 予約する at once for a slot of capacity 3, against gunicorn, over HTTP.

Exactly 3 bookings, 47 clear 満席 pages, no 5xx, on SQLite and PostgreSQL. The app runs with
CSRF on (as in production), so each client first loads the form, as a browser would.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from channels.booking.models import Booking, Mode
from consult.extensions import db
from consult.models import RateLimitCounter
from tests.gunicorn import gunicorn_server

from .helpers import assert_three_seats_taken, crowd_books, form_data, set_capacity, slot_in

CLIENTS = 50


def test_fifty_at_once_for_three_seats(app, booking_server):
    set_capacity(Mode.COUNTER, 3)
    start = slot_in(7)
    db.session.commit()
    forms = [form_data(start, email=f"citizen{n}@example.jp", phone="") for n in range(CLIENTS)]
    params = {"mode": "counter", "start": forms[0]["start"]}
    assert_three_seats_taken(crowd_books(booking_server, params, forms))


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
        forms = [form_data(start, consent="") for _ in range(RATE_CLIENTS)]
        params = {"mode": "counter", "start": forms[0]["start"]}
        answers = crowd_books(server.url, params, forms)
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
