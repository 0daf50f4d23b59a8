"""Sessions that really end, and a login that cannot be guessed at."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import sqlalchemy as sa

from consult.extensions import db
from consult.models import StaffSession
from consult.timeutil import to_tokyo, utcnow
from tests.consult.http import call
from tests.helpers import PASSWORD, sign_in

COOKIE = "madoguchi_session"
WRONG = "wrong-password-123"
LOGIN_FAILED = "ログインIDまたはパスワードが正しくありません。"


def cookie(client) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def with_cookie(app, value: str):
    """A second browser that stole (or kept) the cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def to_login(response) -> bool:
    return response.status_code == 302 and urlparse(response.headers["Location"]).path == "/login"


def _sessions(staff):
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(StaffSession).where(StaffSession.staff_id == staff.id))
    )


def test_login_changes_the_session_and_logout_ends_it(app, make_staff):
    staff = make_staff("consultant")
    browser = app.test_client()
    assert to_login(call(app, browser, "GET", "/tickets"))  # the flash sets a first cookie
    before = cookie(browser)
    assert before
    sign_in(browser, staff)
    after = cookie(browser)
    assert after and after != before
    # The pre-login cookie is not a logged-in session.
    assert to_login(call(app, with_cookie(app, before), "GET", "/tickets"))

    copy = with_cookie(app, after)
    assert call(app, copy, "GET", "/tickets").status_code == 200

    assert to_login(call(app, browser, "POST", "/logout"))
    assert to_login(call(app, browser, "GET", "/tickets"))
    assert to_login(call(app, copy, "GET", "/tickets")), "the old cookie must be refused"
    [session] = _sessions(staff)
    assert session.ended_at is not None and session.end_reason == "logout"


def test_logging_in_again_gives_a_new_server_side_session(app, make_staff):
    staff = make_staff("consultant")
    first = sign_in(app, staff)
    second = sign_in(app, staff)
    assert cookie(first) != cookie(second)
    assert len({s.token_hash for s in _sessions(staff)}) == 2


