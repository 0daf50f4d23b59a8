"""One FAQ entry approved by five supervisors at once, against real gunicorn (issue 14).

Four sync workers (processes) on SQLite and PostgreSQL: the entry is published once (one
revision), nobody gets an error page, and the others are told it is already published.
"""

from __future__ import annotations

import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.services.actor import Actor
from faq import services
from faq.models import FaqEntry, FaqRevision, FaqStatus
from tests.gunicorn import all_at_once, csrf_token, get_page, race_server
from tests.helpers import PASSWORD


def test_five_supervisors_approving_one_entry_publish_it_once(
    app, database_url, tmp_path, make_staff
):
    author = Actor(make_staff("consultant"), "127.0.0.1")
    entry = services.create_entry(
        author,
        question="粗大ごみの出し方を教えてください。",
        answer="粗大ごみ受付センターに電話で申し込み、処理券を貼って出してください。",
        visibility="public",
    )
    services.submit(author, entry)
    db.session.commit()
    entry_id = entry.id
    approvers = [make_staff("supervisor").login for _ in range(5)]
    db.session.commit()  # SQLite: no transaction (write lock) of ours while the server works

    with race_server(database_url, tmp_path, secret_key=app.config["SECRET_KEY"]) as server:
        sessions, tokens = [], []
        for login in approvers:
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
            page = get_page(session, f"{server}/staff/faq/{entry_id}")
            sessions.append(session)
            tokens.append(csrf_token(page.text))
        answers = all_at_once(
            len(approvers),
            lambda n: sessions[n].post(
                f"{server}/staff/faq/{entry_id}/approve",
                data={"csrf_token": tokens[n]},
                headers={"Connection": "close"},
                timeout=120,
            ),
        )

    db.session.expire_all()
    published = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(FaqRevision)
        .where(FaqRevision.entry_id == entry_id, FaqRevision.action == "publish")
    )
    assert published == 1
    assert db.session.get(FaqEntry, entry_id).status is FaqStatus.PUBLISHED
    assert [code for code, _ in answers] == [200] * len(approvers), [c for c, _ in answers]
    assert sum("承認し、公開しました。" in text for _, text in answers) == 1
    assert sum("このFAQはすでに公開されています。" in text for _, text in answers) == 4
