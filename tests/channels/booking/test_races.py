"""One booking changed by many requests at once (issue 14, items 4–6), against real gunicorn.

Each test sends the same change from several clients released together to four sync workers
(separate processes) on SQLite and PostgreSQL: exactly one wins, the others get a clear
Japanese answer, and nothing is done twice (mails, seats, tickets, citizen records).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time as clock
from datetime import time, timedelta

import pytest
import requests
import sqlalchemy as sa

from channels.booking import services
from channels.booking.models import Booking, BookingSlot, BookingStatus, Mode
from consult.extensions import db
from consult.models import Citizen, OutboxMessage, Ticket
from consult.services.actor import Actor
from tests.gunicorn import ROOT, all_at_once, csrf_token, get_page, race_server
from tests.helpers import PASSWORD

from .helpers import form_data, set_capacity, slot_in

PUBLIC = Actor(None, "127.0.0.1")


def _let_the_server_write() -> None:
    """End this process's transaction: on SQLite every transaction holds the write lock (BEGIN
    IMMEDIATE), and reading an expired attribute starts one. Read what you need before."""
    db.session.commit()


@pytest.fixture
def server(app, database_url, tmp_path):
    # The server signs and checks the private manage links with the test app's secret.
    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as base:
        yield base


def _book(start, email: str) -> Booking:
    data = form_data(start, email=email, phone="")
    booking = services.create_booking(
        PUBLIC,
        services.BookingInput(
            mode="counter",
            starts_at=start,
            name=data["name"],
            kana=data["kana"],
            content=data["content"],
            email=email,
        ),
    )
    db.session.commit()
    return booking


def _mails(subject: str, to: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.recipient == to, OutboxMessage.subject.contains(subject))
    )


def _counters_match_live_bookings() -> dict[int, tuple[int, int]]:
    """Each slot's seat counter beside the live bookings that hold one of its seats."""
    live = dict(
        db.session.execute(
            sa.select(Booking.slot_id, sa.func.count())
            .where(Booking.status == BookingStatus.BOOKED)
            .group_by(Booking.slot_id)
        ).all()
    )
    return {
        slot.id: (slot.booked, live.get(slot.id, 0))
        for slot in db.session.scalars(sa.select(BookingSlot))
    }


def test_ten_cancellations_of_one_booking_cancel_it_once(app, server):
    set_capacity(Mode.COUNTER, 2)
    start = slot_in(7)
    booking = _book(start, "first@example.jp")
    other = _book(start, "second@example.jp")
    token = services.manage_token(booking)
    booking_id, slot_id, other_id = booking.id, booking.slot_id, other.id
    _let_the_server_write()
    clients = 10
    sessions, tokens = [], []
    for _ in range(clients):
        session = requests.Session()
        page = get_page(session, f"{server}/booking/manage/{token}")
        sessions.append(session)
        tokens.append(csrf_token(page.text))

    answers = all_at_once(
        clients,
        lambda n: sessions[n].post(
            f"{server}/booking/manage/{token}/cancel",
            data={"csrf_token": tokens[n]},
            headers={"Connection": "close"},
            timeout=120,
        ),
    )

    db.session.expire_all()
    assert _mails("取り消しました", "first@example.jp") == 1
    counters = _counters_match_live_bookings()
    assert all(booked == live for booked, live in counters.values()), counters
    assert db.session.get(BookingSlot, slot_id).booked == 1
    assert db.session.get(Booking, other_id).status is BookingStatus.BOOKED
    assert db.session.get(Booking, booking_id).status is BookingStatus.CANCELLED
    # Each client lands back on the booking's page, which says what happened to its request.
    assert [code for code, _ in answers] == [200] * clients, answers
    won = [text for _, text in answers if "予約を取り消しました。" in text]
    lost = [text for _, text in answers if "この予約はすでに取り消されています。" in text]
    assert (len(won), len(lost)) == (1, clients - 1)


