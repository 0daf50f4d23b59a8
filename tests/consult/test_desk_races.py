"""Buttons on one case pressed at once from several desks, against real gunicorn (issue 14).

Four sync workers (separate processes) on SQLite and PostgreSQL. Each step (状態変更, 再開,
担当者の変更, 交代, and the counter's 相談開始 and 終了) used to read the row and then write it:
on PostgreSQL every request read the old row before any committed, so each one wrote its entry.
Now one conditional UPDATE decides: one request wins, the others are told why in Japanese and
write nothing.
"""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa

from channels.counter import services as counter
from consult.extensions import db
from consult.models import EntryKind, Status, Ticket, TimelineEntry
from consult.services import tickets
from consult.services.actor import Actor
from consult.timeutil import utcnow
from tests.conftest import PASSWORD
from tests.gunicorn import all_at_once, csrf_token, get_page, race_server


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


def _desks(server: str, logins: list[str], number: str) -> tuple[list, list[str]]:
    """A signed-in client per login, each with the ticket page open (its CSRF token)."""
    sessions, tokens = [], []
    for login in logins:
        session = _log_in(server, login)
        page = get_page(session, f"{server}/tickets/{number}")
        sessions.append(session)
        tokens.append(csrf_token(page.text))
    return sessions, tokens


def _press(server, sessions, tokens, path: str, data: dict | None = None, follow=False):
    return all_at_once(
        len(sessions),
        lambda n: sessions[n].post(
            f"{server}{path}",
            data={"csrf_token": tokens[n], **(data or {})},
            headers={"Connection": "close"},
            allow_redirects=follow,
            timeout=120,
        ),
    )


def _entries(ticket_id: int, kind: EntryKind) -> list[TimelineEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == kind)
            .order_by(TimelineEntry.id)
        )
    )


def _case(staff, **kwargs) -> Ticket:
    from consult.models import Channel

    ticket = tickets.create_ticket(
        Actor(staff, "127.0.0.1"), channel=Channel.PHONE, subject="国民健康保険の手続き", **kwargs
    )
    db.session.commit()
    return ticket


def test_status_change_and_reopen_pressed_at_once_happen_once(
    app, database_url, tmp_path, make_staff
):
    first = make_staff("consultant")
    ticket = _case(first)
    number, ticket_id = ticket.number, ticket.id
    logins = [make_staff("consultant").login for _ in range(6)]
    db.session.commit()  # SQLite: no transaction (write lock) of ours while the server works

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = _desks(server, logins, number)
        resolved = _press(
            server,
            sessions,
            tokens,
            f"/tickets/{number}/status",
            {"status": "resolved", "reason": "制度を説明し、了承を得た。"},
        )
        reopened = _press(
            server,
            sessions,
            tokens,
            f"/tickets/{number}/reopen",
            {"reason": "追加の質問がありました。"},
        )

    changes = _entries(ticket_id, EntryKind.STATUS_CHANGE)
    assert [(e.data["from"], e.data["to"]) for e in changes] == [
        ("received", "resolved"),
        ("resolved", "in_progress"),
    ]
    assert db.session.get(Ticket, ticket_id).status is Status.IN_PROGRESS
    assert sorted(code for code, _ in resolved) == [302] + [422] * 5, resolved
    assert sorted(code for code, _ in reopened) == [302] + [422] * 5, reopened
    # Those who read the old status lost the UPDATE; those who read the new one were refused
    # before it: either way the answer says what happened, in Japanese.
    lost = ("この相談の状態がほかの操作で変わりました。", "この相談はすでに「解決」です。")
    assert all(any(m in text for m in lost) for code, text in resolved if code == 422), resolved
    lost = (
        "この相談の状態がほかの操作で変わりました。",
        "再開できるのは「解決」または「完了」の相談だけです。",
    )
    assert all(any(m in text for m in lost) for code, text in reopened if code == 422), reopened


