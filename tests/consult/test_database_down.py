"""While the database is down, every page answers with the styled Japanese error page.

The error page must render without a query: the signed-in user, the navigation and the context
processors all reach for the database, and an error page that fails too leaves Werkzeug's bare
English "Internal Server Error".
"""

from __future__ import annotations

import socket

import pytest

from tests.conftest import make_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.fixture
def down_app(tmp_path):
    app = make_app(f"postgresql://postgres@127.0.0.1:{_closed_port()}/madoguchi", tmp_path)
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)  # as in production
    yield app
    from consult.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _assert_styled_japanese_error(response):
    body = response.get_data(as_text=True)
    assert response.status_code in (500, 503), response.status_code
    assert response.mimetype == "text/html"
    assert "Internal Server Error" not in body
    assert "Traceback" not in body and "OperationalError" not in body
    assert "システム" in body and "もう一度お試しください" in body  # the page says what to do …
    assert "css/madoguchi.css" in body  # … styled like every other page
    assert response.headers["Cache-Control"] == "no-store"


def test_a_public_page_while_the_database_is_down(down_app):
    client = down_app.test_client()
    _assert_styled_japanese_error(client.get("/booking/"))
    _assert_styled_japanese_error(client.get("/faq/1"))


def test_a_staff_page_while_the_database_is_down(down_app):
    client = down_app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "a-session-token"  # a signed-in member of staff's cookie
        session["_fresh"] = True
    for path in ("/tickets", "/handoffs", "/admin/"):
        _assert_styled_japanese_error(client.get(path))
