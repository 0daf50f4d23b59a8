"""Shared helpers for the booking tests: a slot a week ahead and a valid form."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from channels.booking.models import BookingCapacity, Mode
from consult.extensions import db
from consult.timeutil import TOKYO, tokyo_today


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
