"""One code sent at once by six browsers to gunicorn with four workers: exactly one gets in.

Each browser gave the right password first (so each holds a pending sign-in); then all send
the same current code together. The step is taken by one conditional UPDATE
(`totp_last_step < step`), so the others are told the code was used, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading

import pyotp
import pytest
import requests

from consult.extensions import db
from consult.settings import override
from tests.consult.test_two_factor import REUSED, enrol
from tests.gunicorn import csrf_token, gunicorn_server
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow

BROWSERS = 6
KEY = "two-factor-race-test-key-long-enough-0123456789"


def test_one_code_at_once_signs_in_once(app, make_staff, database_url, tmp_path):
    override(app, TOTP_KEY=KEY)  # the same key in the test and in gunicorn
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    login = staff.login
    db.session.commit()
    settings = {"TOTP_KEY": KEY, "TOTP_REQUIRED": "none", "LOGIN_MAX_FAILURES": 50}
    with gunicorn_server(database_url, tmp_path, settings, threads=1, ready_path="/login") as srv:
        base = srv.url
        sessions = []
        for _ in range(BROWSERS):
            session = requests.Session()
            page = session.get(f"{base}/login", timeout=60)
            data = {"login": login, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
            answer = session.post(f"{base}/login", data=data, allow_redirects=False, timeout=60)
            assert answer.headers["Location"] == "/login/code", answer.text[:300]
            page = session.get(f"{base}/login/code", timeout=60)
            sessions.append((session, csrf_token(page.text)))
        code = pyotp.TOTP(secret).now()
        barrier = threading.Barrier(BROWSERS)
        answers: list = [None] * BROWSERS

        def send(n: int) -> None:
            session, token = sessions[n]
            barrier.wait()
            try:
                response = session.post(
                    f"{base}/login/code",
                    data={"code": code, "csrf_token": token},
                    headers={"Connection": "close"},
                    allow_redirects=False,
                    timeout=120,
                )
                answers[n] = (response.status_code, response.text)
            except requests.RequestException as error:  # pragma: no cover - reported below
                answers[n] = (0, repr(error))

        threads = [threading.Thread(target=send, args=(n,)) for n in range(BROWSERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    signed_in = sum(status == 302 for status, _ in answers)
    reused = sum(status == 200 and REUSED in text for status, text in answers)
    assert (signed_in, reused) == (1, BROWSERS - 1), [(s, t[:200]) for s, t in answers]
