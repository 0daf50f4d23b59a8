"""One case closed from six desks at once, against real gunicorn (issue 14: check-then-act).

Four sync workers (processes) on SQLite and PostgreSQL: the case is closed once, its running
session ends once and the reports count it once; the other desks are told it is already closed.
"""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, Grain, ReportDaily, Status, Ticket, TimelineEntry
from consult.services import tickets
from consult.services.actor import Actor
from consult.timeutil import utcnow
from tests.gunicorn import all_at_once, csrf_token, get_page, race_server
from tests.helpers import PASSWORD


def _log_in(server: str, login: str) -> requests.Session:
    session = requests.Session()
    page = get_page(session, f"{server}/login")
    answer = session.post(
        f"{server}/login",
        data={"login": login, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
        headers={"Connection": "close"},
        allow_redirects=False,
        timeout=60,
    )
    assert answer.status_code == 302, answer.text[:500]
    return session


def test_six_desks_closing_one_case_close_it_once(app, database_url, tmp_path, make_staff):
    first = make_staff("consultant")
    ticket = tickets.create_ticket(
        Actor(first, "127.0.0.1"),
        channel=Channel.COUNTER,
        subject="住民票の写しについて",
        session_started_at=utcnow() - timedelta(minutes=25),
    )
    db.session.commit()
    number, ticket_id = ticket.number, ticket.id
    desks = [make_staff("consultant").login for _ in range(6)]
    db.session.commit()  # SQLite: no transaction (write lock) of ours while the server works

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = [], []
        for login in desks:
            session = _log_in(server, login)
            page = get_page(session, f"{server}/tickets/{number}")
            sessions.append(session)
            tokens.append(csrf_token(page.text))
        answers = all_at_once(
            len(desks),
            lambda n: sessions[n].post(
                f"{server}/tickets/{number}/close",
                data={"csrf_token": tokens[n], "summary": f"窓口{n + 1}で説明し、了承を得た。"},
                headers={"Connection": "close"},
                timeout=120,
            ),
        )

    db.session.expire_all()
    entries = list(
        db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.ticket_id == ticket_id))
    )
    closings = [
        e for e in entries if e.kind is EntryKind.STATUS_CHANGE and e.data.get("to") == "closed"
    ]
    ended = [e for e in entries if e.kind is EntryKind.SESSION and e.body == "対応終了"]
    assert (len(closings), len(ended)) == (1, 1), [(e.kind, e.body) for e in entries]
    sessions_counted = db.session.scalar(
        sa.select(sa.func.sum(ReportDaily.sessions)).where(ReportDaily.grain == Grain.DAY)
    )
    assert sessions_counted == 1
    closed = db.session.get(Ticket, ticket_id)
    assert closed.status is Status.CLOSED
    assert closed.resolution_summary == closings[0].body
    codes = sorted(code for code, _ in answers)
    assert codes == [200] + [422] * 5, answers
    assert sum("相談を完了にしました。" in text for _, text in answers) == 1
    assert sum("この相談はすでに完了しています。" in text for _, text in answers) == 5
