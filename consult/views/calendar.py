"""The administrators' calendar pages: exceptions to the centre's hours and the duty rota.

They are the kernel's, like the calendar itself, because every channel reads them (LINE's and
email's answers, booking's slots, handoff's duty department). The old addresses under
/booking/admin/ redirect here (channels/booking/views.py).
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from wtforms.fields.choices import SelectChoice

from consult.forms import ConfirmForm, ExceptionForm, RotaForm
from consult.models import Role
from consult.services import calendar
from consult.services import staff as staff_service
from consult.services.actor import DESK_ROLES
from consult.services.calendar import day_type
from consult.timeutil import tokyo_today
from consult.web import actor, attempt, roles_required

bp = Blueprint("calendar_admin", __name__, url_prefix="/admin/calendar")
ADMIN = (Role.ADMIN,)


@bp.route("/exceptions", methods=["GET", "POST"])
@roles_required(*ADMIN)
def exceptions():
    form = ExceptionForm()
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: calendar.save_exception(
                actor(),
                form.day.data,
                form.closed.data,
                form.opens.data,
                form.closes.data,
                form.note.data or "",
            ),
            "例外日を保存しました。",
        )
        if ok:
            return redirect(url_for("calendar_admin.exceptions"))
    return render_template(
        "consult/admin/calendar_exceptions.html",
        form=form,
        delete=ConfirmForm(),
        rows=calendar.list_exceptions(tokyo_today() - timedelta(days=30)),
        summary=calendar.hours_summary(),
    ), (422 if request.method == "POST" else 200)


@bp.post("/exceptions/<int:exception_id>/delete")
@roles_required(*ADMIN)
def exception_delete(exception_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    calendar.delete_exception(actor(), exception_id)
    flash("例外日を削除しました。", "success")
    return redirect(url_for("calendar_admin.exceptions"))


@bp.route("/rota", methods=["GET", "POST"])
@roles_required(*ADMIN)
def rota():
    today = tokyo_today()
    form = RotaForm(
        request.form if request.method == "POST" else None,
        first=today,
        last=today + timedelta(days=90),
    )
    departments = [d for d in staff_service.list_departments(active_only=True) if not d.is_external]
    form.departments.choices = [SelectChoice(d.id, d.name) for d in departments]
    if form.validate_on_submit():
        ok, count = attempt(
            lambda: calendar.generate_rota(
                actor(), form.first.data, form.last.data, form.departments.data or []
            )
        )
        if ok:
            flash(f"閉庁日当番を{count}日分作成しました。", "success")
            return redirect(url_for("calendar_admin.rota"))
    return render_template(
        "consult/admin/duty_rota.html",
        form=form,
        rows=calendar.rota_between(today, today + timedelta(days=366)),
        day_type=day_type,
    ), (422 if request.method == "POST" else 200)


@bp.get("/rota.ics")
@roles_required(*ADMIN, *DESK_ROLES)
def rota_ics():
    today = tokyo_today()
    rows = calendar.rota_between(today - timedelta(days=31), today + timedelta(days=366))
    body = calendar.rota_ical(rows, current_app.config["MADOGUCHI"]["MAIL_DOMAIN"])
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": "attachment; filename=duty-rota.ics"},
    )
