"""A help alert answered and closed by several people at once, against real gunicorn (issue 14).

Four sync workers (processes) on SQLite and PostgreSQL. 向かいます pressed in four tabs at once
is recorded once and shows no error page; four people closing the alert at once close it once
(one entry on the ticket), and the others are told it is already closed.
"""

from __future__ import annotations

import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    Channel,
    EntryKind,
    HelpAlert,
    HelpResponse,
    OutboxMessage,
    TimelineEntry,
)
from consult.services import safety, tickets
from consult.services.actor import Actor
from tests.gunicorn import all_at_once, csrf_token, get_page, race_server
from tests.helpers import PASSWORD


def _log_in(server: str, login: str) -> tuple[requests.Session, str]:
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
    return session, csrf_token(get_page(session, f"{server}/").text)


def _post_all(sessions, tokens, url: str):
    return all_at_once(
        len(sessions),
        lambda n: sessions[n].post(
            url, data={"csrf_token": tokens[n]}, headers={"Connection": "close"}, timeout=120
        ),
    )


def test_help_alert_answered_and_closed_by_many_at_once(app, database_url, tmp_path, make_staff):
    consultant = Actor(make_staff("consultant"), "127.0.0.1")
    ticket = tickets.create_ticket(consultant, channel=Channel.COUNTER, subject="窓口での相談")
    alert = safety.raise_alert(consultant, place=next(iter(safety.PLACES)), ticket=ticket)
    db.session.commit()
    alert_id, ticket_id = alert.id, ticket.id
    supervisors = [make_staff("supervisor").login for _ in range(4)]
    db.session.commit()  # SQLite: no transaction (write lock) of ours while the server works

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        tabs = [_log_in(server, supervisors[0]) for _ in range(4)]
        coming = _post_all(
            [s for s, _ in tabs], [t for _, t in tabs], f"{server}/alerts/{alert_id}/coming"
        )
        closers = [tabs[0]] + [_log_in(server, login) for login in supervisors[1:]]
        closing = _post_all(
            [s for s, _ in closers], [t for _, t in closers], f"{server}/alerts/{alert_id}/close"
        )

    db.session.expire_all()
    entries = list(
        db.session.scalars(
            sa.select(TimelineEntry).where(
                TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.SAFETY
            )
        )
    )
    responses = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(HelpResponse)
        .where(HelpResponse.alert_id == alert_id)
    )
    assert responses == 1
    assert sum(e.data.get("alert") == "coming" for e in entries) == 1, [e.body for e in entries]
    assert [code for code, _ in coming] == [200] * 4, coming
    assert sum(e.body == "応援要請を対応終了にしました" for e in entries) == 1
    assert db.session.get(HelpAlert, alert_id).closed_at is not None
    assert [code for code, _ in closing] == [200] * 4, closing
    assert sum("対応終了にしました。" in text for _, text in closing) == 1
    assert sum(safety.ALERT_CLOSED in text for _, text in closing) == 3


def test_help_pressed_in_four_tabs_at_once_raises_one_alert(
    app, database_url, tmp_path, make_staff
):
    """Issue 15: the "is there a recent one?" read let simultaneous presses both insert. The
    unique press key lets one in; every tab gets that alert's id, one mail goes out."""
    login = make_staff("consultant").login
    db.session.commit()
    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        tabs = [_log_in(server, login) for _ in range(4)]
        answers = all_at_once(
            4,
            lambda n: tabs[n][0].post(
                f"{server}/alerts",
                data={"csrf_token": tabs[n][1], "place": "room2"},
                headers={"Connection": "close", "Accept": "application/json"},
                timeout=120,
            ),
        )
    assert [code for code, _ in answers] == [200] * 4, answers
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1
    assert len({text for _, text in answers}) == 1  # the same alert for every tab
