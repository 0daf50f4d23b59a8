"""The signed-in member of staff's own account: changing their password."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from consult.forms import PasswordChangeForm
from consult.services import auth
from consult.web import actor, attempt

bp = Blueprint("account", __name__, url_prefix="/account")

# Reachable while an administrator's password still has to be changed (everything else
# redirects here): this page, logging out, what a page loads by itself (static files; the live
# stream is @passive), and the help button with its feed: safety never waits for a password.
WHILE_MUST_CHANGE = {
    "account.password",
    "auth.logout",
    "auth.login",
    "static",
    "safety.raise_alert",
    "safety.phone",
    "safety.live",
    "safety.respond",
}


@bp.route("/password", methods=["GET", "POST"])
def password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: auth.change_own_password(
                actor(),
                form.current_password.data,
                form.new_password.data,
                form.new_password_again.data,
                keep_token=current_user.session_token,
            )
        )
        if ok:
            flash("パスワードを変更しました。", "success")
            return redirect(url_for("auth.home"))
        return render_template("consult/account_password.html", form=form), 422
    status = 422 if form.errors else 200
    return render_template(
        "consult/account_password.html", form=form, min_length=auth.MIN_PASSWORD_LENGTH
    ), status
