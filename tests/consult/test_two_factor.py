"""Two-factor sign-in through the web, on SQLite and PostgreSQL: enrolment where required, the
code after the password, wrong / reused / expired codes, recovery codes once, the lock-out,
and an administrator's reset."""

from __future__ import annotations

import html
import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, RecoveryCode, Staff, StaffSession
from consult.services import totp
from consult.settings import override
from consult.timeutil import utcnow
from tests.consult.http import call
from tests.helpers import PASSWORD, sign_in

WRONG_CODE = "確認コードが正しくありません"
REUSED = "この確認コードは既に使われています"
EXPIRED = "この確認コードは有効期限が切れています"
RECOVERY_USED = "このリカバリーコードは既に使われています"


def enrol(staff: Staff) -> tuple[str, list[str]]:
    """Two-factor set up for `staff` as enrolment leaves it, without using a time step."""
    secret = totp.begin_enrolment(staff)
    staff.totp_enabled_at = utcnow()
    codes = totp._new_recovery_codes(staff)
    db.session.commit()
    return secret, codes


def password_step(app, client, staff):
    return call(app, client, "POST", "/login", data={"login": staff.login, "password": PASSWORD})


def code_step(app, client, code: str):
    return call(app, client, "POST", "/login/code", data={"code": code})


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def signed_in(app, client) -> bool:
    response = call(app, client, "GET", "/")
    return not (response.status_code == 302 and "/login" in response.headers["Location"])


def a_wrong_code(secret: str) -> str:
    """Six digits that are no code of the last few minutes or the next step."""
    otp = pyotp.TOTP(secret)
    now = time.time()
    recent = {otp.at(now + offset * 30) for offset in range(-12, 3)}
    return next(c for c in (f"{n:06d}" for n in range(100000, 100100)) if c not in recent)


# --- enrolment ----------------------------------------------------------------------------


def test_an_administrator_must_enrol_before_anything_else(app, make_staff):
    override(app, TOTP_REQUIRED="privileged")
    admin = make_staff("admin")
    client = app.test_client()
    response = password_step(app, client, admin)
    assert response.headers["Location"] == "/admin/"
    # Every page but the enrolment (and signing out) leads back to it.
    for url in ("/admin/", "/admin/staff", "/tickets", "/"):
        response = call(app, client, "GET", url)
        assert response.status_code == 302, url
        assert response.headers["Location"] == "/account/two-factor", url
    response = call(app, client, "GET", "/account/two-factor")
    text = page(response)
    assert response.status_code == 200
    assert "このアカウントでは二要素認証が必須です" in text
    assert 'src="data:image/svg+xml' in text
    shown = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', text).group(1)
    secret = shown.replace(" ", "")
    # The stored secret is encrypted: not the secret, nor does it contain it.
    db.session.expire_all()
    stored = db.session.get(Staff, admin.id).totp_secret
    assert stored and secret not in stored

    # A wrong first code sets nothing up; the same secret is shown again.
    response = call(app, client, "POST", "/account/two-factor", data={"code": a_wrong_code(secret)})
    assert WRONG_CODE in page(response)
    assert shown in page(response)
    assert call(app, client, "GET", "/admin/").headers["Location"] == "/account/two-factor"

    response = call(
        app, client, "POST", "/account/two-factor", data={"code": pyotp.TOTP(secret).now()}
    )
    text = page(response)
    assert "二要素認証を設定しました" in text
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", text)
    assert len(set(codes)) == 10
    # Stored as digests only, never the codes themselves.
    db.session.expire_all()
    hashes = db.session.scalars(
        sa.select(RecoveryCode.code_hash).where(RecoveryCode.staff_id == admin.id)
    ).all()
    assert len(hashes) == 10 and not {c.replace("-", "") for c in codes} & set(hashes)
    assert call(app, client, "GET", "/admin/").status_code == 200
    # The secret and the codes are never shown again.
    text = page(call(app, client, "GET", "/account/two-factor"))
    assert "設定済み" in text and shown not in text and codes[0] not in text
    assert "使っていないリカバリーコード：10個" in text.replace("<strong>", "").replace(
        "</strong>", ""
    )
    assert db.session.scalar(
        sa.select(AuditEvent.id).where(
            AuditEvent.action == "totp_enrol", AuditEvent.object_id == str(admin.id)
        )
    )


