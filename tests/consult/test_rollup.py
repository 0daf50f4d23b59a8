"""The kernel's one rollup mechanism (consult.rollup), which keeps both the reports' rollup
(tickets) and the handoff overview's (handoffs) in step: any ORM write is counted in its own
flush, an UPDATE around the ORM through snapshot()/moved(), and a period reads month rows for its
whole months. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from consult import rollup
from consult.extensions import db
from consult.models import Channel, Grain, Ticket
from consult.services import report_rollup, tickets
from consult.services.actor import Actor
from consult.timeutil import TOKYO
from handoff import rollup as handoff_rollup


def test_both_rollups_are_installed_on_the_app_through_the_one_mechanism(app):
    installed = app.extensions[rollup.EXTENSION_KEY]
    assert report_rollup.TICKETS in installed and handoff_rollup.HANDOFFS in installed
    assert [r.source.__name__ for r in installed].count("Ticket") == 1


def test_a_change_written_straight_through_the_orm_is_counted(app, make_staff, make_category):
    """No service, no signal: a data fix through the ORM moves the figures with it (before,
    only the ticket services' signals moved the reports' rollup), and a delete takes them away."""
    desk = Actor(make_staff("consultant"), "127.0.0.1")
    category = make_category("税")
    ticket = tickets.create_ticket(
        desk, channel=Channel.PHONE, subject="確認", at=datetime(2026, 5, 31, 23, 30, tzinfo=TOKYO)
    )
    db.session.commit()
    ticket.category_id = category.id
    ticket.created_at = datetime(2026, 6, 1, 9, tzinfo=TOKYO)  # June now, in another month
    db.session.commit()
    assert report_rollup.stored() == report_rollup.recount()
    daily = report_rollup.stored()["daily"]
    assert ("day", date(2026, 5, 31), "phone") not in daily
    assert daily[("month", date(2026, 6, 1), "phone")] == (1, 0, 0)


def test_a_conditional_update_counts_once_and_a_lost_one_not_at_all(app, make_staff):
    desk = Actor(make_staff("consultant"), "127.0.0.1")
    ticket = tickets.create_ticket(desk, channel=Channel.COUNTER, subject="窓口")
    tickets.start_session(desk, ticket)
    db.session.commit()
    tickets.end_session(desk, ticket)
    db.session.commit()
    # A second desk that read the ticket before the first one ended it (a stale read): its
    # conditional UPDATE matches nothing, and the refreshed ticket must not count again.
    set_committed_value(ticket, "session_ended_at", None)
    tickets.end_session(desk, ticket)
    db.session.commit()
    assert report_rollup.stored() == report_rollup.recount()
    sessions = sum(
        db.session.scalars(
            sa.select(report_rollup.ReportDaily.sessions).where(
                report_rollup.ReportDaily.grain == Grain.DAY
            )
        )
    )
    assert sessions == 1
    assert db.session.get(Ticket, ticket.id).duration_seconds is not None


def test_a_period_reads_whole_months_from_month_rows():
    assert rollup.ranges(date(2026, 1, 10), date(2026, 3, 5)) == [
        (Grain.MONTH, date(2026, 2, 1), date(2026, 2, 28)),
        (Grain.DAY, date(2026, 1, 10), date(2026, 1, 31)),
        (Grain.DAY, date(2026, 3, 1), date(2026, 3, 5)),
    ]
    assert rollup.ranges(date(2026, 4, 1), date(2027, 3, 31)) == [
        (Grain.MONTH, date(2026, 4, 1), date(2027, 3, 31))
    ]
    assert rollup.ranges(date(2026, 1, 10), date(2026, 1, 20)) == [
        (Grain.DAY, date(2026, 1, 10), date(2026, 1, 20))
    ]
