"""Moves and detail edits of bookings at once, against real gunicorn (issue 14, second pass).

- Two bookings swapping slots at once (each moves into the other's slot) took the new seat and
  then gave the old one back, each locking its new slot first: on PostgreSQL one of them failed
  with "deadlock detected". The slots are now locked in id order.
- A desk saving a booking's meeting URL while the citizen moved it wrote back the SEQUENCE it had
  read, so the move's increment was lost (calendars kept the old time). Both forms carry the
  version they showed: one of them wins and SEQUENCE counts what was done.
"""

from __future__ import annotations

import re
import threading
from datetime import time

import pytest
import requests
import sqlalchemy as sa

from channels.booking import services
from channels.booking.models import Booking, BookingSlot, BookingStatus, Mode
from consult.extensions import db
from consult.models import OutboxMessage
from consult.services.actor import Actor
from tests.conftest import PASSWORD
from tests.gunicorn import all_at_once, csrf_token, get_page, race_server

from .helpers import form_data, set_capacity, slot_in

PUBLIC = Actor(None, "127.0.0.1")


def _book(mode: str, start, email: str) -> Booking:
    data = form_data(start, mode=mode, email=email, phone="")
    booking = services.create_booking(
        PUBLIC,
        services.BookingInput(
            mode=mode,
            starts_at=start,
            name=data["name"],
            kana=data["kana"],
            content=data["content"],
            email=email,
        ),
    )
    db.session.commit()
    return booking


def _counters() -> dict[int, tuple[int, int]]:
    """Each slot's seat counter beside the live bookings that hold one of its seats."""
    db.session.expire_all()
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


def _mails(email: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.recipient == email)
    )


def _move_client(server: str, token: str, start) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = get_page(
        session,
        f"{server}/booking/manage/{token}/move",
        params={"start": f"{start:%Y-%m-%dT%H:%M}"},
    )
    return session, csrf_token(page.text)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_bookings_swapping_slots_at_once_ten_times_never_deadlock(app, database_url, tmp_path):
    set_capacity(Mode.COUNTER, 2)
    times = [slot_in(7, time(10, 0)), slot_in(7, time(11, 0))]
    first = _book("counter", times[0], "first@example.jp")
    second = _book("counter", times[1], "second@example.jp")
    ids = [first.id, second.id]
    manage = [services.manage_token(first), services.manage_token(second)]
    db.session.commit()

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        clients = [_move_client(server, manage[n], times[1 - n]) for n in range(2)]
        for round_ in range(10):
            # Round r: booking n moves from times[(n + r) % 2] into the other one's slot.
            targets = [times[(n + round_ + 1) % 2] for n in range(2)]
            answers = all_at_once(
                2,
                lambda n, targets=targets, round_=round_: clients[n][0].post(
                    f"{server}/booking/manage/{manage[n]}/move",
                    data={
                        "start": f"{targets[n]:%Y-%m-%dT%H:%M}",
                        "version": str(round_),
                        "csrf_token": clients[n][1],
                    },
                    allow_redirects=False,
                    headers={"Connection": "close"},
                    timeout=120,
                ),
            )
            assert [code for code, _ in answers] == [303, 303], (round_, answers)
            counters = _counters()
            assert all(booked == live == 1 for booked, live in counters.values()), counters
            for n in range(2):
                moved = db.session.get(Booking, ids[n])
                assert (moved.starts_at, moved.sequence) == (targets[n], round_ + 1)
            db.session.commit()


