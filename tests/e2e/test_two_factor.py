"""Two-factor sign-in in Chromium: an administrator, required to enrol, scans nothing but reads
the setup key off the page, confirms with a code pyotp computes from it, keeps the recovery
codes, signs out, and signs in again with the password and a code (after a wrong one). On
SQLite and PostgreSQL, with CSRF on, every page checked by axe-core and the console watch."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _serve, assert_accessible, keep_screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def totp_server(app_factory):
    with _serve(app_factory, TOTP_REQUIRED="privileged") as server:
        yield server


def password_step(page: Page, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


def test_enrol_then_sign_in_with_a_code(totp_server, page: Page, backend):
    base = totp_server.url
    login, password = totp_server.make_staff("admin")

    # After the password, the administrator can only set up two-factor sign-in.
    password_step(page, base, login, password)
    expect(page.get_by_role("heading", name="二要素認証の設定")).to_be_visible()
    expect(page.get_by_text("このアカウントでは二要素認証が必須です")).to_be_visible()
    menu = page.get_by_role("navigation", name="メインメニュー")
    expect(menu.get_by_role("link")).to_have_count(0)
    expect(page.get_by_role("img", name=re.compile("QRコード"))).to_be_visible()
    page.goto(f"{base}/admin/")
    expect(page).to_have_url(f"{base}/account/two-factor")
    assert_accessible(page, "enrolment")
    if backend == "sqlite":
        keep_screenshot(page, "two-factor-enrol.png")

    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    otp = pyotp.TOTP(secret)
    page.get_by_label("認証アプリに表示された6桁のコード").fill(otp.now())
    page.get_by_role("button", name="設定する").click()
    expect(page.get_by_role("heading", name="二要素認証を設定しました")).to_be_visible()
    codes = page.get_by_role("list", name="リカバリーコード").locator("code")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text()
    assert re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", recovery)
    assert_accessible(page, "recovery codes")
    if backend == "sqlite":
        keep_screenshot(page, "two-factor-recovery-codes.png")
    page.get_by_role("link", name="控えました。業務画面へ進む").click()
    expect(page.get_by_role("navigation", name="メインメニュー")).to_be_visible()
    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("heading", name="職員ログイン")).to_be_visible()

    # Signing in again: the password, then the code page; nothing else before the code.
    password_step(page, base, login, password)
    expect(page.get_by_role("heading", name="確認コードの入力")).to_be_visible()
    assert_accessible(page, "code page")
    page.goto(f"{base}/admin/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.goto(f"{base}/login/code")
    page.get_by_label("確認コード").fill("000000" if otp.now() != "000000" else "111111")
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("alert")).to_contain_text("確認コードが正しくありません")
    expect(page.get_by_label("確認コード")).to_have_value("")
    if backend == "sqlite":
        keep_screenshot(page, "two-factor-code.png")
    # The code of the next time step (accepted: clocks drift), so the one used at enrolment,
    # possibly of this very step, is not sent again.
    page.get_by_label("確認コード").fill(otp.at(time.time() + otp.interval))
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()
    expect(page.get_by_role("heading", name="管理")).to_be_visible()


# --- refused codes, recovery codes, the setting for everyone, a reset -------------------------

WRONG = "確認コードが正しくありません。認証アプリに表示されている6桁の数字を入力してください。"
REUSED = (
    "この確認コードは既に使われています。認証アプリに次のコードが表示されるまで"
    "待ってから、新しいコードを入力してください。"
)
EXPIRED = (
    "この確認コードは有効期限が切れています。認証アプリに表示されている最新の"
    "コードを入力してください（スマートフォンの時刻が正しいかもご確認ください）。"
)
RECOVERY_USED = (
    "このリカバリーコードは既に使われています。まだ使っていない別のリカバリーコードを"
    "入力してください。"
)
REQUIRED = "このアカウントでは二要素認証が必須です。設定が終わるまで、ほかの画面は使えません。"


def enrolled(server, login: str) -> tuple[pyotp.TOTP, list[str]]:
    """Two-factor set up for `login` as enrolment leaves it (through the service, without using a
    time step): the app's TOTP and the recovery codes as the page shows them."""
    import sqlalchemy as sa

    from consult.extensions import db
    from consult.models import Staff
    from consult.services import totp
    from consult.timeutil import utcnow

    with server.app.app_context():
        staff = db.session.scalar(sa.select(Staff).where(Staff.login == login))
        secret = totp.begin_enrolment(staff)
        staff.totp_enabled_at = utcnow()
        codes = totp._new_recovery_codes(staff)
        db.session.commit()
        db.session.remove()
    return pyotp.TOTP(secret), codes


