"""CSRF, cookies, headers, escaping and the error pages."""

from __future__ import annotations

import sqlalchemy as sa

from consult import config as config_module
from consult.extensions import db
from consult.models import EntryKind, Ticket, TimelineEntry
from consult.services import citizens, tickets
from consult.services.actor import SYSTEM, Actor
from tests.consult.http import call
from tests.helpers import PASSWORD, csrf_token_from, sign_in

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _entries(kind=None) -> int:
    query = sa.select(sa.func.count(TimelineEntry.id))
    if kind is not None:
        query = query.where(TimelineEntry.kind == kind)
    return db.session.scalar(query)


def _csrf_login(app, staff):
    browser = app.test_client()
    token = csrf_token_from(call(app, browser, "GET", "/login").get_data(as_text=True))
    response = call(
        app,
        browser,
        "POST",
        "/login",
        data={"login": staff.login, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    return browser


def test_post_without_csrf_token_is_refused_and_writes_nothing(
    app_factory, app, make_staff, make_ticket
):
    protected = app_factory(WTF_CSRF_ENABLED=True)
    staff = make_staff("consultant")
    ticket = make_ticket()
    # The login form itself is protected.
    response = call(
        protected,
        protected.test_client(),
        "POST",
        "/login",
        data={"login": staff.login, "password": PASSWORD},
    )
    assert response.status_code == 400
    browser = _csrf_login(protected, staff)
    before = _entries()
    response = call(
        protected, browser, "POST", f"/tickets/{ticket.number}/note", data={"body": "メモ"}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "送信内容を受け付けられませんでした" in page
    assert "画面を開き直して" in page
    assert _entries() == before
    # A wrong token is no better than none.
    response = call(
        protected,
        browser,
        "POST",
        f"/tickets/{ticket.number}/note",
        data={"body": "メモ", "csrf_token": "forged"},
    )
    assert response.status_code == 400
    assert _entries() == before
    # With the page's token it works (the test above is not vacuous).
    page = call(protected, browser, "GET", f"/tickets/{ticket.number}").get_data(as_text=True)
    response = call(
        protected,
        browser,
        "POST",
        f"/tickets/{ticket.number}/note",
        data={"body": "メモ", "csrf_token": csrf_token_from(page)},
    )
    assert response.status_code == 302
    assert _entries(EntryKind.NOTE) == 1
    # Logout without a token does not end the session either.
    assert call(protected, browser, "POST", "/logout").status_code == 400
    assert call(protected, browser, "GET", "/tickets").status_code == 200


def test_session_cookie_is_httponly_and_samesite(app, make_staff):
    staff = make_staff("consultant")
    response = call(
        app, app.test_client(), "POST", "/login", data={"login": staff.login, "password": PASSWORD}
    )
    cookies = response.headers.getlist("Set-Cookie")
    session = [c for c in cookies if c.startswith("madoguchi_session=")]
    assert session, cookies
    for value in session:
        assert "HttpOnly" in value
        assert "SameSite=Lax" in value or "SameSite=Strict" in value


def test_session_cookie_is_secure_in_production():
    core = config_module.CoreSettings(
        env="production", secret_key="x" * 40, database_url="sqlite://"
    )
    flask = config_module.flask_config(core)
    assert flask["SESSION_COOKIE_SECURE"] is True
    assert flask["SESSION_COOKIE_HTTPONLY"] is True
    assert flask["SESSION_COOKIE_SAMESITE"] in {"Lax", "Strict"}


def _pages(app, make_staff, make_ticket):
    """(client, method, url, data) for a sample of every kind of page, errors included."""
    ticket = make_ticket()
    citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="山田 花子"))
    db.session.commit()
    consultant = sign_in(app, make_staff("consultant"))
    admin = sign_in(app, make_staff("admin"))
    officer = sign_in(app, make_staff("officer"))
    anonymous = app.test_client()
    return [
        (anonymous, "GET", "/login", None),
        (anonymous, "GET", "/display", None),
        (anonymous, "GET", "/display/board.json", None),
        (anonymous, "GET", "/static/css/madoguchi.css", None),
        (anonymous, "GET", "/no-such-page", None),
        (anonymous, "GET", "/logout", None),
        (anonymous, "GET", "/tickets", None),
        (consultant, "GET", "/tickets", None),
        (consultant, "GET", f"/tickets/{ticket.number}", None),
        (consultant, "POST", f"/tickets/{ticket.number}/close", {}),
        (consultant, "GET", f"/citizens/{citizen.id}", None),
        (consultant, "POST", "/tickets/search", {"q": "やまだ"}),
        (consultant, "POST", "/citizens/match", {"name": "やまだ"}),
        (consultant, "GET", "/counter/new", None),
        (consultant, "GET", "/phone/new", None),
        (consultant, "GET", "/tickets/2026-999999", None),
        (officer, "GET", "/", None),
        (officer, "GET", "/tickets", None),
        (admin, "GET", "/admin/", None),
        (admin, "GET", "/admin/staff", None),
        (admin, "GET", "/admin/audit", None),
        (admin, "GET", "/admin/outbox", None),
    ]


def test_every_page_sends_csp_and_nosniff(app, make_staff, make_ticket):
    for client, method, url, data in _pages(app, make_staff, make_ticket):
        response = call(app, client, method, url, data=data)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp, url
        assert "script-src 'self'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url


def test_pages_with_personal_data_are_not_cached(app, make_staff, make_ticket):
    for client, method, url, data in _pages(app, make_staff, make_ticket):
        if url.startswith("/static/"):
            continue
        response = call(app, client, method, url, data=data)
        assert "no-store" in response.headers.get("Cache-Control", ""), url


def test_hsts_only_over_https(app, make_staff):
    plain = call(app, app.test_client(), "GET", "/login")
    assert "Strict-Transport-Security" not in plain.headers
    secure = call(app, app.test_client(), "GET", "/login", base_url="https://localhost")
    assert "max-age=" in secure.headers["Strict-Transport-Security"]
    staff = make_staff("consultant")
    browser = app.test_client()
    response = call(
        app,
        browser,
        "POST",
        "/login",
        data={"login": staff.login, "password": PASSWORD},
        base_url="https://localhost",
    )
    assert "Strict-Transport-Security" in response.headers


def test_script_is_shown_as_text_everywhere(app, make_staff):
    staff = make_staff("consultant")
    actor = Actor(staff, "127.0.0.1")
    citizen = citizens.create_citizen(
        actor, citizens.CitizenInput(name=XSS, kana=XSS, phone="087-839-2111")
    )
    ticket = tickets.create_ticket(actor, channel="counter", subject=XSS)
    tickets.link_citizen(actor, ticket, citizen)
    tickets.add_note(actor, ticket, XSS)
    db.session.commit()
    number, citizen_id = ticket.number, citizen.id
    browser = sign_in(app, staff)
    pages = {
        "queue": call(app, browser, "GET", "/tickets"),
        "ticket": call(app, browser, "GET", f"/tickets/{number}"),
        "search by phone": call(
            app, browser, "POST", "/tickets/search", data={"q": "087-839-2111"}
        ),
        "citizen": call(app, browser, "GET", f"/citizens/{citizen_id}"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        page = response.get_data(as_text=True)
        assert XSS not in page, name
        assert ESCAPED in page, name
    # The matching helper answers JSON (not HTML), and never as text/html.
    response = call(app, browser, "POST", "/citizens/match", data={"phone": "087-839-2111"})
    assert response.mimetype == "application/json"


def test_error_pages_are_japanese(app, make_staff):
    officer = sign_in(app, make_staff("officer"))
    cases = {
        403: (call(app, officer, "GET", "/tickets"), "権限がありません"),
        404: (call(app, officer, "GET", "/no-such-page"), "ページが見つかりません"),
        405: (call(app, officer, "GET", "/logout"), "この操作はできません"),
    }
    for code, (response, text) in cases.items():
        assert response.status_code == code
        page = response.get_data(as_text=True)
        assert text in page, code
        assert '<html lang="ja">' in page, code
        assert "Traceback" not in page and "Werkzeug" not in page, code


def test_tickets_table_unchanged_by_refused_posts(app_factory, app, make_staff, make_ticket):
    """A 400 for CSRF rolls back even a change the view would have made (closing a ticket)."""
    protected = app_factory(WTF_CSRF_ENABLED=True)
    staff = make_staff("consultant")
    ticket = make_ticket()
    browser = _csrf_login(protected, staff)
    response = call(
        protected, browser, "POST", f"/tickets/{ticket.number}/close", data={"summary": "完了"}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).closed_at is None


def test_no_view_is_exempt_from_csrf(app):
    """The LINE webhook, authenticated by its signature, is answered in front of Flask
    (channels.line.intake) and needs no exemption; one Flask view has one (below). The one exempt
    blueprint is the REST API's: it is authenticated by a bearer token in a header, never by the
    session cookie (tests/api: a signed-in session alone gets 401), so a forged cross-site
    request has nothing to ride on."""
    from consult.extensions import csrf

    # One view more, for the same reason as the API: a one-button help device's press
    # (consult.views.safety.device_press) is authenticated by its own bearer token and ignores
    # any session, so a cross-site request has nothing to ride on (tests/consult/
    # test_safety_devices.py: a signed-in cookie alone raises nothing).
    assert csrf._exempt_views == {"consult.views.safety.device_press"}
    assert {blueprint.name for blueprint in csrf._exempt_blueprints} == {"api_v1"}