def test_details_saved_while_the_citizen_moves_one_wins_and_sequence_counts_it(
    app, database_url, tmp_path, make_staff
):
    set_capacity(Mode.VIDEO, 6)
    start, later = slot_in(7, time(10, 0)), slot_in(7, time(13, 0))
    desk = make_staff("consultant")
    login = desk.login
    rounds = []
    for n in range(5):
        booking = _book("video", start, f"video{n}@example.jp")
        rounds.append((booking.id, services.manage_token(booking), f"video{n}@example.jp"))
    db.session.commit()
    mailed_before = {email: _mails(email) for _, _, email in rounds}
    db.session.commit()

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        staff = requests.Session()
        page = get_page(staff, f"{server}/login")
        staff.post(
            f"{server}/login",
            data={"login": login, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
            headers={"Connection": "close"},
            timeout=60,
        )
        results = []
        for booking_id, token, email in rounds:
            detail = get_page(staff, f"{server}/booking/staff/b/{booking_id}").text
            fields = {"csrf_token": csrf_token(detail), "staff_id": ""}
            shown = re.search(r'name="version"[^>]*value="([^"]*)"', detail)
            if shown:  # the detail form carries the version the desk saw
                fields["version"] = shown[1]
            citizen = _move_client(server, token, later)

            def send(n, b=booking_id, fields=fields, token=token, citizen=citizen):
                if n == 0:
                    return staff.post(
                        f"{server}/booking/staff/b/{b}",
                        data={**fields, "video_url": f"https://meet.example.jp/{b}"},
                        allow_redirects=False,
                        headers={"Connection": "close"},
                        timeout=120,
                    )
                return citizen[0].post(
                    f"{server}/booking/manage/{token}/move",
                    data={
                        "start": f"{later:%Y-%m-%dT%H:%M}",
                        "version": "0",
                        "csrf_token": citizen[1],
                    },
                    allow_redirects=False,
                    headers={"Connection": "close"},
                    timeout=120,
                )

            answers = all_at_once(2, send)
            results.append((booking_id, email, answers))

    for booking_id, email, (saved, moved) in results:
        booking = db.session.get(Booking, booking_id)
        mails = _mails(email) - mailed_before[email]
        won = [saved[0] == 302, moved[0] == 303]
        # Both forms showed version 0: exactly one change is made, SEQUENCE counts it (a
        # calendar that saw version 0 takes the new one), and one mail tells the citizen.
        assert sum(won) == 1, (booking_id, saved[0], moved[0])
        assert booking.sequence == 1, (booking_id, booking.sequence, won)
        assert mails == 1
        assert (booking.starts_at == later) == won[1]
        assert (booking.video_url is not None) == won[0]
        loser = moved[1] if won[0] else saved[1]
        assert "変更されています" in loser or "先に変更されました" in loser, loser[:300]
    counters = _counters()
    assert all(booked == live for booked, live in counters.values()), counters


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_details_saved_over_a_move_committed_meanwhile_do_not_lose_its_sequence(app, make_staff):
    """The interleaving that lost the increment, made to happen: the desk's request has read the
    booking (SEQUENCE 0) when the citizen's move commits (SEQUENCE 1); then the desk saves.
    `booking.sequence += 1` wrote 1 again over the move. Threads with sessions of their own on
    PostgreSQL (on SQLite the desk's read would hold the write lock and the move would wait)."""
    set_capacity(Mode.VIDEO, 2)
    start, later = slot_in(7, time(10, 0)), slot_in(7, time(13, 0))
    booking = _book("video", start, "meanwhile@example.jp")
    booking_id, desk_id = booking.id, make_staff("consultant").id
    db.session.commit()
    db.session.remove()
    read, moved = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def desk() -> None:
        from consult.models import Staff

        with app.app_context():
            try:
                seen = db.session.get(Booking, booking_id)
                assert seen.sequence == 0
                read.set()
                assert moved.wait(timeout=60)
                services.set_details(
                    Actor(db.session.get(Staff, desk_id), "127.0.0.1"),
                    seen,
                    "https://meet.example.jp/room-1",
                    None,
                )
                db.session.commit()
                outcome["desk"] = "saved"
            except services.BookingChanged as refused:
                db.session.rollback()
                outcome["desk"] = refused.message
            except BaseException as error:  # reported by the test thread
                outcome["desk"] = error
            finally:
                read.set()
                db.session.remove()

    def citizen() -> None:
        with app.app_context():
            try:
                assert read.wait(timeout=60)
                services.move_booking(PUBLIC, db.session.get(Booking, booking_id), later)
                db.session.commit()
                outcome["citizen"] = "moved"
            except BaseException as error:  # reported by the test thread
                outcome["citizen"] = error
            finally:
                moved.set()
                db.session.remove()

    threads = [threading.Thread(target=desk), threading.Thread(target=citizen)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcome["citizen"] == "moved"
    assert "ほかの操作で先に変更されました" in str(outcome["desk"]), outcome
    after = db.session.get(Booking, booking_id)
    assert (after.sequence, after.starts_at, after.video_url) == (1, later, None)
