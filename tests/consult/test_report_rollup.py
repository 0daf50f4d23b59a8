"""The reports' per-day rollup stays equal to a recount from the tickets, whatever the ticket
services do (create, change category, end a session, close, reopen), across the fiscal year's
turn; it rolls back with the change that moved it; `madoguchi reports rebuild` restores it; the
migration fills it from the tickets already there. On SQLite and PostgreSQL (the `app` fixture
runs both)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from consult.extensions import db
from consult.models import (
    Channel,
    Grain,
    Priority,
    ReportCategoryDaily,
    ReportDaily,
    ReportSessionDaily,
    Status,
    Ticket,
)
from consult.services import report_rollup, reports, tickets
from consult.services.actor import Actor
from consult.timeutil import TOKYO
from tests.conftest import make_app
from tests.test_migrations import empty_url  # noqa: F401 (the fixture)


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def assert_in_step() -> None:
    db.session.flush()
    assert report_rollup.stored() == report_rollup.recount()


@pytest.fixture
def desk(app, make_staff):
    return Actor(make_staff("consultant"), "127.0.0.1")


def test_rollup_follows_every_ticket_change(app, desk, make_category):
    procedures, tax = make_category("各種手続き"), make_category("税")
    # Both sides of the fiscal year's turn: 31 March 23:59:59 and 1 April 00:00 in Tokyo
    # (31 March 14:59:59 and 15:00 UTC).
    last_of_fy2024 = tickets.create_ticket(
        desk, channel=Channel.COUNTER, subject="年度末", at=tokyo(2025, 3, 31, 23, 59, 59)
    )
    first_of_fy2025 = tickets.create_ticket(
        desk,
        channel=Channel.PHONE,
        subject="年度初め",
        category_id=procedures.id,
        at=tokyo(2025, 4, 1),
    )
    later = tickets.create_ticket(
        desk, channel=Channel.EMAIL, subject="メール", category_id=tax.id, at=tokyo(2025, 4, 2, 9)
    )
    db.session.commit()
    assert_in_step()
    daily = report_rollup.stored()["daily"]
    assert daily[("day", date(2025, 3, 31), "counter")] == (1, 0, 0)
    assert daily[("day", date(2025, 4, 1), "phone")] == (1, 0, 0)
    assert daily[("month", date(2025, 3, 1), "counter")] == (1, 0, 0)
    assert reports.total(reports.fiscal_period(2024)) == 1
    assert reports.total(reports.fiscal_period(2025)) == 2

    # Category changes: none → one, one → another, one → none.
    for ticket, category_id in (
        (last_of_fy2024, procedures.id),
        (first_of_fy2025, tax.id),
        (later, None),
    ):
        tickets.update_details(
            desk, ticket, subject=ticket.subject, category_id=category_id, priority="normal"
        )
        assert_in_step()
    db.session.commit()
    assert reports.by_category(reports.fiscal_period(2025)) == {tax.id: 1, None: 1}
    assert reports.by_category(reports.fiscal_period(2024)) == {procedures.id: 1}

    # Sessions: ended by hand (45 minutes), by closing, and a category change after the end
    # moves the session's figures with the ticket.
    tickets.start_session(desk, last_of_fy2024, at=tokyo(2025, 3, 31, 23, 59, 59))
    tickets.end_session(desk, last_of_fy2024, at=tokyo(2025, 4, 1, 0, 44, 59))
    assert last_of_fy2024.duration_seconds == 45 * 60
    assert_in_step()
    tickets.update_details(
        desk, last_of_fy2024, subject="年度末", category_id=tax.id, priority="normal"
    )
    assert_in_step()
    tickets.start_session(desk, first_of_fy2025, at=tokyo(2025, 4, 1, 0, 1))
    tickets.close(desk, first_of_fy2025, "案内しました")  # ends the running session now
    assert first_of_fy2025.duration_seconds > 24 * 3600
    assert_in_step()
    db.session.commit()

    # The session counts on the ticket's day (31 March: fiscal 2024), not the day it ended.
    assert reports.long_sessions(reports.fiscal_period(2024), [30, 46]) == {"counter": [1, 0]}
    assert reports.long_sessions(reports.fiscal_period(2025), [30, 1440]) == {"phone": [1, 1]}

    # Closing and reopening move no figure; a reopened ticket's category can change again.
    tickets.close(desk, later, "回答しました")
    tickets.reopen(desk, later, "追加の質問")
    tickets.update_details(
        desk, later, subject="メール", category_id=procedures.id, priority="normal"
    )
    db.session.commit()
    assert_in_step()


def test_rollup_rolls_back_with_the_change(app, desk, make_category):
    category = make_category()
    ticket = tickets.create_ticket(desk, channel=Channel.LINE, subject="LINE", at=tokyo(2025, 5, 1))
    db.session.commit()
    before = report_rollup.stored()
    tickets.create_ticket(desk, channel=Channel.LINE, subject="取消", at=tokyo(2025, 5, 1))
    tickets.update_details(desk, ticket, subject="LINE", category_id=category.id, priority="normal")
    db.session.flush()
    assert report_rollup.stored() != before
    db.session.rollback()
    assert report_rollup.stored() == before == report_rollup.recount()


def test_long_sessions_are_exact_for_any_threshold(app, desk):
    durations = [0, 59, 60, 29 * 60 + 59, 30 * 60, 60 * 60 - 1, 60 * 60, 90 * 60, 1440 * 60 + 5]
    start = tokyo(2025, 6, 2, 9)
    for seconds in durations:
        ticket = tickets.create_ticket(desk, channel=Channel.COUNTER, subject="窓口", at=start)
        tickets.start_session(desk, ticket, at=start)
        tickets.end_session(desk, ticket, at=start + timedelta(seconds=seconds))
    db.session.commit()
    assert_in_step()
    thresholds = [1, 30, 60, 61, 1440]
    expected = [sum(1 for s in durations if s >= m * 60) for m in thresholds]
    assert reports.long_sessions(reports.fiscal_period(2025), thresholds) == {"counter": expected}


def _raw_tickets(rows) -> None:
    """Tickets written around the services (as an import would): the rollup does not see them."""
    values = []
    for n, (moment, channel, category_id, duration) in enumerate(rows, 1):
        values.append(
            {
                "number": f"R-{n:07d}",
                "fiscal_year": 2000,
                "sequence": n,
                "channel": Channel(channel),
                "category_id": category_id,
                "subject": f"件名{n}",
                "status": Status.CLOSED,
                "is_open": False,
                "priority": Priority.NORMAL,
                "created_at": moment,
                "last_activity_at": moment,
                "duration_seconds": duration,
            }
        )
    db.session.execute(sa.insert(Ticket), values)


def _sample(category_id):
    return [
        (tokyo(2025, 3, 31, 23, 59, 59), "counter", None, 31 * 60),
        (tokyo(2025, 4, 1), "counter", category_id, 61 * 60),
        (tokyo(2025, 4, 1, 12), "phone", category_id, None),
        (tokyo(2025, 4, 2, 8), "email", None, None),
        (tokyo(2025, 4, 3, 23, 59), "line", category_id, None),
    ]


def test_reports_rebuild_restores_a_corrupted_rollup(app, desk, make_category):
    category = make_category()
    _raw_tickets(_sample(category.id))
    tickets.create_ticket(desk, channel=Channel.BOOKING, subject="予約", at=tokyo(2025, 4, 2))
    db.session.commit()
    assert report_rollup.stored() != report_rollup.recount()  # the raw rows are not in it

    runner = app.test_cli_runner()
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "統計の日別集計を作り直しました" in result.output
    db.session.expire_all()
    assert_in_step()
    good = report_rollup.stored()

    # Corrupt it: wrong counts, a lost session row, a row for a day with no tickets.
    for model in (ReportDaily, ReportCategoryDaily):
        db.session.execute(sa.update(model).values(tickets=model.tickets + 5))
    db.session.execute(sa.delete(ReportSessionDaily).where(ReportSessionDaily.minutes == 61))
    db.session.add(
        ReportDaily(
            grain=Grain.DAY,
            day=date(2025, 4, 10),
            channel=Channel.PHONE,
            tickets=9,
            sessions=0,
            session_seconds=0,
        )
    )
    db.session.commit()
    assert report_rollup.stored() != good

    # A ranged rebuild repairs the days in its range and the months that hold them only.
    ranged = ["reports", "rebuild", "--from", "2025-04-01", "--to", "2025-04-10"]
    result = runner.invoke(args=ranged)
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    stored, recount = report_rollup.stored(), report_rollup.recount()
    for table in ("daily", "category", "sessions"):
        in_april = {k: v for k, v in stored[table].items() if k[1].month == 4}
        assert in_april == {k: v for k, v in recount[table].items() if k[1].month == 4}
    assert stored["daily"][("day", date(2025, 3, 31), "counter")] == (1 + 5, 1, 31 * 60)
    assert stored != recount

    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert report_rollup.stored() == good == report_rollup.recount()

    bad = runner.invoke(args=["reports", "rebuild", "--from", "2025-04-02", "--to", "2025-04-01"])
    assert bad.exit_code != 0 and "終了日は開始日と同じか" in bad.output


@pytest.mark.slow  # migrations on a new database
def test_the_migration_fills_the_rollup_from_existing_tickets(empty_url, tmp_path):  # noqa: F811
    app = make_app(empty_url, tmp_path)
    with app.app_context():
        upgrade(revision="0005_safety")
        _raw_tickets(_sample(None))
        db.session.commit()
        db.session.remove()
        upgrade()
        assert_in_step()
        assert reports.total(reports.fiscal_period(2025)) == 4
        assert reports.total(reports.fiscal_period(2024)) == 1
        assert reports.long_sessions(reports.fiscal_period(2024), [30, 60]) == {"counter": [1, 0]}
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-31", "2025-04-01"),  # two days across the fiscal year's turn
        ("2025-01-15", "2025-06-14"),  # ragged at both ends, whole months inside
        ("2025-02-01", "2025-02-28"),  # one whole month
        ("2025-02-02", "2025-02-27"),  # inside one month
        ("2024-12-31", "2026-01-01"),  # a day either side of a whole year
    ],
)
def test_any_period_adds_up_to_the_tickets(app, make_category, start, end):
    """Whole months come from month rows, ragged ends from day rows: the sum is exact."""
    category = make_category()
    moments = [tokyo(2024, 12, 31, 23, 59, 59) + timedelta(hours=37 * k) for k in range(260)]
    rows = [
        (
            moment,
            ["counter", "phone", "email", "line", "booking"][k % 5],
            category.id if k % 3 else None,
            (k * 7 % 100) * 60 if k % 5 < 2 else None,
        )
        for k, moment in enumerate(moments)
    ]
    _raw_tickets(rows)
    report_rollup.rebuild()
    db.session.commit()
    period = reports.parse_period({"start": start, "end": end})
    inside = [r for r in rows if period.start_utc <= r[0] < period.end_utc]
    assert reports.total(period) == len(inside)
    channels: dict[str, int] = {}
    categories: dict[int | None, int] = {}
    for _, channel, category_id, _ in inside:
        channels[channel] = channels.get(channel, 0) + 1
        categories[category_id] = categories.get(category_id, 0) + 1
    assert reports.by_channel(period) == channels
    assert reports.by_category(period) == categories
    expected = {}
    for _, channel, _, duration in inside:
        if duration is not None:
            counts = expected.setdefault(channel, [0, 0])
            counts[0] += duration >= 30 * 60
            counts[1] += duration >= 60 * 60
    assert reports.long_sessions(period, [30, 60]) == expected
