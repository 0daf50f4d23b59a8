"""「役に立った」 cannot be stuffed: one vote per browser, and few per address, across workers.

Issue 14 item 13: a script that drops its cookie before each vote had thirty votes counted in a
row (and the public list sorts by them). Now thirty such votes at once, through gunicorn with
four workers, count three (FAQ_VOTE_RATE_LIMIT "3 per day" per address and entry); the others
get 429 and count nothing.
"""

from __future__ import annotations

import threading

import requests
import sqlalchemy as sa

from consult.extensions import db
from faq.models import FaqEntry, FaqVote
from tests.gunicorn import csrf_token, gunicorn_server

VOTES = 30


def test_thirty_cookieless_votes_at_once_count_three(app, publish_entry, database_url, tmp_path):
    entry = publish_entry("粗大ごみの出し方", "申し込んでください。")
    other = publish_entry("住民票の写しの取り方", "窓口で請求してください。")
    entry_id, other_id = entry.id, other.id
    db.session.commit()
    with gunicorn_server(database_url, tmp_path, ready_path="/faq") as server:
        base = server.url
        voters = []
        for _ in range(VOTES):
            session = requests.Session()  # a fresh browser each time: no vote cookie
            page = session.get(
                f"{base}/faq/{entry_id}", headers={"Connection": "close"}, timeout=60
            )
            assert page.status_code == 200, page.text[:300]
            voters.append((session, csrf_token(page.text)))
        barrier = threading.Barrier(VOTES)
        codes: list = [None] * VOTES

        def vote(n: int) -> None:
            session, token = voters[n]
            barrier.wait()
            try:
                response = session.post(
                    f"{base}/faq/{entry_id}/helpful",
                    data={"csrf_token": token},
                    headers={"Connection": "close"},
                    allow_redirects=False,
                    timeout=120,
                )
                codes[n] = response.status_code
            except requests.RequestException:  # pragma: no cover - reported below
                codes[n] = 0

        threads = [threading.Thread(target=vote, args=(n,)) for n in range(VOTES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert codes.count(302) == 3, codes
        assert codes.count(429) == VOTES - 3, codes

        # The limit is per entry: the same address can still say another entry helped.
        session = requests.Session()
        page = session.get(f"{base}/faq/{other_id}", headers={"Connection": "close"}, timeout=60)
        answer = session.post(
            f"{base}/faq/{other_id}/helpful",
            data={"csrf_token": csrf_token(page.text)},
            headers={"Connection": "close"},
            allow_redirects=False,
            timeout=60,
        )
        assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry_id).helpful_count == 3
    assert db.session.get(FaqEntry, other_id).helpful_count == 1
    assert db.session.scalar(sa.select(sa.func.count(FaqVote.id))) == 4
