"""Directory sign-in against a real OpenLDAP server (tests/ldap_server.py), on both databases:
the Staff row made from the directory, roles and departments from groups, disabled accounts,
the lock-out, the break-glass local administrator, and two-factor for directory accounts."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import LoginAttempt, Role, Staff
from consult.services.directory import ldap3
from consult.settings import override
from tests.consult.http import call
from tests.helpers import PASSWORD, sign_in
from tests.ldap_server import PEOPLE, USER_PASSWORD, group, person

LOGIN_FAILED = "ログインIDまたはパスワードが正しくありません。"
DISABLED = "このアカウントはディレクトリで無効（利用停止）になっているため"


@pytest.fixture
def directory_app(app, ldap_directory, make_department):
    override(app, **ldap_directory.settings())
    make_department(code="fukushi", name="福祉課")
    return app


def attempt(app, login, password, client=None):
    client = client or app.test_client()
    response = call(app, client, "POST", "/login", data={"login": login, "password": password})
    return response, html.unescape(response.get_data(as_text=True))


def staff_row(login) -> Staff | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Staff).where(Staff.login == login))


def test_a_directory_account_signs_in_and_gets_a_staff_row(directory_app):
    assert staff_row("d.officer") is None
    client = sign_in(directory_app, "d.officer", USER_PASSWORD)
    staff = staff_row("d.officer")
    assert staff.role == Role.OFFICER
    assert staff.department.code == "fukushi"
    assert staff.full_name == "福祉 花子"
    assert staff.email == "d.officer@city.example"
    assert staff.directory_dn == person("d.officer")
    # The officer lands in their department's inbox, as a local officer does.
    response = call(directory_app, client, "GET", "/")
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    # Its local password is unusable: the directory decides.
    assert staff.password_hash == "!directory"


@pytest.mark.parametrize(
    ("login", "role"),
    [
        ("d.consultant", Role.CONSULTANT),
        ("d.supervisor", Role.SUPERVISOR),  # also a consultant: the first mapping wins
        ("d.admin", Role.ADMIN),
    ],
)
def test_groups_map_to_roles(directory_app, login, role):
    sign_in(directory_app, login, USER_PASSWORD)
    assert staff_row(login).role == role


def test_no_mapped_group_no_sign_in(directory_app):
    response, text = attempt(directory_app, "d.nogroup", USER_PASSWORD)
    assert response.status_code == 200
    assert "窓口システムの役割が割り当てられていません" in text
    assert staff_row("d.nogroup") is None


def test_a_role_changed_in_the_directory_applies_at_the_next_sign_in(directory_app, ldap_directory):
    first = sign_in(directory_app, "d.moves", USER_PASSWORD)
    assert staff_row("d.moves").role == Role.CONSULTANT
    dn = group("madoguchi-supervisors")
    ldap_directory.modify(dn, {"member": [(ldap3.MODIFY_ADD, [person("d.moves")])]})
    try:
        second = sign_in(directory_app, "d.moves", USER_PASSWORD)
        assert staff_row("d.moves").role == Role.SUPERVISOR
        # The session opened under the old role has ended; the new one works.
        response = call(directory_app, first, "GET", "/tickets")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
        assert call(directory_app, second, "GET", "/reports").status_code == 200
    finally:
        ldap_directory.modify(dn, {"member": [(ldap3.MODIFY_DELETE, [person("d.moves")])]})


@pytest.mark.parametrize("login", ["d.disabled", "d.ad-disabled"])
def test_a_disabled_directory_account_cannot_sign_in(directory_app, login):
    # d.disabled is in the disabled group; d.ad-disabled has AD's userAccountControl 514.
    response, text = attempt(directory_app, login, USER_PASSWORD)
    assert response.status_code == 200
    assert DISABLED in text
    assert staff_row(login) is None
    # With a wrong password nothing tells that the account is disabled.
    _response, text = attempt(directory_app, login, "wrong-password-123")
    assert LOGIN_FAILED in text and DISABLED not in text


def test_disabling_ends_the_open_sessions_at_the_next_attempt(directory_app, ldap_directory):
    client = sign_in(directory_app, "d.consultant", USER_PASSWORD)
    dn = group("madoguchi-disabled")
    ldap_directory.modify(dn, {"member": [(ldap3.MODIFY_ADD, [person("d.consultant")])]})
    try:
        _response, text = attempt(directory_app, "d.consultant", USER_PASSWORD)
        assert DISABLED in text
        response = call(directory_app, client, "GET", "/tickets")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    finally:
        ldap_directory.modify(dn, {"member": [(ldap3.MODIFY_DELETE, [person("d.consultant")])]})


def test_wrong_directory_passwords_count_toward_the_lock_out(directory_app):
    for _ in range(4):
        _response, text = attempt(directory_app, "d.lockout", "wrong-password-123")
        assert LOGIN_FAILED in text
    _response, text = attempt(directory_app, "D.Lockout", "wrong-password-123")  # any case
    assert "ロック" in text
    # Locked: the right password is refused too, and the directory is not even asked.
    _response, text = attempt(directory_app, "d.lockout", USER_PASSWORD)
    assert "ロック" in text
    assert staff_row("d.lockout") is None
    failures = db.session.scalar(
        sa.select(sa.func.count(LoginAttempt.id)).where(
            LoginAttempt.login == "d.lockout", LoginAttempt.success.is_(False)
        )
    )
    assert failures == 5


def test_unknown_people_and_filter_tricks_are_wrong_passwords(directory_app):
    for login in ("nobody", "*", "d.admin)(uid=*", "d.admin"):
        _response, text = attempt(directory_app, login, "wrong-password-123")
        assert LOGIN_FAILED in text, login
    # An empty password would be an anonymous bind, which directories accept.
    _response, text = attempt(directory_app, "d.admin", "")
    assert staff_row("d.admin") is None


def test_the_break_glass_administrator_keeps_the_local_password(directory_app, make_staff):
    make_staff("admin", login="breakglass")
    client = sign_in(directory_app, "breakglass", PASSWORD)
    assert call(directory_app, client, "GET", "/admin/").status_code == 200
    # Any other local account is asked of the directory, which does not know it.
    local = make_staff("consultant")
    _response, text = attempt(directory_app, local.login, PASSWORD)
    assert LOGIN_FAILED in text


def test_a_user_dn_template_without_a_service_account(directory_app):
    override(
        directory_app,
        LDAP_BIND_DN="",
        LDAP_BIND_PASSWORD="",
        LDAP_SEARCH_BASE="",
        LDAP_USER_DN_TEMPLATE=f"uid={{login}},{PEOPLE}",
    )
    sign_in(directory_app, "d.supervisor", USER_PASSWORD)
    assert staff_row("d.supervisor").role == Role.SUPERVISOR
    _response, text = attempt(directory_app, "d.supervisor", "wrong-password-123")
    assert LOGIN_FAILED in text


def test_the_directory_down_is_said_so(directory_app):
    from tests.gunicorn import free_port

    override(directory_app, LDAP_URL=f"ldap://127.0.0.1:{free_port()}", LDAP_TIMEOUT_SECONDS=2)
    response, text = attempt(directory_app, "d.consultant", USER_PASSWORD)
    assert response.status_code == 200
    assert "ディレクトリサーバーに接続できないため" in text


def test_two_factor_applies_to_directory_accounts(directory_app):
    override(directory_app, TOTP_REQUIRED="privileged")
    client = sign_in(directory_app, "d.twofactor", USER_PASSWORD)
    response = call(directory_app, client, "GET", "/tickets")
    assert response.headers["Location"] == "/account/two-factor"


def test_directory_passwords_are_not_reset_here(directory_app, make_staff):
    sign_in(directory_app, "d.consultant", USER_PASSWORD)
    member = staff_row("d.consultant")
    admin = sign_in(directory_app, make_staff("admin", login="breakglass"))
    response = call(
        directory_app,
        admin,
        "POST",
        f"/admin/staff/{member.id}/password",
        data={"password": "a-new-password-123"},
    )
    assert "ディレクトリで管理されています" in html.unescape(response.get_data(as_text=True))


def test_the_service_refuses_an_empty_password(directory_app):
    from consult.services import directory

    with pytest.raises(directory.WrongPassword):
        directory.lookup("d.admin", "")


def test_a_role_mapping_that_names_no_role_stops_the_start(tmp_path):
    from consult import create_app
    from consult.config import ConfigError

    with pytest.raises(ConfigError, match="no role 'chief'"):
        create_app(
            {
                "LDAP_URL": "ldap://127.0.0.1:1",
                "LDAP_SEARCH_BASE": "dc=city,dc=example",
                "LDAP_ROLE_GROUPS": "chief=cn=chiefs,dc=city,dc=example",
                "SECRET_KEY": "x" * 40,
                "DATA_DIR": str(tmp_path),
            },
            instance_path=str(tmp_path / "instance"),
        )