def code_step(page: Page, code: str) -> None:
    page.get_by_label("確認コード").fill(code)
    page.get_by_role("button", name="ログイン").click()


def expect_code_refused(page: Page, message: str) -> None:
    """Refused, and still at the code: the password is not asked again, the field is empty."""
    expect(page.get_by_role("alert")).to_have_text(message)
    expect(page.get_by_role("heading", name="確認コードの入力")).to_be_visible()
    expect(page.get_by_label("確認コード")).to_have_value("")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("heading", name="職員ログイン")).to_be_visible()


def test_an_expired_and_a_reused_code_are_refused(totp_server, page: Page, backend):
    base = totp_server.url
    login, password = totp_server.make_staff("consultant")
    otp, _codes = enrolled(totp_server, login)

    # A code of two and a half minutes ago (beyond the step either side allowed for drift).
    password_step(page, base, login, password)
    expect(page.get_by_role("heading", name="確認コードの入力")).to_be_visible()
    code_step(page, otp.at(time.time() - 5 * otp.interval))
    expect_code_refused(page, EXPIRED)
    if backend == "sqlite":
        keep_screenshot(page, "two-factor-expired.png")
    used = otp.now()
    code_step(page, used)
    expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
    sign_out(page)

    # Signing in again at once: the code just used is still shown by the app, and refused.
    password_step(page, base, login, password)
    code_step(page, used)
    expect_code_refused(page, REUSED)
    page.goto(f"{base}/tickets")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    # The next code does let the person in (the half-done sign-in was kept).
    page.goto(f"{base}/login/code")
    code_step(page, otp.at(time.time() + otp.interval))
    expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


def test_a_recovery_code_signs_in_once(totp_server, page: Page, backend):
    base = totp_server.url
    login, password = totp_server.make_staff("consultant")
    _otp, codes = enrolled(totp_server, login)

    password_step(page, base, login, password)
    code_step(page, codes[0].upper())  # as copied from paper, in capitals
    expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="リカバリーコード")).to_have_text(
        "リカバリーコードでログインしました（残り9個）。"
        "スマートフォンを紛失した場合は管理者に連絡してください。"
    )
    page.get_by_role("link", name="二要素認証").click()
    expect(page.get_by_role("heading", name="二要素認証の設定")).to_be_visible()
    expect(page.get_by_text("使っていないリカバリーコード：9個")).to_be_visible()
    sign_out(page)

    password_step(page, base, login, password)
    code_step(page, codes[0])
    expect_code_refused(page, RECOVERY_USED)
    assert_accessible(page, "recovery code refused")
    if backend == "sqlite":
        keep_screenshot(page, "two-factor-recovery-used.png")
    code_step(page, codes[1])
    expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="リカバリーコード")).to_contain_text(
        "（残り8個）"
    )


