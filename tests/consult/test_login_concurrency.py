"""Twenty wrong passwords for one account sent at once to gunicorn with four sync workers.

Issue 14 item 12: the count and the check were two steps (read the failures, then verify and
record), so concurrent guesses that all read "4 failures" were all checked: eight of twenty on
PostgreSQL. Now the attempt is counted before the hash, in one upsert: exactly five are checked
against the hash, the fifth locks the account, and the right password is refused afterwards.
"""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, LoginAttempt, RateLimitCounter
from tests.gunicorn import csrf_token, gunicorn_server

GUESSES = 20
LOCKED = "ロックされています"
FAILED = "ログインIDまたはパスワードが正しくありません。"


@pytest.fixture(params=["database", "redis"])
def counts_in(request) -> dict[str, str]:
    """Settings that keep the counts in the database (the default) or in Redis."""
    if request.param == "redis":
        return {"REDIS_URL": request.getfixturevalue("redis_url")}
    return {}


def _login_form(base: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{base}/login", headers={"Connection": "close"}, timeout=60)
    assert page.status_code == 200, page.text[:300]
    return session, csrf_token(page.text)


def test_twenty_wrong_guesses_at_once_check_five(
    app, make_staff, database_url, tmp_path, counts_in
):
    staff = make_staff("consultant")
    login, staff_id = staff.login, staff.id
    db.session.commit()
    with gunicorn_server(
        database_url, tmp_path, counts_in, threads=1, ready_path="/login"
    ) as server:
        base = server.url
        forms = [_login_form(base) for _ in range(GUESSES)]
        barrier = threading.Barrier(GUESSES)
        answers: list = [None] * GUESSES

        def guess(n: int) -> None:
            session, token = forms[n]
            data = {"login": login, "password": f"wrong-guess-{n:04d}", "csrf_token": token}
            barrier.wait()
            try:
                response = session.post(
                    f"{base}/login",
                    data=data,
                    headers={"Connection": "close"},
                    allow_redirects=False,
                    timeout=120,
                )
                answers[n] = (response.status_code, response.text)
            except requests.RequestException as error:  # pragma: no cover - reported below
                answers[n] = (0, repr(error))

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = [code for code, _ in answers]
        assert codes == [200] * GUESSES, [(c, t[:200]) for c, t in answers if c != 200]
        failed = sum(FAILED in text for _, text in answers)
        locked = sum(LOCKED in text for _, text in answers)
        assert (failed, locked) == (4, GUESSES - 4), (failed, locked)

        # The right password, now: the account is locked.
        session, token = _login_form(base)
        right = session.post(
            f"{base}/login",
            data={"login": login, "password": "correct-horse-battery", "csrf_token": token},
            headers={"Connection": "close"},
            allow_redirects=False,
            timeout=60,
        )
        assert right.status_code == 200
        assert LOCKED in right.text

    db.session.expire_all()
    checked = db.session.scalar(
        sa.select(sa.func.count()).select_from(LoginAttempt).where(LoginAttempt.login == login)
    )
    assert checked == 5
    audited = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "login_failed", AuditEvent.staff_id == staff_id)
    )
    assert audited == 5
    # The count was kept where the settings say (Redis leaves the table empty).
    rows = db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter))
    assert (rows == 0) == bool(counts_in)
