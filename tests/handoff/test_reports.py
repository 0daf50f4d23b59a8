"""Handoffs on the supervisor's dashboard and in the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from consult.extensions import db
from consult.services.actor import Actor
from consult.timeutil import tokyo_today, utcnow
from handoff import services
from handoff.models import Handoff, Response
from tests.consult.http import call
from tests.helpers import sign_in


def test_the_dashboard_shows_handoffs_by_department(app, make_staff, make_department, make_ticket):
    department = make_department(name="市民課")
    other = make_department(name="福祉総務課")
    officer = make_staff("officer", department=department)
    consultant = make_staff("consultant")
    now = utcnow()
    for index in range(4):
        ticket = make_ticket(subject=f"転入{index}")
        [handoff] = services.create(
            Actor(consultant),
            ticket,
            [services.Request(department.id, "窓口に来てください", Response.VISIT)],
        )
        # Known durations: accepted after 4, 6, 8 and 10 minutes; arrived 10 minutes later.
        handoff.accepted_at = now + timedelta(minutes=4 + 2 * index)
        handoff.arrived_at = handoff.accepted_at + timedelta(minutes=10)
    ticket = make_ticket(subject="生活費")
    [bounced] = services.create(
        Actor(consultant), ticket, [services.Request(other.id, "相談", Response.CALLBACK)]
    )
    db.session.commit()
    services.decline(Actor(make_staff("officer", department=other)), bounced, "所管外")
    db.session.commit()
    assert officer  # the department has an officer

    boss = sign_in(app, make_staff("supervisor"))
    today = tokyo_today().isoformat()
    page = call(app, boss, "GET", f"/reports?start={today}&end={today}").get_data(as_text=True)
    assert "担当課への引継ぎ" in page and "引継ぎ 5件（うち差し戻し 1件）" in page
    row = page[page.index("<td>市民課</td>") :][:400]
    assert "7.0分" in row and "17.0分" in row  # medians of 4/6/8/10 and 14/16/18/20

    db.session.commit()
    with app.app_context():
        export = boss.get(f"/reports/export/handoffs.csv?start={today}&end={today}", buffered=True)
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    assert rows[0][:3] == ["相談番号", "依頼日時", "引継ぎ先"]
    assert len(rows) == 6 and "伝達事項" not in rows[0]
    assert sorted(r[8] for r in rows[1:]) == ["", "", "", "", "あり"]
    assert db.session.query(Handoff).count() == 5


def test_median_of_a_histogram():
    from handoff.services.figures import _median

    assert _median([(5, 1)]) == 5.0
    assert _median([(4, 1), (6, 1), (8, 1), (10, 1)]) == 7.0
    assert _median([(9, 1), (3, 2)]) == 3.0  # buckets in any order, counts honoured
    assert _median([(1, 1), (2, 1), (100, 1)]) == 2.0
