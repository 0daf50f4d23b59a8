"""Login and logout."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from consult import plugins
from consult.extensions import db
from consult.forms import ConfirmForm, LoginForm
from consult.services import auth
from consult.services.errors import DomainError
from consult.web import actor, public, safe_next

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
        settings = current_app.config["MADOGUCHI"]
        throttle = auth.Throttle(
            max_failures=int(settings["LOGIN_MAX_FAILURES"]),
            max_failures_per_address=int(settings["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
            lock=timedelta(minutes=int(settings["LOGIN_LOCK_MINUTES"])),
        )
        try:
            staff, _token = auth.authenticate(
                form.login.data, form.password.data, request.remote_addr or "", throttle
            )
        except auth.LoginSlowDown as failure:
            # Kept although the answer is 429 (error answers roll back): the counts must hold.
            db.session.commit()
            page = render_template("consult/login.html", form=form, error=failure.message)
            return page, 429, {"Retry-After": str(failure.seconds)}
        except DomainError as failure:
            # The failed attempt itself is kept (commit happens after the response is built).
            error = failure.message
        else:
            session.clear()  # a fresh session at login: nothing survives from before
            login_user(staff)
            session.permanent = False
            return redirect(safe_next(form.next.data) or home_url())
    return render_template("consult/login.html", form=form, error=error)


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
