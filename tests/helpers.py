"""Helpers every test folder shares: signing in, and counting the SQL a request sends."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask, has_app_context

from consult.extensions import db

PASSWORD = "correct-horse-battery"


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in page"
    return match.group(1)


def sign_in(
    target, staff, password: str = PASSWORD, *, csrf: bool = False, totp: str | None = None
):
    """Sign a member of staff in through the real login form; returns the signed-in client.

    ``totp`` is the secret of a member of staff who enrolled in two-factor sign-in: the code
    page that follows the password is then answered with the current code (pyotp). The suite
    runs with MADOGUCHI_TOTP_REQUIRED=none, so no one else is asked for one.

    ``target`` is a test client, or an app (then a new client of it). ``staff`` is a Staff or a
    login name. ``csrf=True`` loads the form first and sends its token, for apps with CSRF on.
    The test's own transaction is committed first (on SQLite it would hold the write lock, BEGIN
    IMMEDIATE, that the login needs), and the requests run in an app context of their own, as
    each request does in production: nothing the test holds in `g` or its session leaks in.
    """
    client = target.test_client() if isinstance(target, Flask) else target
    login = staff if isinstance(staff, str) else staff.login
    if has_app_context():
        db.session.commit()
    data = {"login": login, "password": password}
    with client.application.app_context():
        if csrf:
            data["csrf_token"] = csrf_token_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data=data)
        response.close()
        if response.status_code == 302 and response.headers["Location"] == "/login/code":
            assert totp, "this member of staff has two-factor sign-in: pass totp=<secret>"
            import pyotp

            code = {"code": pyotp.TOTP(totp).now()}
            if csrf:
                page = client.get("/login/code").get_data(as_text=True)
                code["csrf_token"] = csrf_token_from(page)
            response = client.post("/login/code", data=code)
            response.close()
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert not response.headers["Location"].startswith("/login"), response.headers["Location"]
    return client


@dataclass
class Queries:
    """The SQL statements sent while a `count_queries()` block ran."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __str__(self) -> str:
        return f"{self.count} queries:\n" + "\n".join(
            f"  {n}. {' '.join(s.split())[:160]}" for n, s in enumerate(self.statements, 1)
        )


@contextmanager
def counting_queries(app: Flask):
    """Count every statement the app's engine sends (``before_cursor_execute``)."""
    with app.app_context():
        engine = db.engine
    queries = Queries()

    def record(conn, cursor, statement, parameters, context, executemany):
        queries.statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield queries
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def serve_in_thread(server, name: str = "test-server") -> threading.Thread:
    """Serve a test server from a daemon thread, polling for shutdown every 50 ms.

    `serve_forever` polls every 0.5 s by default, so each `shutdown()` waited up to half a
    second: about a quarter of a second at the end of every test that serves something.
    """
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread
