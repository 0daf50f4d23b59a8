"""Login (password, then the two-factor code where the person has one), enrolment, logout."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from consult import plugins
from consult.config import TwoFactorSettings
from consult.extensions import db
from consult.forms import CodeForm, ConfirmForm, EnrolForm, LoginForm
from consult.models import Staff
from consult.services import auth, totp
from consult.services.errors import DomainError
from consult.web import actor, public, safe_next

# Between the right password and the code, the browser's (signed) session holds only this:
# who, since when, and where to go. No StaffSession exists yet: nothing is signed in.
PENDING = "pending_login"

bp = Blueprint("auth", __name__)


def home_endpoint(role: str) -> str | None:
    """The page a role starts on, as the plugins declared it (Plugin.home_pages)."""
    return plugins.registry().home_endpoint(role)


def home_url() -> str:
    return url_for(home_endpoint(current_user.role) or "auth.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(home_url())
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"))
    error = None
    if form.validate_on_submit():
        try:
            staff = auth.check_password(
                form.login.data, form.password.data, request.remote_addr or "", _throttle()
            )
        except auth.LoginSlowDown as failure:
            return _slow_down("consult/login.html", failure, form=form)
        except DomainError as failure:
            # The failed attempt itself is kept (commit happens after the response is built).
            error = failure.message
        else:
            target = safe_next(form.next.data)
            session.clear()  # a fresh session at login: nothing survives from before
            if staff.has_totp:
                session[PENDING] = {"staff": staff.id, "at": int(time.time()), "next": target}
                return redirect(url_for("auth.login_code"))
            return _signed_in(staff, target)
    return render_template("consult/login.html", form=form, error=error)


def _throttle() -> auth.Throttle:
    settings = current_app.config["MADOGUCHI"]
    return auth.Throttle(
        max_failures=int(settings["LOGIN_MAX_FAILURES"]),
        max_failures_per_address=int(settings["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
        lock=timedelta(minutes=int(settings["LOGIN_LOCK_MINUTES"])),
    )


def _slow_down(template: str, failure: auth.LoginSlowDown, **context):
    # Kept although the answer is 429 (error answers roll back): the counts must hold.
    db.session.commit()
    page = render_template(template, error=failure.message, **context)
    return page, 429, {"Retry-After": str(failure.seconds)}


def _signed_in(staff, target: str | None):
    auth.complete_login(staff, request.remote_addr or "")
    session.clear()
    login_user(staff)
    session.permanent = False
    # Someone who must set up two-factor sign-in first is taken there by the request gate.
    return redirect(target or home_url())


def _pending() -> dict | None:
    """The half-done sign-in, while it is young enough (MADOGUCHI_TOTP_PENDING_MINUTES)."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int):
        return None
    limit = TwoFactorSettings.current().pending_minutes * 60
    if not 0 <= time.time() - pending["at"] <= limit:
        return None
    return pending


@bp.route("/login/code", methods=["GET", "POST"])
@public
def login_code():
    """The second step: the code from the authenticator app (or a recovery code)."""
    if current_user.is_authenticated:
        return redirect(home_url())
    pending = _pending()
    if pending is None:
        expired = PENDING in session
        session.pop(PENDING, None)
        if expired:
            minutes = TwoFactorSettings.current().pending_minutes
            flash(
                f"確認コードの入力時間（{minutes}分）を過ぎました。"
                "もう一度パスワードからログインしてください。",
                "error",
            )
        return redirect(url_for("auth.login"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            kind = auth.check_second_factor(
                pending["staff"], form.code.data, request.remote_addr or "", _throttle()
            )
        except auth.LoginSlowDown as failure:
            minutes = TwoFactorSettings.current().pending_minutes
            return _slow_down("consult/login_code.html", failure, form=form, minutes=minutes)
        except (auth.LoginLocked, auth.LoginFailed) as failure:
            # Locked (or the account gone meanwhile): back to the password, told why.
            session.pop(PENDING, None)
            flash(failure.message, "error")
            return redirect(url_for("auth.login"))
        except DomainError as failure:
            error = failure.message
            form.code.data = ""  # a refused code is typed afresh, not corrected
        else:
            staff = db.session.get(Staff, pending["staff"])
            response = _signed_in(staff, pending.get("next"))
            if kind == "recovery":
                left = totp.remaining_recovery_codes(staff)
                flash(
                    f"リカバリーコードでログインしました（残り{left}個）。"
                    "スマートフォンを紛失した場合は管理者に連絡してください。",
                    "info",
                )
            return response
    # 200 even for a refused code, as the password form: the failed attempt must be committed.
    minutes = TwoFactorSettings.current().pending_minutes
    return render_template("consult/login_code.html", form=form, error=error, minutes=minutes)


@bp.route("/account/two-factor", methods=["GET", "POST"])
def two_factor():
    """Set up two-factor sign-in: the QR code, the secret as text, and the first code.

    Where it is required, a signed-in person who has none is sent here by the request gate and
    can do nothing else until it is done.
    """
    staff = current_user._get_current_object()
    if staff.has_totp:
        return render_template(
            "consult/two_factor.html",
            staff=staff,
            remaining=totp.remaining_recovery_codes(staff),
        )
    form = EnrolForm()
    error = None
    if form.validate_on_submit():
        try:
            codes = totp.confirm_enrolment(actor(), staff, form.code.data)
        except DomainError as failure:
            error = failure.message
            form.code.data = ""  # as at sign-in: the app shows a new code, typed afresh
        else:
            db.session.flush()
            # Shown once, in this answer only (no-store): the page cannot be reloaded into view.
            return render_template("consult/recovery_codes.html", codes=codes)
    secret = totp.begin_enrolment(staff)
    uri = totp.provisioning_uri(staff, secret)
    page = render_template(
        "consult/two_factor.html",
        staff=staff,
        form=form,
        error=error,
        qr=totp.qr_data_uri(uri),
        secret=totp.grouped(secret),
        issuer=totp.issuer(),
        required=totp.is_required(staff),
    )
    # A refused code keeps the secret (a 422 would roll back the new secret of a first visit).
    return page, 200


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        auth.end_session(current_user.session_token, actor())
        db.session.flush()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
def home():
    if home_endpoint(current_user.role):
        return redirect(home_url())
    return render_template("consult/home.html")
