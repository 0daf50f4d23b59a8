"""Shared helpers for the booking tests: a slot a week ahead and a valid form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta

import requests
import sqlalchemy as sa

from channels.booking.models import Booking, BookingCapacity, BookingSlot, Mode
from consult.extensions import db
from consult.timeutil import TOKYO, tokyo_today
from tests.gunicorn import all_at_once_with_headers, form_with_token


def slot_in(days: int = 7, at: time = time(10, 0)) -> datetime:
    return datetime.combine(tokyo_today() + timedelta(days=days), at, TOKYO)


def set_capacity(mode: Mode, value: int) -> None:
    for kind in ("weekday", "weekend", "holiday", "year_end"):
        db.session.add(BookingCapacity(mode=mode, day_type=kind, capacity=value))
    db.session.commit()


def form_data(start: datetime, mode: str = "counter", **overrides) -> dict:
    data = {
        "mode": mode,
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "category": "",
        "name": "山田 花子",
        "kana": "やまだ はなこ",
        "email": "ｈａｎａｋｏ@Example.JP",
        "phone": "０８７－８３９－２１１１",
        "content": "介護保険の申請について相談したい",
        "consent": "y",
        "website": "",
    }
    data.update(overrides)
    return data


def crowd_books(base_url: str, params: dict, forms: list[dict]) -> list[tuple[int, str, Mapping]]:
    """Each citizen loads the details form (``params``) as a browser would, then all press
    予約する at the same moment with their ``forms``; (status, text, headers) each, in order."""
    url = f"{base_url}/booking/details"
    clients = [form_with_token(url, form, params=params) for form in forms]

    def book(n: int) -> requests.Response:
        session, data = clients[n]
        return session.post(
            url,
            data=data,
            # A fresh connection: one kept alive since the GET may be closed by the server by
            # now, and a POST sent into it is lost (requests does not retry POSTs).
            headers={"Connection": "close"},
            allow_redirects=False,
            timeout=120,
        )

    return all_at_once_with_headers(len(clients), book)


def assert_three_seats_taken(answers: list[tuple[int, str, Mapping]]) -> BookingSlot:
    """Exactly three bookings (seats 1 to 3) and a clear 満席 page for everyone else, no 5xx;
    the one slot, for the caller's own checks."""
    codes = [code for code, _, _ in answers]
    errors = [text[:300] for code, text, _ in answers if code not in (303, 409)]
    assert codes.count(303) == 3, (codes, errors)
    assert codes.count(409) == len(answers) - 3, (codes, errors)
    assert all("満席" in text for code, text, _ in answers if code == 409)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 3
    assert sorted(db.session.scalars(sa.select(Booking.seat_no))) == [1, 2, 3]
    [slot] = db.session.scalars(sa.select(BookingSlot))
    assert slot.booked == 3
    return slot