def test_everyone_enrols_where_the_city_requires_it(app_factory, new_page, backend):
    # Each server's page is closed before the server stops: a page it serves keeps a live stream.
    # Where only administrators and supervisors must, a consultant goes straight in.
    with _serve(app_factory, TOTP_REQUIRED="privileged") as server:
        page = new_page()
        login, password = server.make_staff("consultant")
        password_step(page, server.url, login, password)
        expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
        # Setting it up is offered, not imposed.
        page.get_by_role("link", name="二要素認証").click()
        expect(page.get_by_role("heading", name="二要素認証の設定")).to_be_visible()
        expect(page.get_by_text("必須です")).to_have_count(0)
        expect(
            page.get_by_role("navigation", name="メインメニュー").get_by_role("link")
        ).not_to_have_count(0)
        sign_out(page)
        page.close()

    with _serve(app_factory, TOTP_REQUIRED="all") as server:
        page = new_page()
        base = server.url
        password_step(page, base, login, password)
        expect(page).to_have_url(f"{base}/account/two-factor")
        expect(page.get_by_role("status").filter(has_text="必須")).to_have_text(REQUIRED)
        menu = page.get_by_role("navigation", name="メインメニュー")
        expect(menu.get_by_role("link")).to_have_count(0)
        for path in ("/tickets", "/today", "/"):
            page.goto(f"{base}{path}")
            expect(page).to_have_url(f"{base}/account/two-factor")
        # The password page stays open to them, without the live feed of a signed-in page.
        streams = []
        page.on("request", lambda r: "/live/stream" in r.url and streams.append(r.url))
        page.get_by_role("link", name="パスワード変更").click()
        expect(page.get_by_role("heading", name="パスワードの変更")).to_be_visible()
        page.wait_for_load_state("load")
        assert streams == []
        page.get_by_role("link", name="二要素認証").click()
        shown = page.locator("#totp-secret").inner_text()
        otp = pyotp.TOTP(shown.replace(" ", ""))

        # A wrong first code: told so, and the key (already in the app) is the same.
        wrong = next(c for c in ("000000", "111111") if c != otp.now())
        page.get_by_label("認証アプリに表示された6桁のコード").fill(wrong)
        page.get_by_role("button", name="設定する").click()
        expect(page.get_by_role("alert")).to_have_text(WRONG)
        expect(page.locator("#totp-secret")).to_have_text(shown)
        expect(page.get_by_label("認証アプリに表示された6桁のコード")).to_have_value("")
        page.goto(f"{base}/tickets")
        expect(page).to_have_url(f"{base}/account/two-factor")
        expect(page.locator("#totp-secret")).to_have_text(shown)

        page.get_by_label("認証アプリに表示された6桁のコード").fill(otp.now())
        page.get_by_role("button", name="設定する").click()
        expect(page.get_by_role("heading", name="二要素認証を設定しました")).to_be_visible()
        page.get_by_role("link", name="控えました。業務画面へ進む").click()
        expect(page.get_by_role("heading", name="相談一覧")).to_be_visible()
        expect(menu.get_by_role("link", name="相談一覧")).to_be_visible()
        page.close()


def test_an_administrators_reset_makes_the_person_enrol_again(totp_server, new_page, backend):
    base = totp_server.url
    admin_login, password = totp_server.make_staff("admin", full_name="管理 太郎")
    login, _ = totp_server.make_staff("supervisor", full_name="監督 次郎")
    admin_otp, _ = enrolled(totp_server, admin_login)
    old_otp, _ = enrolled(totp_server, login)

    supervisor = new_page()
    password_step(supervisor, base, login, password)
    code_step(supervisor, old_otp.now())
    expect(supervisor.get_by_role("heading", name="相談一覧")).to_be_visible()

    # A lost phone: the administrator resets the supervisor's two-factor sign-in.
    admin = new_page()
    password_step(admin, base, admin_login, password)
    code_step(admin, admin_otp.now())
    expect(admin.get_by_role("heading", name="管理")).to_be_visible()
    admin.goto(f"{base}/admin/staff")
    row = admin.get_by_role("row").filter(has_text=login)
    expect(row.get_by_role("cell", name="設定済み")).to_be_visible()
    row.get_by_role("link", name=login).click()
    section = admin.locator("#two-factor")
    expect(section).to_contain_text("設定済み")
    section.get_by_role("button", name="二要素認証をリセットする").click()
    expect(admin.get_by_role("status").filter(has_text="リセット")).to_have_text(
        "二要素認証をリセットしました。この職員のログイン中の画面は無効になります。"
        "次回のログインで設定し直します。"
    )
    expect(section).to_contain_text("未設定")
    assert_accessible(admin, "staff after a reset")
    if backend == "sqlite":
        keep_screenshot(admin, "two-factor-reset.png")
    # The audit log names who reset whose.
    admin.goto(f"{base}/admin/audit")
    admin.get_by_label("操作").select_option(label="二要素認証のリセット")
    admin.get_by_role("button", name="絞り込む").click()
    rows = admin.get_by_role("row").filter(has_text="二要素認証のリセット")
    expect(rows).to_have_count(1)
    expect(rows.get_by_role("cell").nth(1)).to_have_text("管理 太郎")

    # The supervisor's open page has ended; after the password, a new key to enrol with.
    supervisor.reload()
    expect(supervisor.get_by_role("heading", name="職員ログイン")).to_be_visible()
    password_step(supervisor, base, login, password)
    expect(supervisor).to_have_url(f"{base}/account/two-factor")
    expect(supervisor.get_by_role("status").filter(has_text="必須")).to_have_text(REQUIRED)
    shown = supervisor.locator("#totp-secret").inner_text().replace(" ", "")
    assert shown != old_otp.secret
    otp = pyotp.TOTP(shown)
    supervisor.get_by_label("認証アプリに表示された6桁のコード").fill(otp.now())
    supervisor.get_by_role("button", name="設定する").click()
    expect(supervisor.get_by_role("heading", name="二要素認証を設定しました")).to_be_visible()
