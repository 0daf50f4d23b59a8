"""The audit log: every view and search of personal data leaves a row that holds none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AppendOnlyError, AuditEvent
from consult.services import citizens, tickets
from consult.services.actor import Actor
from tests.consult.http import call
from tests.helpers import sign_in

NAME = "山田 花子"
PHONE = "087-839-2111"
PHONE_DIGITS = "0878392111"
EMAIL = "hanako@example.jp"
SUBJECT = "借金の返済について"
NOTE = "夫からの暴力について相談したい"


@pytest.fixture
def case(app, make_staff):
    """A ticket with a citizen, and a consultant to look at it."""
    creator = make_staff("consultant")
    actor = Actor(creator, "127.0.0.1")
    citizen = citizens.create_citizen(
        actor, citizens.CitizenInput(name=NAME, phone=PHONE, email=EMAIL)
    )
    ticket = tickets.create_ticket(actor, channel="counter", subject=SUBJECT)
    tickets.link_citizen(actor, ticket, citizen)
    tickets.add_note(actor, ticket, NOTE)
    db.session.commit()
    viewer = make_staff("consultant")
    return {"ticket": ticket.number, "citizen": citizen.id, "viewer": viewer}


def _events(**where) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).order_by(AuditEvent.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEvent, key) == value)
    return list(db.session.scalars(query))


def _assert_no_personal_data():
    for event in _events():
        text = " ".join(
            str(v or "")
            for v in (event.action, event.object_type, event.object_id, event.address, event.detail)
        )
        for secret in (NAME, "山田", "花子", PHONE, PHONE_DIGITS, "839-2111", EMAIL, SUBJECT, NOTE):
            assert secret not in text, (event, secret)


def test_viewing_a_ticket_is_audited(app, case):
    browser = sign_in(app, case["viewer"])
    before = len(_events(action="view"))
    response = call(app, browser, "GET", f"/tickets/{case['ticket']}")
    assert response.status_code == 200
    views = _events(action="view", object_type="ticket")
    assert len(views) == before + 1
    [event] = views[-1:]
    assert event.staff_id == case["viewer"].id
    assert event.object_id == case["ticket"]
    assert event.address == "127.0.0.1"
    assert event.at is not None
    _assert_no_personal_data()


def test_viewing_from_another_address_records_it(app, case):
    browser = sign_in(app, case["viewer"])
    call(
        app, browser, "GET", f"/tickets/{case['ticket']}", environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert _events(action="view", object_type="ticket")[-1].address == "10.1.2.3"


def test_viewing_a_citizen_is_audited(app, case):
    browser = sign_in(app, case["viewer"])
    response = call(app, browser, "GET", f"/citizens/{case['citizen']}")
    assert response.status_code == 200
    [event] = _events(action="view", object_type="citizen")
    assert event.staff_id == case["viewer"].id
    assert event.object_id == str(case["citizen"])
    assert event.address == "127.0.0.1"
    _assert_no_personal_data()


def test_a_refused_view_is_not_recorded_as_a_view(app, case, make_staff):
    officer = sign_in(app, make_staff("officer"))
    assert call(app, officer, "GET", f"/tickets/{case['ticket']}").status_code == 403
    assert not _events(action="view")


def test_search_by_phone_is_audited_without_the_phone(app, case):
    browser = sign_in(app, case["viewer"])
    response = call(app, browser, "POST", "/tickets/search", data={"q": PHONE})
    assert response.status_code == 200
    assert case["ticket"] in response.get_data(as_text=True)
    [event] = _events(action="search", object_type="ticket")
    assert event.staff_id == case["viewer"].id
    assert event.detail and "phone" in event.detail
    assert PHONE not in event.detail and PHONE_DIGITS not in event.detail
    # The citizen-matching helper too.
    response = call(app, browser, "POST", "/citizens/match", data={"phone": PHONE, "email": EMAIL})
    assert response.status_code == 200
    [event] = _events(action="search", object_type="citizen")
    assert event.staff_id == case["viewer"].id
    _assert_no_personal_data()


def test_search_by_name_is_audited_without_the_name(app, case):
    browser = sign_in(app, case["viewer"])
    call(app, browser, "POST", "/tickets/search", data={"q": "山田"})
    [event] = _events(action="search", object_type="ticket")
    assert "山田" not in (event.detail or "")
    _assert_no_personal_data()


def test_audit_rows_cannot_be_changed_through_the_orm(app, case):
    event = _events()[0]
    event.detail = "書き換え"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    event = _events()[0]
    db.session.delete(event)
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert _events()[0].detail != "書き換え"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET detail = 'forged'",
        "UPDATE audit_event SET staff_id = NULL",
        "DELETE FROM audit_event",
    ],
)
def test_audit_rows_cannot_be_changed_with_raw_sql(app, case, statement):
    count = len(_events())
    assert count
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.text(statement))
        db.session.flush()
    db.session.rollback()
    events = _events()
    assert len(events) == count
    assert all(e.detail != "forged" for e in events)


def test_admin_audit_page_lists_and_filters(app, case, make_staff):
    admin_staff = make_staff("admin")
    viewer, other = case["viewer"], make_staff("consultant")
    call(app, sign_in(app, viewer), "GET", f"/tickets/{case['ticket']}")
    call(app, sign_in(app, other), "GET", f"/citizens/{case['citizen']}")
    old = AuditEvent(
        at=datetime(2025, 1, 10, 3, 0, tzinfo=UTC),
        staff_id=other.id,
        action="export",
        object_type="ticket",
        object_id="2024-000777",
        address="10.9.9.9",
    )
    db.session.add(old)
    db.session.commit()
    admin = sign_in(app, admin_staff)

    def page(query=""):
        response = call(app, admin, "GET", f"/admin/audit{query}")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    everything = page()
    assert case["ticket"] in everything and "2024-000777" in everything
    assert "閲覧" in everything and "10.9.9.9" in everything

    by_viewer = page(f"?staff={viewer.id}&action=view")
    assert f"<td>{case['ticket']}</td>" in by_viewer
    assert "2024-000777" not in by_viewer
    assert f"<td>{case['citizen']}</td>" not in by_viewer

    by_other = page(f"?staff={other.id}")
    assert f"<td>{case['citizen']}</td>" in by_other
    assert f"<td>{case['ticket']}</td>" not in by_other

    exports = page("?action=export")
    assert "2024-000777" in exports and f"<td>{case['ticket']}</td>" not in exports

    old_only = page("?since=2025-01-01&until=2025-01-31")
    assert "2024-000777" in old_only and f"<td>{case['ticket']}</td>" not in old_only
    recent = page("?since=2026-01-01")
    assert "2024-000777" not in recent and f"<td>{case['ticket']}</td>" in recent


def test_admin_audit_page_is_admin_only(app, make_staff):
    for role in ("consultant", "supervisor", "officer", "support"):
        browser = sign_in(app, make_staff(role))
        assert call(app, browser, "GET", "/admin/audit").status_code == 403, role
    response = call(app, app.test_client(), "GET", "/admin/audit")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
