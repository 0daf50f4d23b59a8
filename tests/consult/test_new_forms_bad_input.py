"""Wrong input in the forms of the last wave (issue 16 and 20's pages): attachments, password
change, handover with a note, the two merge forms, two-factor enrolment and the API token form.
Each wrong input gets a clear Japanese message on the page, changes nothing, and is never a
500, on both databases."""

from __future__ import annotations

import html
import io
import re

import pytest
import sqlalchemy as sa

from api.models import ApiIntegration
from consult.extensions import db
from consult.models import (
    Attachment,
    Channel,
    Citizen,
    MergeRecord,
    Staff,
    Ticket,
    TimelineEntry,
)
from consult.services import citizens, tickets
from consult.services.actor import SYSTEM, Actor
from tests.helpers import PASSWORD, sign_in

_MESSAGE = re.compile(
    r'<(?:p|div) class="(?:field__error|notice notice--error)"[^>]*>(.*?)</(?:p|div)>', re.S
)


def messages(response) -> list[str]:
    """The error messages a person reads on the page: next to a field, or at its top."""
    page = response.get_data(as_text=True)
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in _MESSAGE.findall(page)]


def assert_refused(response, expected: str | None = None) -> None:
    assert response.status_code in (200, 400, 404, 413, 422), response.status_code
    found = messages(response)
    assert found, response.get_data(as_text=True)[:3000]
    assert all(any("\u3040" <= ch <= "\u9fff" for ch in m) for m in found), found
    if expected is not None:
        assert any(expected in m for m in found), found


def _state() -> tuple:
    """What any of these forms could change."""
    db.session.expire_all()
    count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
    return (
        count(Attachment),
        count(MergeRecord),
        count(TimelineEntry),
        count(ApiIntegration),
        tuple(db.session.execute(sa.select(Ticket.id, Ticket.assignee_id, Ticket.merged_into_id))),
        tuple(db.session.execute(sa.select(Citizen.id, Citizen.merged_into_id))),
        tuple(
            db.session.execute(
                sa.select(Staff.id, Staff.password_hash, Staff.totp_enabled_at).order_by(Staff.id)
            )
        ),
    )


@pytest.fixture
def world(app, make_staff):
    consultant = make_staff("consultant")
    colleague = make_staff("consultant")
    supervisor = make_staff("supervisor")
    admin = make_staff("admin")
    actor = Actor(consultant, "127.0.0.1")
    person = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="西村 花子"))
    ticket = tickets.create_ticket(
        actor, channel=Channel.COUNTER, subject="年金の相談", citizen=person
    )
    other = tickets.create_ticket(actor, channel=Channel.PHONE, subject="電話の相談")
    closed = tickets.create_ticket(actor, channel=Channel.PHONE, subject="済んだ相談")
    tickets.close(actor, closed, "回答しました")
    db.session.commit()
    return {
        "consultant": consultant,
        "colleague": colleague,
        "supervisor": supervisor,
        "admin": admin,
        "citizen": person.id,
        "ticket": ticket.number,
        "other": other.number,
        "closed": closed.number,
    }


ATTACHMENTS = [
    ("nothing chosen", None, None, None),
    ("empty file", "空.pdf", b"", None),
    ("a page of html", "page.html", b"<html><script>alert(1)</script></html>", "添付できない"),
    ("a program", "setup.exe", b"MZ\x90\x00" + b"\x00" * 200, "添付できない"),
    ("text named as a photo", "写真.jpg", b"this is not a jpeg at all", "添付できない"),
    ("a pdf named as a photo", "写真.png", b"%PDF-1.7\n" + b"x" * 100, None),
    ("a name of 300 characters", "あ" * 300 + ".pdf", b"%PDF-1.7\n" + b"x" * 100, None),
]


@pytest.mark.parametrize(
    ("case", "name", "data", "expected"), ATTACHMENTS, ids=[a[0] for a in ATTACHMENTS]
)
def test_attachment_upload(app, world, case, name, data, expected):
    client = sign_in(app.test_client(), world["consultant"])
    before = _state()
    form = {} if name is None else {"file": (io.BytesIO(data), name)}
    response = client.post(
        f"/tickets/{world['ticket']}/attachments", data=form, content_type="multipart/form-data"
    )
    if case == "a name of 300 characters" and response.status_code == 302:
        # A long name is accepted shortened, never refused with a 500.
        stored = db.session.scalar(sa.select(Attachment.filename))
        assert stored and len(stored) <= 255
        return
    assert_refused(response, expected)
    assert _state() == before