def test_deactivation_ends_sessions(app, make_staff):
    staff = make_staff("consultant")
    admin = sign_in(app, make_staff("admin"))
    copy = with_cookie(app, cookie(sign_in(app, staff)))
    assert call(app, copy, "GET", "/tickets").status_code == 200
    response = call(app, admin, "POST", f"/admin/staff/{staff.id}/active", data={})
    assert response.status_code == 302
    assert to_login(call(app, copy, "GET", "/tickets"))
    # and the password no longer opens a session
    response = call(
        app, app.test_client(), "POST", "/login", data={"login": staff.login, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert LOGIN_FAILED in response.get_data(as_text=True)


def test_password_reset_by_admin_ends_sessions(app, make_staff):
    staff = make_staff("consultant")
    admin = sign_in(app, make_staff("admin"))
    copy = with_cookie(app, cookie(sign_in(app, staff)))
    assert call(app, copy, "GET", "/tickets").status_code == 200
    response = call(
        app,
        admin,
        "POST",
        f"/admin/staff/{staff.id}/password",
        data={"password": "new-pass-word-42"},
    )
    assert response.status_code == 302
    assert to_login(call(app, copy, "GET", "/tickets"))
    sign_in(app, staff, password="new-pass-word-42")


def _age(staff, **values):
    db.session.execute(
        sa.update(StaffSession).where(StaffSession.staff_id == staff.id).values(**values)
    )
    db.session.commit()


def test_idle_timeout_after_30_minutes(app, make_staff):
    staff = make_staff("consultant")
    browser = sign_in(app, staff)
    _age(staff, last_seen_at=utcnow() - timedelta(minutes=29))
    assert call(app, browser, "GET", "/tickets").status_code == 200
    _age(staff, last_seen_at=utcnow() - timedelta(minutes=31))
    assert to_login(call(app, browser, "GET", "/tickets"))
    # ended for good: coming back to "now" does not revive it
    _age(staff, last_seen_at=utcnow())
    assert to_login(call(app, browser, "GET", "/tickets"))
    [session] = _sessions(staff)
    assert session.end_reason == "idle"


def test_absolute_timeout_even_when_active(app, make_staff):
    staff = make_staff("consultant")
    browser = sign_in(app, staff)
    _age(staff, created_at=utcnow() - timedelta(hours=11), last_seen_at=utcnow())
    assert to_login(call(app, browser, "GET", "/tickets"))
    [session] = _sessions(staff)
    assert session.end_reason == "expired"


def _try(app, login, password, client=None, **kwargs):
    client = client or app.test_client()
    return call(
        app, client, "POST", "/login", data={"login": login, "password": password}, **kwargs
    )


def test_five_wrong_passwords_lock_the_account(app, make_staff):
    staff = make_staff("consultant")
    for _ in range(4):
        response = _try(app, staff.login, WRONG)
        assert response.status_code == 200
        assert LOGIN_FAILED in response.get_data(as_text=True)
    started = utcnow()
    response = _try(app, staff.login, WRONG)
    page = response.get_data(as_text=True)
    assert "ロック" in page
    retry = re.search(r"(\d{4}/\d{2}/\d{2}) (\d{2}:\d{2}) 以降", page)
    assert retry, page
    expected = to_tokyo(started + timedelta(minutes=15))
    assert retry.group(2) in {
        expected.strftime("%H:%M"),
        (expected + timedelta(minutes=1)).strftime("%H:%M"),
    }

    # The right password is refused while the lock lasts …
    response = _try(app, staff.login, PASSWORD)
    assert response.status_code == 200
    assert "ロック" in response.get_data(as_text=True)
    assert not _sessions(staff)
    # … but the lock is per account: someone else at the same address still gets in.
    sign_in(app, make_staff("consultant"))


def test_lock_ends_after_the_lock_time(app, make_staff):
    from consult.models import RateLimitCounter

    staff = make_staff("consultant")
    for _ in range(5):
        _try(app, staff.login, WRONG)
    assert "ロック" in _try(app, staff.login, PASSWORD).get_data(as_text=True)
    # Sixteen minutes later: the lock's window has ended.
    past = int((utcnow() - timedelta(minutes=1)).timestamp())
    db.session.execute(sa.update(RateLimitCounter).values(window_ends=past))
    db.session.commit()
    sign_in(app, staff)


def test_a_busy_address_never_refuses_the_right_password(app_factory, app, make_staff):
    """Issue 14 item 11: failures from one address (a city hall behind one NAT) lock no one.

    Before: the third failure from the address locked every account from it, the
    administrator's right password included. Now the address's wrong guesses are answered 429
    with a doubling wait, and a right password for an account that is not itself locked gets in.
    """
    strict = app_factory(LOGIN_MAX_FAILURES_PER_ADDRESS=3)
    admin = make_staff("admin")
    for n in range(3):  # three different logins: no single account reaches its own limit
        response = _try(strict, f"guess{n}", WRONG)
        assert response.status_code == 200
        assert LOGIN_FAILED in response.get_data(as_text=True)
    waits = []
    for n in range(3, 6):  # past the address's allowance: slowed down, with a growing wait
        response = _try(strict, f"guess{n}", WRONG)
        assert response.status_code == 429
        page = response.get_data(as_text=True)
        found = re.search(r"しばらく待ってから、もう一度お試しください（あと(\d+)秒）", page)
        assert found, page
        assert response.headers["Retry-After"] == found[1]
        waits.append(int(found[1]))
    assert waits == sorted(waits) and waits[0] < waits[-1], waits
    # The administrator, from the same address, right now, with the right password: in.
    sign_in(strict, admin)
    # A wrong guess for the administrator is slowed like the others; the right one still gets in.
    assert _try(strict, admin.login, WRONG).status_code == 429
    sign_in(strict, admin)


def test_the_per_login_lock_still_holds_behind_a_busy_address(app_factory, app, make_staff):
    strict = app_factory(LOGIN_MAX_FAILURES_PER_ADDRESS=3)
    victim = make_staff("consultant")
    for _ in range(5):
        _try(strict, victim.login, WRONG)
    response = _try(strict, victim.login, PASSWORD)
    assert response.status_code == 200
    assert "ロック" in response.get_data(as_text=True)
    assert not _sessions(victim)
    # The lock is the account's own: from another address too.
    response = _try(strict, victim.login, PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert "ロック" in response.get_data(as_text=True)
    assert not _sessions(victim)


def test_unknown_login_gets_the_same_answer_as_a_wrong_password(app, make_staff):
    staff = make_staff("consultant")
    wrong = _try(app, staff.login, WRONG)
    unknown = _try(app, "no-such-person", WRONG)
    assert wrong.status_code == unknown.status_code == 200
    assert LOGIN_FAILED in wrong.get_data(as_text=True)
    assert LOGIN_FAILED in unknown.get_data(as_text=True)


def test_unknown_login_locks_like_a_real_one(app):
    for _ in range(4):
        assert "ロック" not in _try(app, "no-such-person", WRONG).get_data(as_text=True)
    assert "ロック" in _try(app, "no-such-person", WRONG).get_data(as_text=True)


def test_next_only_to_our_own_paths(app, make_staff):
    staff = make_staff("consultant")
    evils = (
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "http:/evil.example",
        "/\t/evil.example",  # browsers drop the tab: //evil.example
        "/\n/evil.example",  # a newline in a header: used to be a 500
        "/\r\n/evil.example",
        " //evil.example",
    )
    for evil in evils:
        page = call(app, app.test_client(), "GET", "/login", query_string={"next": evil}).get_data(
            as_text=True
        )
        assert "evil.example" not in page
        response = call(
            app,
            app.test_client(),
            "POST",
            "/login",
            data={"login": staff.login, "password": PASSWORD, "next": evil},
        )
        assert response.status_code == 302
        location = urlparse(response.headers["Location"])
        assert location.netloc in ("", "localhost"), evil
        assert "evil.example" not in response.headers["Location"]
        assert location.path == "/tickets"
    response = call(
        app,
        app.test_client(),
        "POST",
        "/login",
        data={"login": staff.login, "password": PASSWORD, "next": "/tickets?status=new"},
    )
    assert response.headers["Location"] == "/tickets?status=new"


def test_anonymous_is_sent_to_login_with_next(app):
    response = call(app, app.test_client(), "GET", "/tickets")
    assert to_login(response)
    assert "next=%2Ftickets" in response.headers["Location"]


def test_role_change_ends_sessions(app, make_staff):
    staff = make_staff("consultant")
    admin = sign_in(app, make_staff("admin"))
    copy = with_cookie(app, cookie(sign_in(app, staff)))
    assert call(app, copy, "GET", "/tickets").status_code == 200
    response = call(
        app,
        admin,
        "POST",
        f"/admin/staff/{staff.id}",
        data={
            "full_name": staff.full_name,
            "display_name": staff.display_name,
            "role": "supervisor",
            "department_id": "",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    assert to_login(call(app, copy, "GET", "/tickets"))


def test_two_browsers_in_one_test_are_two_users(app, make_staff):
    """Each request judges its own cookie, even with the plain test client."""
    first = make_staff("consultant", full_name="山田 一郎")
    second = make_staff("admin", full_name="田中 花子")
    one = sign_in(app.test_client(), first)
    two = sign_in(app.test_client(), second)
    assert "山田 一郎" in one.get("/tickets").get_data(as_text=True)
    page = two.get("/tickets").get_data(as_text=True)
    assert "田中 花子" in page and "山田 一郎" not in page
    assert two.get("/admin/staff").status_code == 200
    assert one.get("/admin/staff").status_code == 403