def test_who_must_enrol_follows_the_setting(app, make_staff):
    consultant, supervisor = make_staff("consultant"), make_staff("supervisor")
    override(app, TOTP_REQUIRED="privileged")
    assert sign_in(app, consultant)  # not asked
    client = sign_in(app, supervisor)
    assert call(app, client, "GET", "/tickets").headers["Location"] == "/account/two-factor"
    # Nothing on the enrolment page leads where the gate would refuse: no menu, no help
    # button, no live feeds.
    text = page(call(app, client, "GET", "/account/two-factor"))
    assert 'id="help-form"' not in text and "alerts-live" not in text
    assert "live.js" not in text and "相談一覧" not in text

    override(app, TOTP_REQUIRED="all")
    client = sign_in(app, consultant)
    assert call(app, client, "GET", "/tickets").headers["Location"] == "/account/two-factor"

    override(app, TOTP_REQUIRED="none")
    client = sign_in(app, supervisor)
    assert call(app, client, "GET", "/tickets").status_code == 200


def test_anyone_may_enrol_when_not_required(app, make_staff):
    staff = make_staff("consultant")
    client = sign_in(app, staff)
    text = page(call(app, client, "GET", "/account/two-factor"))
    assert "必須です" not in text and "totp-secret" in text


# --- the code after the password ----------------------------------------------------------


def test_the_code_is_asked_after_the_password(app, make_staff):
    staff = make_staff("consultant")
    secret, _codes = enrol(staff)
    client = app.test_client()
    response = password_step(app, client, staff)
    assert response.headers["Location"] == "/login/code"
    # Not signed in yet: no session, and staff pages still ask to sign in.
    assert not signed_in(app, client)
    assert not db.session.scalars(
        sa.select(StaffSession).where(StaffSession.staff_id == staff.id)
    ).all()
    assert "確認コードの入力" in page(call(app, client, "GET", "/login/code"))

    response = code_step(app, client, a_wrong_code(secret))
    assert response.status_code == 200 and WRONG_CODE in page(response)
    assert not signed_in(app, client)

    response = code_step(app, client, pyotp.TOTP(secret).now())
    assert response.status_code == 302 and response.headers["Location"] == "/tickets"
    assert signed_in(app, client)


