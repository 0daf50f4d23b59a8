"""Two-factor sign-in in Chromium: an administrator, required to enrol, scans nothing but reads
the setup key off the page, confirms with a code pyotp computes from it, keeps the recovery
codes, signs out, and signs in again with the password and a code (after a wrong one). On
SQLite and PostgreSQL, with CSRF on, every page checked by axe-core and the console watch."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import _serve, assert_accessible

pytestmark = pytest.mark.e2e

# Where to keep screenshots of the pages, to look at them (none unless asked for).
SHOTS = os.environ.get("MADOGUCHI_TEST_SCREENSHOTS")


@pytest.fixture
def totp_server(app_factory):
    with _serve(app_factory, TOTP_REQUIRED="privileged") as server:
        yield server


def password_step(page: Page, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


def screenshot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


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
        screenshot(page, "two-factor-enrol")

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
        screenshot(page, "two-factor-recovery-codes")
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
        screenshot(page, "two-factor-code")
    # The code of the next time step (accepted: clocks drift), so the one used at enrolment,
    # possibly of this very step, is not sent again.
    page.get_by_label("確認コード").fill(otp.at(time.time() + otp.interval))
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()
    expect(page.get_by_role("heading", name="管理")).to_be_visible()
