"""The access matrix: every route in app.url_map × every role → the expected answer.

The table is keyed by URL rule and method; a route (or a method of it) that is not in the table
fails the test, so a new route cannot arrive without its access rules.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Ticket, TimelineEntry
from consult.services import citizens, outbox
from consult.services.actor import SYSTEM
from tests.consult.http import call, sign_in

ROLES = ("anonymous", "consultant", "supervisor", "officer", "support", "admin")

LOGIN = "302→login"  # anonymous on a staff page: sent to the login form
OK = "permitted"  # a permitted action: 200/302/422, never 403/404/500, never to the login form
REDIRECT = "302"  # a redirect that is not to the login form
SIGNED_OUT = "302→login, signed out"  # logout: to the login form, with no next=

DESK_GET = {
    "anonymous": LOGIN,
    "consultant": 200,
    "supervisor": 200,
    "officer": 403,
    "support": 403,
    "admin": 403,
}
DESK_POST = {**DESK_GET, "consultant": OK, "supervisor": OK}
ADMIN_GET = {
    "anonymous": LOGIN,
    "consultant": 403,
    "supervisor": 403,
    "officer": 403,
    "support": 403,
    "admin": 200,
}
ADMIN_POST = {**ADMIN_GET, "admin": OK}
PUBLIC_GET = dict.fromkeys(ROLES, 200)


def t(path):
    """A URL builder on the test's ticket number."""
    return lambda o: f"/tickets/{o['number']}{path}"


