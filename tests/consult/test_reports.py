"""Report figures against data whose counts are known by construction.

Imabari's centre: 1,282 consultations in seven months against 229 in the same months a year
before. The fixture puts tickets exactly on both sides of the fiscal year's turn (31 March
23:59:59 and 1 April 00:00 in Tokyo) and of the period's end, so an off-by-a-timezone error
shows up as a wrong count.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, Channel, Priority, Status, Ticket
from consult.services import report_rollup, reports
from consult.timeutil import TOKYO
from tests.consult.http import call
from tests.helpers import sign_in

CHANNEL_SPLIT = {"counter": 500, "phone": 400, "email": 200, "line": 150, "booking": 32}


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def _rows(moments, channel_split=None, category_id=None):
    channels = []
    for channel, n in (channel_split or {"counter": len(moments)}).items():
        channels += [channel] * n
    assert len(channels) == len(moments)
    return list(zip(moments, channels, strict=True))


_seq = {"n": 0}


def insert(rows, category_id=None, duration=None):
    values = []
    for moment, channel in rows:
        _seq["n"] += 1
        n = _seq["n"]
        values.append(
            {
                "number": f"T-{n:07d}",
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
    # Written around the ticket services, as an import would: recompute the reports' rollup.
    report_rollup.rebuild()
    db.session.commit()


def spread(start: datetime, end: datetime, count: int) -> list[datetime]:
    """`count` moments from start to end inclusive (both ends used)."""
    step = (end - start) / (count - 1)
    return [start + step * i for i in range(count)]


@pytest.fixture
def imabari(app, make_category):
    procedures = make_category("各種手続き")
    # The period: 2025-04-01 00:00 … 2025-10-31 23:59:59 Tokyo, 1,282 tickets.
    now = spread(tokyo(2025, 4, 1), tokyo(2025, 10, 31, 23, 59, 59), 1282)
    insert(_rows(now, CHANNEL_SPLIT), category_id=procedures.id, duration=None)
    # The year before: 229, in the same months.
    insert(_rows(spread(tokyo(2024, 4, 1), tokyo(2024, 10, 31, 23, 59, 59), 229)))
    # Just outside: the last second of FY2024, the first second after the period,
    # and the last second of FY2023.
    insert(_rows([tokyo(2025, 3, 31, 23, 59, 59)] * 7))
    insert(_rows([tokyo(2025, 11, 1)] * 5))
    insert(_rows([tokyo(2024, 3, 31, 23, 59, 59)] * 3))
    return procedures


def test_period_counts_and_the_year_before(imabari):
    period = reports.parse_period({"start": "2025-04-01", "end": "2025-10-31"})
    assert reports.total(period) == 1282
    assert reports.total(period.previous_year()) == 229
    assert reports.by_channel(period) == CHANNEL_SPLIT


def test_fiscal_year_boundary(imabari):
    fy2025, fy2024 = reports.fiscal_period(2025), reports.fiscal_period(2024)
    assert (fy2025.start, fy2025.end) == (date(2025, 4, 1), date(2026, 3, 31))
    assert reports.total(fy2025) == 1282 + 5
    assert reports.total(fy2024) == 229 + 7
    assert reports.total(reports.fiscal_period(2023)) == 3
    # 1 April 00:00 Tokyo is 31 March 15:00 UTC: it counts on 1 April, in the new year.
    days = reports.by_day_and(reports.parse_period({"fy": "2025", "q": "1"}), Ticket.channel)
    assert days[(date(2025, 4, 1), "counter")] >= 1
    assert not any(day < date(2025, 4, 1) for day, _ in days)
    q4 = reports.fiscal_period(2024, 4)
    assert (q4.start, q4.end) == (date(2025, 1, 1), date(2025, 3, 31))
    assert reports.total(q4) == 7


def test_quarters_add_up(imabari):
    quarters = [reports.total(reports.fiscal_period(2025, q)) for q in (1, 2, 3, 4)]
    assert sum(quarters) == reports.total(reports.fiscal_period(2025))


def test_dashboard_shows_the_figures(app, imabari, make_staff):
    boss = sign_in(app, make_staff("supervisor"))
    response = call(app, boss, "GET", "/reports?start=2025-04-01&end=2025-10-31")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "1,282件" in page and "前年同期 229件" in page and "+460%" in page
    assert "<svg" in page and "月ごとの相談件数（経路別）" in page
    assert "各種手続き" in page
    printed = call(app, boss, "GET", "/reports/quarterly?fy=2025&q=1").get_data(as_text=True)
    assert "2025年度 第1四半期" in printed and "2025年4月" in printed and "<svg" in printed


def test_bad_period_is_a_japanese_message(app, make_staff):
    boss = sign_in(app, make_staff("supervisor"))
    response = call(app, boss, "GET", "/reports?start=2025-13-01&end=2025-10-31")
    assert response.status_code == 422
    assert "YYYY-MM-DD" in response.get_data(as_text=True)
    response = call(app, boss, "GET", "/reports?start=2025-10-01&end=2025-04-01")
    assert "終了日は開始日と同じか" in response.get_data(as_text=True)


def fetch(app, client, url):
    """A streamed download, read whole (the shared `call` helper closes the stream)."""
    db.session.commit()
    with app.app_context():
        return client.get(url, buffered=True)


def test_csv_has_a_bom_and_no_personal_data_unless_an_admin_asks(app, imabari, make_staff):
    boss = sign_in(app, make_staff("supervisor"))
    url = "/reports/export/tickets.csv?start=2025-04-01&end=2025-10-31"
    response = fetch(app, boss, url)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["相談番号", "受付日時", "経路"]
    assert len(rows) == 1 + 1282
    assert "件名" not in rows[0] and not any("件名1" in cell for cell in rows[1])
    assert rows[1][1] == "2025/04/01 00:00"
    # A supervisor may not ask for personal data; an administrator may, and it is audited.
    assert call(app, boss, "GET", url + "&personal=1").status_code == 403
    admin = sign_in(app, make_staff("admin"))
    response = fetch(app, admin, url + "&personal=1")
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert "件名" in rows[0]
    details = db.session.scalars(
        sa.select(AuditEvent.detail).where(AuditEvent.action == "export")
    ).all()
    assert "csv 2025-04-01..2025-10-31 personal=yes" in details
    assert "csv 2025-04-01..2025-10-31 personal=no" in details
    assert call(app, admin, "GET", "/reports/export/nothing.csv").status_code == 404


def test_open_tickets_by_age_and_incidents(app, make_ticket, make_staff):
    from consult.services import safety
    from consult.services.actor import Actor
    from consult.timeutil import utcnow

    old = make_ticket(at=utcnow() - timedelta(days=40))
    make_ticket()
    assert old.is_open
    assert dict(reports.open_by_age()) == {"1日以内": 1, "2〜7日": 0, "8〜30日": 0, "31日以上": 1}
    consultant = make_staff("consultant")
    safety.create_incident(
        Actor(consultant, "127.0.0.1"),
        safety.IncidentInput(
            occurred_at=utcnow(),
            categories=["abuse", "threat"],
            description="脅された",
            follow_ups=[],
            involved_ids=[],
            support_ids=[],
        ),
    )
    db.session.commit()
    period = reports.parse_period({})
    assert reports.incidents_by_category(period) == {"abuse": 1, "threat": 1}


def test_sections_are_pluggable(app, make_staff):
    """Another package (handoff) adds a section through the registry; it renders in order."""
    from consult import plugins

    seen = []

    def render(period):
        seen.append(period)
        return "consult/reports/_open_age.html", {"items": [], "total": 42, "chart": ""}

    section = plugins.ReportSection("test_plugin", 40, render)
    plugins.install(app, plugins.Plugin(name="test_plugin", report_sections=(section,)))
    boss = sign_in(app, make_staff("supervisor"))
    page = call(app, boss, "GET", "/reports?fy=2025").get_data(as_text=True)
    assert "未完了の相談（現在）：42件" in page
    assert seen and seen[0].label == "2025年度"