def test_full_width_digits_and_spaces_are_read(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    code = pyotp.TOTP(secret).now()
    typed = " ".join(chr(ord(d) + 0xFEE0) for d in code[:3]) + " " + code[3:]
    client = app.test_client()
    password_step(app, client, staff)
    assert code_step(app, client, typed).status_code == 302


def test_a_code_is_accepted_once(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    code = pyotp.TOTP(secret).now()
    first = app.test_client()
    password_step(app, first, staff)
    assert code_step(app, first, code).status_code == 302

    second = app.test_client()  # someone who saw the code over the shoulder
    password_step(app, second, staff)
    response = code_step(app, second, code)
    assert REUSED in page(response)
    assert not signed_in(app, second)


def test_an_old_code_is_told_expired(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    old = pyotp.TOTP(secret).at(time.time() - 150)
    if old == pyotp.TOTP(secret).now():  # one chance in a million: the same digits again
        old = pyotp.TOTP(secret).at(time.time() - 180)
    client = app.test_client()
    password_step(app, client, staff)
    response = code_step(app, client, old)
    assert EXPIRED in page(response)
    assert not signed_in(app, client)


def test_the_step_between_password_and_code_expires(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    client = app.test_client()
    password_step(app, client, staff)
    with client.session_transaction() as session:
        pending = session["pending_login"]
        pending["at"] -= 6 * 60
        session["pending_login"] = pending
    response = code_step(app, client, pyotp.TOTP(secret).now())
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    text = page(call(app, client, "GET", "/login"))
    assert "確認コードの入力時間（5分）を過ぎました" in text
    assert not signed_in(app, client)
    # Without any password step, the code page is only a way back to the password.
    response = call(app, app.test_client(), "GET", "/login/code")
    assert response.headers["Location"] == "/login"


def test_wrong_codes_count_toward_the_lock_out(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    client = app.test_client()
    password_step(app, client, staff)  # attempt 1 (the right password does not clear it)
    for _ in range(3):  # attempts 2-4
        assert WRONG_CODE in page(code_step(app, client, a_wrong_code(secret)))
    response = code_step(app, client, a_wrong_code(secret))  # attempt 5: the lock
    assert response.headers["Location"] == "/login"
    assert "ロック" in page(call(app, client, "GET", "/login"))
    # Locked: neither the right password nor the right code gets in now.
    response = password_step(app, app.test_client(), staff)
    assert response.status_code == 200 and "ロック" in page(response)
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "totp_failed", AuditEvent.object_id == str(staff.id)
            )
        )
        == 4
    )


def test_a_full_sign_in_clears_the_count(app, make_staff):
    staff = make_staff("consultant")
    secret, _ = enrol(staff)
    client = app.test_client()
    password_step(app, client, staff)
    for _ in range(3):
        code_step(app, client, a_wrong_code(secret))
    assert code_step(app, client, pyotp.TOTP(secret).now()).status_code == 302
    # Four more wrong passwords are not a lock: the count started again.
    for _ in range(4):
        response = call(
            app, app.test_client(), "POST", "/login", data={"login": staff.login, "password": "x"}
        )
        assert "ロック" not in page(response)


def test_recovery_codes_work_once(app, make_staff):
    staff = make_staff("consultant")
    _secret, codes = enrol(staff)
    client = app.test_client()
    password_step(app, client, staff)
    response = code_step(app, client, codes[0].upper())  # as copied from paper, in capitals
    assert response.status_code == 302
    text = page(call(app, client, "GET", "/tickets"))
    assert "リカバリーコードでログインしました（残り9個）" in text

    again = app.test_client()
    password_step(app, again, staff)
    response = code_step(app, again, codes[0])
    assert RECOVERY_USED in page(response)
    assert not signed_in(app, again)
    # Another one still works.
    assert code_step(app, again, codes[1].replace("-", "")).status_code == 302
    assert db.session.scalar(
        sa.select(AuditEvent.id).where(
            AuditEvent.action == "totp_recovery", AuditEvent.object_id == str(staff.id)
        )
    )


# --- an administrator's reset ------------------------------------------------------------


def test_an_administrator_resets_two_factor(app, make_staff):
    admin = make_staff("admin")
    supervisor = make_staff("supervisor")
    secret, _ = enrol(supervisor)
    signed = sign_in(app, supervisor, totp=secret)
    assert call(app, signed, "GET", "/tickets").status_code == 200

    admin_client = sign_in(app, admin)
    text = page(call(app, admin_client, "GET", f"/admin/staff/{supervisor.id}"))
    assert "二要素認証をリセットする" in text
    response = call(app, admin_client, "POST", f"/admin/staff/{supervisor.id}/two-factor/reset")
    assert response.status_code == 302
    assert "二要素認証をリセットしました" in page(
        call(app, admin_client, "GET", response.headers["Location"])
    )
    # The supervisor's open session has ended, and the reset is in the audit log.
    assert not signed_in(app, signed)
    db.session.expire_all()
    member = db.session.get(Staff, supervisor.id)
    assert member.totp_secret is None and not member.has_totp
    assert not db.session.scalars(
        sa.select(RecoveryCode).where(RecoveryCode.staff_id == supervisor.id)
    ).all()
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "totp_reset")).one()
    assert event.staff_id == admin.id and event.object_id == str(supervisor.id)

    # Where it is required, the supervisor enrols again after the password.
    override(app, TOTP_REQUIRED="privileged")
    client = app.test_client()
    assert password_step(app, client, supervisor).headers["Location"] == "/tickets"
    assert call(app, client, "GET", "/tickets").headers["Location"] == "/account/two-factor"


def test_only_administrators_reset(app, make_staff):
    victim = make_staff("consultant")
    enrol(victim)
    supervisor = sign_in(app, make_staff("supervisor"))
    response = call(app, supervisor, "POST", f"/admin/staff/{victim.id}/two-factor/reset")
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Staff, victim.id).has_totp


def test_the_command_line_resets_two_factor(app, make_staff):
    """The only administrator lost phone and recovery codes: reset on the server."""
    admin = make_staff("admin")
    enrol(admin)
    result = app.test_cli_runner().invoke(args=["staff", "reset-two-factor", admin.login])
    assert result.exit_code == 0, result.output
    assert "二要素認証をリセットしました" in result.output
    db.session.expire_all()
    assert not db.session.get(Staff, admin.id).has_totp
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "totp_reset")).one()
    assert event.address.startswith("cli:")
    result = app.test_cli_runner().invoke(args=["staff", "reset-two-factor", "nobody"])
    assert result.exit_code != 0 and "職員はいません" in result.output


def test_a_short_totp_key_stops_the_start(tmp_path):
    from consult import create_app
    from consult.config import ConfigError

    with pytest.raises(ConfigError, match="MADOGUCHI_TOTP_KEY"):
        create_app(
            {"TOTP_KEY": "short", "SECRET_KEY": "x" * 40, "DATA_DIR": str(tmp_path)},
            instance_path=str(tmp_path / "instance"),
        )