# (rule, method) → (URL builder over the test's objects, expected answer per role, form data).
# Order matters only for logout, which ends the role's session: it comes last.
TABLE: dict[tuple[str, str], tuple] = {
    ("/static/<path:filename>", "GET"): (lambda o: "/static/css/madoguchi.css", PUBLIC_GET),
    ("/display", "GET"): (lambda o: "/display", PUBLIC_GET),
    ("/display/board.json", "GET"): (lambda o: "/display/board.json", PUBLIC_GET),
    ("/login", "GET"): (
        lambda o: "/login",
        {"anonymous": 200, **dict.fromkeys(ROLES[1:], REDIRECT)},
    ),
    ("/login", "POST"): (
        lambda o: "/login",
        {"anonymous": 200, **dict.fromkeys(ROLES[1:], REDIRECT)},
        {"login": "nobody", "password": "wrong-password"},
    ),
    ("/", "GET"): (
        lambda o: "/",
        {
            "anonymous": LOGIN,
            "consultant": REDIRECT,
            "supervisor": REDIRECT,
            "officer": 200,
            "support": 200,
            "admin": REDIRECT,
        },
    ),
    ("/tickets", "GET"): (lambda o: "/tickets", DESK_GET),
    ("/tickets/search", "POST"): (lambda o: "/tickets/search", DESK_POST, {"q": "やまだ"}),
    ("/tickets/<number>", "GET"): (t(""), DESK_GET),
    ("/tickets/<number>/note", "POST"): (t("/note"), DESK_POST, {"body": "メモ"}),
    ("/tickets/<number>/status", "POST"): (t("/status"), DESK_POST),
    ("/tickets/<number>/close", "POST"): (t("/close"), DESK_POST),
    ("/tickets/<number>/reopen", "POST"): (t("/reopen"), DESK_POST),
    ("/tickets/<number>/assign", "POST"): (t("/assign"), DESK_POST),
    ("/tickets/<number>/details", "POST"): (t("/details"), DESK_POST),
    ("/tickets/<number>/citizen", "POST"): (t("/citizen"), DESK_POST),
    ("/tickets/<number>/citizen/link", "POST"): (t("/citizen/link"), DESK_POST),
    ("/tickets/<number>/citizen/unlink", "POST"): (t("/citizen/unlink"), DESK_POST),
    ("/tickets/<number>/session/end", "POST"): (t("/session/end"), DESK_POST),
    ("/tickets/<number>/visit/<action>", "POST"): (t("/visit/call"), DESK_POST),
    ("/citizens/match", "POST"): (lambda o: "/citizens/match", DESK_POST, {"name": "やまだ"}),
    ("/citizens/<int:citizen_id>", "GET"): (lambda o: f"/citizens/{o['citizen']}", DESK_GET),
    ("/counter/new", "GET"): (lambda o: "/counter/new", DESK_GET),
    ("/counter/new", "POST"): (lambda o: "/counter/new", DESK_POST),
    ("/phone/new", "GET"): (lambda o: "/phone/new", DESK_GET),
    ("/phone/new", "POST"): (lambda o: "/phone/new", DESK_POST),
    ("/admin/", "GET"): (lambda o: "/admin/", ADMIN_GET),
    ("/admin/staff", "GET"): (lambda o: "/admin/staff", ADMIN_GET),
    ("/admin/staff/new", "GET"): (lambda o: "/admin/staff/new", ADMIN_GET),
    ("/admin/staff/new", "POST"): (lambda o: "/admin/staff/new", ADMIN_POST),
    ("/admin/staff/<int:staff_id>", "GET"): (lambda o: f"/admin/staff/{o['victim']}", ADMIN_GET),
    ("/admin/staff/<int:staff_id>", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}",
        ADMIN_POST,
    ),
    ("/admin/staff/<int:staff_id>/active", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}/active",
        ADMIN_POST,
        {"active": "1"},
    ),
    ("/admin/staff/<int:staff_id>/password", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}/password",
        ADMIN_POST,
    ),
    ("/admin/departments", "GET"): (lambda o: "/admin/departments", ADMIN_GET),
    ("/admin/departments/new", "GET"): (lambda o: "/admin/departments/new", ADMIN_GET),
    ("/admin/departments/new", "POST"): (lambda o: "/admin/departments/new", ADMIN_POST),
    ("/admin/departments/<int:department_id>", "GET"): (
        lambda o: f"/admin/departments/{o['department']}",
        ADMIN_GET,
    ),
    ("/admin/departments/<int:department_id>", "POST"): (
        lambda o: f"/admin/departments/{o['department']}",
        ADMIN_POST,
    ),
    ("/admin/categories", "GET"): (lambda o: "/admin/categories", ADMIN_GET),
    ("/admin/categories/new", "GET"): (lambda o: "/admin/categories/new", ADMIN_GET),
    ("/admin/categories/new", "POST"): (lambda o: "/admin/categories/new", ADMIN_POST),
    ("/admin/categories/<int:category_id>", "GET"): (
        lambda o: f"/admin/categories/{o['category']}",
        ADMIN_GET,
    ),
    ("/admin/categories/<int:category_id>", "POST"): (
        lambda o: f"/admin/categories/{o['category']}",
        ADMIN_POST,
    ),
    ("/admin/audit", "GET"): (lambda o: "/admin/audit", ADMIN_GET),
    ("/admin/outbox", "GET"): (lambda o: "/admin/outbox", ADMIN_GET),
    ("/admin/outbox/<int:message_id>/retry", "POST"): (
        lambda o: f"/admin/outbox/{o['outbox']}/retry",
        ADMIN_POST,
    ),
    ("/logout", "POST"): (
        lambda o: "/logout",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], SIGNED_OUT)},
    ),
}


@pytest.fixture
def make_citizen(app):
    def make(**fields):
        citizen = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(**({"name": "山田 花子"} | fields))
        )
        db.session.commit()
        return citizen

    return make