def test_eight_moves_of_one_booking_move_it_once(app, server):
    set_capacity(Mode.COUNTER, 1)
    start = slot_in(7)
    booking = _book(start, "mover@example.jp")
    token = services.manage_token(booking)
    booking_id = booking.id
    _let_the_server_write()
    # Eight other times of the same day (the centre is open every day from 9:00 to past 14:00).
    targets = [slot_in(7, time(10 + (n + 1) // 2, 30 * ((n + 1) % 2))) for n in range(8)]
    sessions, forms = [], []
    for target in targets:
        session = requests.Session()
        page = get_page(
            session,
            f"{server}/booking/manage/{token}/move",
            params={"start": f"{target:%Y-%m-%dT%H:%M}"},
        )
        form = {"start": f"{target:%Y-%m-%dT%H:%M}", "csrf_token": csrf_token(page.text)}
        version = re.search(r'name="version"[^>]*value="([^"]*)"', page.text)
        if version:  # the form carries the version of the booking that the citizen saw
            form["version"] = version[1]
        sessions.append(session)
        forms.append(form)

    answers = all_at_once(
        len(targets),
        lambda n: sessions[n].post(
            f"{server}/booking/manage/{token}/move",
            data=forms[n],
            allow_redirects=False,
            headers={"Connection": "close"},
            timeout=120,
        ),
    )

    db.session.expire_all()
    assert _mails("変更しました", "mover@example.jp") == 1
    counters = _counters_match_live_bookings()
    assert all(booked == live for booked, live in counters.values()), counters
    moved = db.session.get(Booking, booking_id)
    assert moved.sequence == 1
    winners = [n for n, (code, _) in enumerate(answers) if code == 303]
    assert len(winners) == 1, [code for code, _ in answers]
    assert moved.starts_at == targets[winners[0]]
    assert db.session.get(BookingSlot, moved.slot_id).booked == 1
    losers = [(code, text) for n, (code, text) in enumerate(answers) if n not in winners]
    assert all(code == 409 for code, _ in losers), [code for code, _ in losers]
    assert all("この予約の日時はすでに変更されています。" in text for _, text in losers)


def test_six_desks_checking_in_one_booking_make_one_ticket(app, server, make_staff):
    set_capacity(Mode.COUNTER, 1)
    booking = _book(slot_in(7), "visitor@example.jp")
    desks = [make_staff("consultant").login for _ in range(6)]
    booking_id = booking.id
    _let_the_server_write()
    sessions, tokens = [], []
    for login in desks:
        session = requests.Session()
        page = get_page(session, f"{server}/login")
        answer = session.post(
            f"{server}/login",
            data={"login": login, "password": PASSWORD} | {"csrf_token": csrf_token(page.text)},
            headers={"Connection": "close"},
            allow_redirects=False,
            timeout=60,
        )
        assert answer.status_code == 302, answer.text[:500]
        page = get_page(session, f"{server}/booking/staff/b/{booking_id}")
        sessions.append(session)
        tokens.append(csrf_token(page.text))

    answers = all_at_once(
        len(desks),
        lambda n: sessions[n].post(
            f"{server}/booking/staff/b/{booking_id}/check-in",
            data={"csrf_token": tokens[n]},
            headers={"Connection": "close"},
            timeout=120,
        ),
    )

    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Citizen)) == 1
    checked_in = db.session.get(Booking, booking_id)
    assert checked_in.status is BookingStatus.CHECKED_IN
    assert checked_in.ticket_id is not None
    assert [code for code, _ in answers] == [200] * len(desks), answers
    won = [text for _, text in answers if "相談票を作成しました。" in text]
    lost = [text for _, text in answers if "この予約はすでに受付済みです。" in text]
    assert (len(won), len(lost)) == (1, len(desks) - 1)


def test_check_in_no_show_and_cancel_at_once_one_wins(app, server, make_staff):
    """Six desks press 受付, 無断欠席 and 取消 on one booking at once: one of them is done."""
    set_capacity(Mode.COUNTER, 1)
    start = slot_in(-1)  # yesterday: a booking that may be checked in or marked as missed
    data = form_data(start, email="late@example.jp", phone="")
    booking = services.create_booking(
        PUBLIC,
        services.BookingInput(
            mode="counter",
            starts_at=start,
            name=data["name"],
            kana=data["kana"],
            content=data["content"],
            email="late@example.jp",
        ),
        now=start - timedelta(days=2),
    )
    db.session.commit()
    booking_id, slot_id = booking.id, booking.slot_id
    desks = [make_staff("consultant").login for _ in range(6)]
    _let_the_server_write()
    actions = ["check-in", "no-show", "cancel"] * 2
    sessions, tokens = [], []
    for login in desks:
        session = requests.Session()
        page = get_page(session, f"{server}/login")
        answer = session.post(
            f"{server}/login",
            data={"login": login, "password": PASSWORD} | {"csrf_token": csrf_token(page.text)},
            headers={"Connection": "close"},
            allow_redirects=False,
            timeout=60,
        )
        assert answer.status_code == 302, answer.text[:500]
        page = get_page(session, f"{server}/booking/staff/b/{booking_id}")
        sessions.append(session)
        tokens.append(csrf_token(page.text))

    answers = all_at_once(
        len(desks),
        lambda n: sessions[n].post(
            f"{server}/booking/staff/b/{booking_id}/{actions[n]}",
            data={"csrf_token": tokens[n]},
            headers={"Connection": "close"},
            timeout=120,
        ),
    )

    db.session.expire_all()
    final = db.session.get(Booking, booking_id).status
    tickets = db.session.scalar(sa.select(sa.func.count()).select_from(Ticket))
    assert tickets == (1 if final is BookingStatus.CHECKED_IN else 0), (final, tickets)
    cancel_mails = _mails("取り消しました", "late@example.jp")
    assert cancel_mails == (1 if final is BookingStatus.CANCELLED else 0), (final, cancel_mails)
    assert db.session.get(BookingSlot, slot_id).booked == (
        0 if final is BookingStatus.CANCELLED else 1
    )
    assert [code for code, _ in answers] == [200] * len(desks), answers
    done = {
        BookingStatus.CHECKED_IN: "相談票を作成しました。",
        BookingStatus.NO_SHOW: "無断欠席として記録しました。",
        BookingStatus.CANCELLED: "予約を取り消しました。",
    }
    assert sum(any(m in text for m in done.values()) for _, text in answers) == 1
    assert sum(done[final] in text for _, text in answers) == 1
    assert sum(services.ALREADY[final] in text for _, text in answers) == len(desks) - 1


REMINDER_WORKER = """
import os, sys, time
from consult import create_app
from consult.extensions import db
from channels.booking import services

app = create_app()
with app.app_context():
    open(sys.argv[2], "w").close()  # ready
    while not os.path.exists(sys.argv[1]):  # every process ready: go together
        time.sleep(0.005)
    services.send_reminders()
    db.session.commit()  # as the worker commits its round
"""


def test_three_workers_at_once_send_each_reminder_once(app, database_url, tmp_path):
    """The day-before reminders run in every `madoguchi worker`; three at once send one each."""
    set_capacity(Mode.COUNTER, 3)
    emails = []
    for n in range(12):
        email = f"tomorrow{n}@example.jp"
        _book(slot_in(1, time(10 + n // 6, 30 * (n // 3 % 2))), email)
        emails.append(email)
    _let_the_server_write()
    go = tmp_path / "go"
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": app.config["SECRET_KEY"],
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(ROOT),
        }
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", REMINDER_WORKER, str(go), str(tmp_path / f"ready{n}")],
            cwd=str(tmp_path),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in range(3)
    ]
    deadline = clock.monotonic() + 120  # two shared cores: building three apps can be slow
    while not all((tmp_path / f"ready{n}").exists() for n in range(3)):
        assert clock.monotonic() < deadline and all(w.poll() is None for w in workers)
        clock.sleep(0.05)
    go.touch()
    outputs = [worker.communicate(timeout=120)[0].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs

    db.session.expire_all()
    reminders = {email: _mails("明日のご相談予約のお知らせ", email) for email in emails}
    assert reminders == dict.fromkeys(emails, 1)
    assert all(
        db.session.scalars(sa.select(Booking.reminder_sent_at).where(Booking.email.in_(emails)))
    )