def test_an_attachment_over_the_limit_is_413_with_a_japanese_page(app, world):
    from consult.settings import override

    override(app, ATTACHMENT_MAX_BYTES=1024)
    client = sign_in(app.test_client(), world["consultant"])
    before = _state()
    response = client.post(
        f"/tickets/{world['ticket']}/attachments",
        data={"file": (io.BytesIO(b"%PDF-1.7\n" + b"x" * 200_000), "大きい.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert any("\u3040" <= ch <= "\u9fff" for ch in page) and "Traceback" not in page
    assert _state() == before


PASSWORDS = [
    ("all empty", {}, "入力してください"),
    (
        "wrong current",
        {
            "current_password": "間違い-password-1",
            "new_password": "Nagai-aikotoba-2026!",
            "new_password_again": "Nagai-aikotoba-2026!",
        },
        None,
    ),
    (
        "mismatch",
        {
            "current_password": PASSWORD,
            "new_password": "Nagai-aikotoba-2026!",
            "new_password_again": "Nagai-aikotoba-2027!",
        },
        None,
    ),
    (
        "too short",
        {"current_password": PASSWORD, "new_password": "abc", "new_password_again": "abc"},
        None,
    ),
    (
        "too long",
        {"current_password": PASSWORD, "new_password": "x" * 300, "new_password_again": "x" * 300},
        None,
    ),
    (
        "same as now",
        {"current_password": PASSWORD, "new_password": PASSWORD, "new_password_again": PASSWORD},
        None,
    ),
]


@pytest.mark.parametrize(("case", "data", "expected"), PASSWORDS, ids=[p[0] for p in PASSWORDS])
def test_password_change(app, world, case, data, expected):
    client = sign_in(app.test_client(), world["consultant"])
    before = _state()
    response = client.post("/account/password", data=data)
    assert_refused(response, expected)
    assert _state() == before
    assert client.get("/tickets").status_code == 200  # still signed in


HANDOVERS = [
    ("nobody chosen", {"handover_note": "よろしくお願いします"}, "引き継ぐ相手を選んでください"),
    ("no note", {"colleague_id": "COLLEAGUE"}, "引継ぎのメモ"),
    (
        "a note too long",
        {"colleague_id": "COLLEAGUE", "handover_note": "あ" * 2001},
        "引継ぎのメモ",
    ),
    ("an id that is nobody", {"colleague_id": "999999", "handover_note": "メモ"}, None),
    ("an id that is not a number", {"colleague_id": "abc", "handover_note": "メモ"}, None),
    ("a huge id", {"colleague_id": "99999999999999999999", "handover_note": "メモ"}, None),
    ("an officer", {"colleague_id": "OFFICER", "handover_note": "メモ"}, None),
]


@pytest.mark.parametrize(("case", "data", "expected"), HANDOVERS, ids=[h[0] for h in HANDOVERS])
def test_handover_with_a_note(app, world, make_staff, case, data, expected):
    officer = make_staff("officer")
    ids = {"COLLEAGUE": str(world["colleague"].id), "OFFICER": str(officer.id)}
    data = {k: ids.get(v, v) for k, v in data.items()}
    client = sign_in(app.test_client(), world["consultant"])
    before = _state()
    response = client.post(f"/tickets/{world['ticket']}/handover", data=data)
    assert_refused(response, expected)
    assert _state() == before


def test_handover_of_a_closed_ticket(app, world):
    client = sign_in(app.test_client(), world["consultant"])
    before = _state()
    response = client.post(
        f"/tickets/{world['closed']}/handover",
        data={"colleague_id": str(world["colleague"].id), "handover_note": "メモ"},
    )
    if response.status_code == 302:
        response = client.get(response.headers["Location"])
    assert_refused(response)
    assert _state() == before


CITIZEN_MERGES = [
    ("no number", {}, "統合する相談者の番号を入力してください"),
    ("not a number", {"other_id": "abc"}, None),
    ("negative", {"other_id": "-5"}, None),
    ("huge", {"other_id": "99999999999999999999"}, None),
    ("nobody", {"other_id": "999999"}, None),
    ("itself", {"other_id": "SELF"}, "同じ相談者どうしは統合できません"),
    ("itself, confirmed", {"other_id": "SELF", "confirmed": "1"}, "同じ相談者どうし"),
    ("a reason too long", {"other_id": "OTHER", "reason": "理" * 201}, "理由"),
]


@pytest.mark.parametrize(
    ("case", "data", "expected"), CITIZEN_MERGES, ids=[c[0] for c in CITIZEN_MERGES]
)
def test_citizen_merge_form(app, world, case, data, expected):
    other = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="西村 花子"))
    db.session.commit()
    ids = {"SELF": str(world["citizen"]), "OTHER": str(other.id)}
    data = {k: ids.get(v, v) for k, v in data.items()}
    client = sign_in(app.test_client(), world["supervisor"])
    before = _state()
    response = client.post(f"/citizens/{world['citizen']}/merge", data=data)
    assert_refused(response, expected)
    assert _state() == before


TICKET_MERGES = [
    ("no number", {}, "統合先の相談番号"),
    ("not a number", {"target": "きのうの件"}, "見つかりません"),
    ("nobody's", {"target": "2026-999999"}, "見つかりません"),
    ("itself", {"target": "SELF"}, "同じ相談どうしは統合できません"),
    ("a closed target", {"target": "CLOSED"}, "完了した相談には統合できません"),
    ("a closed target, confirmed", {"target": "CLOSED", "confirmed": "1"}, "完了した相談"),
    ("a reason too long", {"target": "OTHER", "reason": "理" * 201}, "理由"),
    ("a number too long", {"target": "2026-" + "0" * 30}, None),
]


@pytest.mark.parametrize(
    ("case", "data", "expected"), TICKET_MERGES, ids=[t[0] for t in TICKET_MERGES]
)
def test_ticket_merge_form(app, world, case, data, expected):
    ids = {"SELF": world["ticket"], "CLOSED": world["closed"], "OTHER": world["other"]}
    data = {k: ids.get(v, v) for k, v in data.items()}
    client = sign_in(app.test_client(), world["supervisor"])
    before = _state()
    response = client.post(f"/tickets/{world['ticket']}/merge", data=data)
    assert_refused(response, expected)
    assert _state() == before


def test_merging_a_ticket_already_merged_is_refused_at_confirmation(app, world, make_ticket):
    client = sign_in(app.test_client(), world["supervisor"])
    assert (
        client.post(
            f"/tickets/{world['other']}/merge", data={"target": world["ticket"], "confirmed": "1"}
        ).status_code
        == 302
    )
    third = make_ticket(subject="三件目").number
    before = _state()
    # The merged ticket's number leads to its survivor; naming it as the target is refused.
    response = client.post(
        f"/tickets/{third}/merge", data={"target": world["other"], "confirmed": "1"}
    )
    assert_refused(response, "既に統合された相談です")
    assert _state() == before


ENROLMENTS = [
    ("empty", "", "確認コード"),
    ("letters", "abcdef", None),
    ("five digits", "12345", None),
    ("too long", "1" * 40, "確認コード"),
    ("wrong code", "000000", None),
]


@pytest.mark.parametrize(("case", "code", "expected"), ENROLMENTS, ids=[e[0] for e in ENROLMENTS])
def test_two_factor_enrolment(app, world, case, code, expected):
    client = sign_in(app.test_client(), world["consultant"])
    assert client.get("/account/two-factor").status_code == 200  # the secret is made
    before = _state()
    response = client.post("/account/two-factor", data={"code": code})
    assert_refused(response, expected)
    assert _state() == before
    db.session.expire_all()
    assert db.session.get(Staff, world["consultant"].id).totp_enabled_at is None


TOKEN_FORMS = [
    ("no name", {"i-scopes": "tickets:read"}, "連携名"),
    ("a name too long", {"i-name": "連" * 81, "i-scopes": "tickets:read"}, "連携名"),
    ("an unknown scope", {"i-name": "基幹連携", "i-scopes": "admin"}, None),
    ("no scope", {"i-name": "基幹連携"}, None),
    (
        "not an address",
        {"i-name": "基幹連携", "i-scopes": "faq", "i-allowed_addresses": "庁内LAN"},
        "IP アドレス",
    ),
    (
        "a network too wide to read",
        {"i-name": "基幹連携", "i-scopes": "faq", "i-allowed_addresses": "10.0.0.0/99"},
        None,
    ),
    ("not a date", {"i-name": "基幹連携", "i-scopes": "faq", "i-expires_on": "2026-13-45"}, None),
    ("a past date", {"i-name": "基幹連携", "i-scopes": "faq", "i-expires_on": "2020-01-01"}, None),
    (
        "a department that is none",
        {"i-name": "基幹連携", "i-scopes": "faq", "i-department_id": "999999"},
        None,
    ),
    (
        "a department that is text",
        {"i-name": "基幹連携", "i-scopes": "faq", "i-department_id": "abc"},
        None,
    ),
    ("a name taken", {"i-name": "TAKEN", "i-scopes": "faq"}, None),
]


@pytest.mark.parametrize(("case", "data", "expected"), TOKEN_FORMS, ids=[t[0] for t in TOKEN_FORMS])
def test_api_token_form(app, world, case, data, expected):
    from api import services as api_services

    api_services.create_integration(SYSTEM, name="既存の連携", scopes=["faq"])
    db.session.commit()
    data = {k: ("既存の連携" if v == "TAKEN" else v) for k, v in data.items()}
    client = sign_in(app.test_client(), world["admin"])
    before = _state()
    response = client.post("/admin/api/integrations", data=data)
    assert_refused(response, expected)
    assert "mdg_" not in response.get_data(as_text=True)  # no token was shown
    assert _state() == before