def _routes(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def _to_login(response) -> bool:
    return response.status_code == 302 and urlparse(response.headers["Location"]).path == "/login"


def _answer(response) -> object:
    """What the response was, in the table's vocabulary."""
    if _to_login(response):
        return LOGIN
    if response.status_code == 302:
        return REDIRECT
    return response.status_code


def _matches(expected, response) -> bool:
    if expected == SIGNED_OUT:
        return _to_login(response) and "next=" not in response.headers["Location"]
    if expected == OK:
        return response.status_code in {200, 302, 422} and not _to_login(response)
    return _answer(response) == expected


def test_every_route_is_in_the_table(app):
    routes = _routes(app)
    missing = sorted(routes - TABLE.keys())
    stale = sorted(TABLE.keys() - routes)
    assert not missing, f"routes without access rules in the table: {missing}"
    assert not stale, f"table rows for routes that no longer exist: {stale}"
    for key, row in TABLE.items():
        assert set(row[1]) == set(ROLES), f"{key}: an answer for every role"


def test_access_matrix(app, make_staff, make_ticket, make_department, make_category, make_citizen):
    assert not sorted(_routes(app) - TABLE.keys()), "every route needs a row in TABLE"
    ticket = make_ticket(subject="住民票の写しについて")
    victim = make_staff("consultant")
    message = outbox.enqueue(channel="email", recipient="r@example.jp", body="本文", ticket=ticket)
    db.session.commit()
    objects = {
        "number": ticket.number,
        "victim": victim.id,
        "department": make_department().id,
        "category": make_category().id,
        "citizen": make_citizen().id,
        "outbox": message.id,
    }
    clients = {"anonymous": app.test_client()}
    for role in ROLES[1:]:
        clients[role] = sign_in(app, make_staff(role))

    failures = []
    for (_rule, method), (build, expect, *rest) in TABLE.items():
        data = rest[0] if rest else {}
        url = build(objects)
        for role in ROLES:
            response = call(app, clients[role], method, url, data=data)
            if not _matches(expect[role], response):
                failures.append(
                    f"{method} {url} as {role}: expected {expect[role]}, got "
                    f"{response.status_code} {response.headers.get('Location', '')}"
                )
    assert not failures, "\n".join(failures)


def test_no_oracle_for_roles_without_tickets(app, make_staff, make_ticket):
    ticket = make_ticket()
    for role in ("officer", "support", "admin"):
        client = sign_in(app, make_staff(role))
        for path in ("", "/note"):
            method = "GET" if not path else "POST"
            existing = call(app, client, method, f"/tickets/{ticket.number}{path}")
            missing = call(app, client, method, f"/tickets/2026-999999{path}")
            assert existing.status_code == missing.status_code == 403, (role, path)


def test_missing_ticket_is_404_for_a_consultant(client, login_as, make_ticket):
    login_as("consultant")
    make_ticket()
    assert client.get("/tickets/2026-999999").status_code == 404
    assert client.post("/tickets/2026-999999/note", data={"body": "メモ"}).status_code == 404


def test_link_to_nonexistent_citizen_changes_nothing(client, login_as, make_ticket):
    login_as("consultant")
    ticket = make_ticket()
    entries = db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)))
    response = client.post(f"/tickets/{ticket.number}/citizen/link", data={"citizen_id": 999999})
    assert response.status_code == 422
    assert "相談者が見つかりません。" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).citizen_id is None
    assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == entries


def test_assign_to_officer_or_nonexistent_staff_is_refused(
    client, login_as, make_ticket, make_staff
):
    login_as("consultant")
    ticket = make_ticket()
    officer = make_staff("officer")
    entries = db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)))
    for assignee in (officer.id, 999999):
        response = client.post(
            f"/tickets/{ticket.number}/assign", data={"assignee_id": str(assignee)}
        )
        assert response.status_code in {403, 404, 422}, assignee
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).assignee_id is None
    assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == entries


def test_assign_service_refuses_non_desk_staff(app, make_ticket, make_staff):
    """The rule lives in the service too, not only in the form's choices."""
    from consult.services import tickets
    from consult.services.actor import Actor
    from consult.services.errors import ValidationFailed

    ticket = make_ticket()
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    for assignee in (make_staff("officer").id, make_staff("admin").id, 999999):
        with pytest.raises(ValidationFailed):
            tickets.assign(actor, ticket, assignee)
        db.session.rollback()
        assert db.session.get(Ticket, ticket.id).assignee_id is None