def test_two_consultants_taking_one_case_at_once_one_gets_it(
    app, database_url, tmp_path, make_staff
):
    ticket = _case(make_staff("consultant"))
    number, ticket_id = ticket.number, ticket.id
    pair = [make_staff("consultant", full_name=name) for name in ("相談 一郎", "相談 二郎")]
    ids = {staff.login: staff.id for staff in pair}
    names = {staff.id: staff.full_name for staff in pair}
    logins = list(ids)
    db.session.commit()

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = _desks(server, logins, number)
        # Each presses 担当者を変更 with themself chosen, from a page that showed 未割り当て.
        answers = all_at_once(
            2,
            lambda n: sessions[n].post(
                f"{server}/tickets/{number}/assign",
                data={
                    "csrf_token": tokens[n],
                    "assignee_id": str(ids[logins[n]]),
                    "shown_assignee": "none",
                },
                headers={"Connection": "close"},
                allow_redirects=False,
                timeout=120,
            ),
        )

    assignments = _entries(ticket_id, EntryKind.ASSIGNMENT)
    assert len(assignments) == 1, [e.body for e in assignments]
    holder = db.session.get(Ticket, ticket_id).assignee_id
    assert assignments[0].data["assignee_id"] == holder
    assert sorted(code for code, _ in answers) == [302, 422], answers
    loser = next(text for code, text in answers if code == 422)
    assert f"今は{names[holder]}さんが担当しています。" in loser


def test_take_over_pressed_four_times_at_once_is_written_once(
    app, database_url, tmp_path, make_staff
):
    desk = make_staff("consultant", full_name="窓口 一郎")
    ticket = _case(desk, assignee=desk, session_started_at=utcnow() - timedelta(minutes=70))
    number, ticket_id = ticket.number, ticket.id
    boss = make_staff("supervisor", full_name="責任 花子")
    boss_id, login = boss.id, boss.login
    db.session.commit()

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = _desks(server, [login] * 4, number)
        answers = _press(server, sessions, tokens, f"/tickets/{number}/takeover", follow=True)

    takeovers = [e for e in _entries(ticket_id, EntryKind.SAFETY) if e.data.get("takeover")]
    assert [e.body for e in takeovers] == ["交代：窓口 一郎 → 責任 花子"]
    assert len(_entries(ticket_id, EntryKind.ASSIGNMENT)) == 1
    assert db.session.get(Ticket, ticket_id).assignee_id == boss_id
    texts = [text for _, text in answers]
    assert sum("交代しました。" in text for text in texts) == 1, [c for c, _ in answers]
    assert sum("この相談はすでにあなたが担当しています。" in text for text in texts) == 3


def test_counter_steps_pressed_at_once_are_written_once(app, database_url, tmp_path, make_staff):
    desk = make_staff("consultant")
    visit = counter.receive(
        Actor(desk, "127.0.0.1"),
        counter.WalkIn(category_id=None, room=1, first_note="介護保険の申請について"),
    )
    db.session.commit()
    ticket_id, number, reception = visit.ticket_id, visit.ticket.number, visit.reception_number
    logins = [make_staff("consultant").login for _ in range(4)]
    db.session.commit()

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = _desks(server, logins, number)
        served = _press(
            server, sessions, tokens, f"/tickets/{number}/visit/serve", {"room": "2"}, follow=True
        )
        finished = _press(
            server, sessions, tokens, f"/tickets/{number}/visit/finish", {"room": "2"}, follow=True
        )

    steps = [e.body.split("（")[0] for e in _entries(ticket_id, EntryKind.SESSION)]
    assert steps == ["窓口受付", "相談開始", "対応終了", "窓口対応終了"], steps
    for answers, done in ((served, "相談を開始しました。"), (finished, "窓口対応を終了しました。")):
        texts = [text for _, text in answers]
        assert sum(done in text for text in texts) == 1, [code for code, _ in answers]
        assert sum(f"受付番号 {reception} " in text for text in texts) == 3
