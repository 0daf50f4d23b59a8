"""One-button help devices and the phone help page (Minato's practice).

A device raises the same alert as the page's button, as the member of staff it was registered
to, at the place it was registered for; its token is shown once and kept only as a digest.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from consult.extensions import db
from consult.models import AlertDevice, AuditEvent, HelpAlert
from tests.consult.http import call
from tests.helpers import csrf_token_from, sign_in


def _register(app, admin_client, holder, place="room2", name="相談室2 机下ボタン"):
    response = call(
        app,
        admin_client,
        "POST",
        "/admin/devices",
        data={"name": name, "staff_id": str(holder.id), "place": place},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    token = re.search(r'<code class="token">(mdv_[^<]+)</code>', page)[1]
    return token


def _press(app, token, address="192.0.2.7"):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return call(
        app,
        client,
        "POST",
        "/alerts/device",
        headers=headers,
        environ_base={"REMOTE_ADDR": address},
    )


def _audited(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_a_registered_device_raises_the_alert_of_its_holder_at_its_place(app, make_staff):
    admin = sign_in(app, make_staff("admin"))
    holder = make_staff("consultant", full_name="窓口 一郎")
    room = sign_in(app, make_staff("support"))

    token = _register(app, admin, holder)
    # Kept only as a digest: the token is in no column of the table.
    row = db.session.scalar(sa.select(AlertDevice))
    assert token not in (row.token_hash, row.token_prefix) and token.startswith(row.token_prefix)
    # Not shown again: the list names it by its first characters only.
    listing = call(app, admin, "GET", "/admin/devices").get_data(as_text=True)
    assert token not in listing and "相談室2 机下ボタン" in listing and row.token_prefix in listing

    response = _press(app, token)
    assert response.status_code == 200
    assert response.get_json()["place"] == "相談室2（端末で選択）"
    feed = call(app, room, "GET", "/alerts/live.json").get_json()
    assert [(a["place"], a["raised_by"]) for a in feed["alerts"]] == [
        ("相談室2（端末で選択）", "窓口 一郎")
    ]
    # A second press within the minute is the same alert, as on the page.
    assert _press(app, token).get_json()["id"] == response.get_json()["id"]
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 1
    db.session.expire_all()
    assert db.session.get(AlertDevice, row.id).last_used_at is not None
    assert len(_audited("device_registered")) == 1
    pressed = _audited("device_pressed")
    assert [(e.staff_id, e.address) for e in pressed] == [(holder.id, "192.0.2.7")] * 2


def test_wrong_missing_and_revoked_tokens_raise_nothing(app, make_staff):
    admin = sign_in(app, make_staff("admin"))
    holder = make_staff("consultant")
    token = _register(app, admin, holder)

    for bad in (None, "", "mdv_not-a-token", token + "x"):
        response = _press(app, bad)
        assert response.status_code == 401
        assert response.get_json()["error"] == "端末の鍵が正しくないか、登録が取り消されています。"
    # A signed-in member of staff's cookie alone is not a device (why no CSRF token is asked).
    signed_in = sign_in(app, holder)
    assert call(app, signed_in, "POST", "/alerts/device").status_code == 401
    device_id = db.session.scalar(sa.select(AlertDevice.id))
    assert call(app, admin, "POST", f"/admin/devices/{device_id}/revoke").status_code == 302
    assert _press(app, token).status_code == 401
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 0
    assert len(_audited("device_revoked")) == 1


def test_an_address_that_keeps_failing_is_told_to_wait(app, make_staff):
    for _ in range(20):
        assert _press(app, "mdv_guess", address="198.51.100.9").status_code == 401
    response = _press(app, "mdv_guess", address="198.51.100.9")
    assert response.status_code == 429
    assert "しばらく" in response.get_json()["error"]
    # Another address is not affected.
    assert _press(app, "mdv_guess", address="198.51.100.10").status_code == 401


def test_a_device_of_someone_who_left_raises_nothing(app, make_staff):
    admin = sign_in(app, make_staff("admin"))
    holder = make_staff("consultant")
    token = _register(app, admin, holder)
    holder.active = False
    db.session.commit()
    response = _press(app, token)
    assert response.status_code == 403
    assert "管理者に連絡" in response.get_json()["error"]
    assert db.session.scalar(sa.select(sa.func.count(HelpAlert.id))) == 0


def test_only_administrators_register_and_bad_input_registers_nothing(app, make_staff):
    consultant = make_staff("consultant")
    officer = make_staff("officer")
    desk = sign_in(app, consultant)
    assert call(app, desk, "GET", "/admin/devices").status_code == 403
    assert (
        call(
            app,
            desk,
            "POST",
            "/admin/devices",
            data={"name": "x", "staff_id": str(consultant.id), "place": "room1"},
        ).status_code
        == 403
    )
    admin = sign_in(app, make_staff("admin"))
    cases = [
        ({"name": "", "staff_id": str(consultant.id), "place": "room1"}, "端末の名前を入力"),
        ({"name": "ボタン", "staff_id": str(consultant.id), "place": "roof"}, "選択"),
        ({"name": "ボタン", "staff_id": str(officer.id), "place": "room1"}, "選択"),
        ({"name": "ボタン", "staff_id": "", "place": "room1"}, "職員を選んでください"),
        ({"name": "ボ" * 81, "staff_id": str(consultant.id), "place": "room1"}, "80文字"),
    ]
    for data, message in cases:
        response = call(app, admin, "POST", "/admin/devices", data=data)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(AlertDevice.id))) == 0


def test_the_device_needs_no_csrf_token_while_the_admin_form_does(app_factory, make_staff):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        admin = make_staff("admin")
        holder = make_staff("consultant")
        client = sign_in(app, admin, csrf=True)
        data = {"name": "ボタン", "staff_id": str(holder.id), "place": "counter"}
        assert call(app, client, "POST", "/admin/devices", data=data).status_code in (400, 422)
        assert db.session.scalar(sa.select(sa.func.count(AlertDevice.id))) == 0
        page = call(app, client, "GET", "/admin/devices").get_data(as_text=True)
        data["csrf_token"] = csrf_token_from(page)
        token = _register_with(app, client, data)
        assert _press(app, token).status_code == 200


def _register_with(app, client, data) -> str:
    response = call(app, client, "POST", "/admin/devices", data=data)
    assert response.status_code == 200
    return re.search(r'<code class="token">(mdv_[^<]+)</code>', response.get_data(as_text=True))[1]


def test_the_phone_page_is_the_help_button_alone(app, make_staff):
    desk = sign_in(app, make_staff("consultant"))
    page = call(app, desk, "GET", "/alerts/phone").get_data(as_text=True)
    assert 'class="help-button help-button--phone"' in page
    assert "場所（この端末で選択）" in page and "Alt+H" not in page
    officer = sign_in(app, make_staff("officer"))
    assert call(app, officer, "GET", "/alerts/phone").status_code == 403


def test_the_report_counts_calls_by_whether_the_recording_notice_was_played(app, make_staff):
    desk = sign_in(app, make_staff("consultant"))
    for announced in (True, True, False):
        data = {"anonymous": "y", "duration_minutes": "5", "first_note": "保険料の相談。"}
        if announced:
            data["recording_announced"] = "y"
        response = call(app, desk, "POST", "/phone/new", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
    boss = sign_in(app, make_staff("supervisor"))
    page = call(app, boss, "GET", "/reports").get_data(as_text=True)
    section = page[page.index("電話相談と録音のお知らせ") :]
    cells = re.findall(r'<td class="num">([^<]+)</td>', section)[:4]
    assert cells == ["3", "2", "1", "67%"]
    assert "録音を記録として使う前に確認" in section
