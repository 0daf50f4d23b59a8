from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from channels.phone import services
from channels.phone.forms import CallForm
from consult.forms import choices
from consult.services import staff as staff_service
from consult.services.actor import DESK_ROLES
from consult.timeutil import TOKYO
from consult.web import actor, attempt_intake, roles_required

bp = Blueprint("phone", __name__)


@bp.route("/phone/new", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def log_call():
    form = CallForm()
    candidates: list = []
    form.category_id.choices = choices(
        ((c.id, c.name) for c in staff_service.list_categories(active_only=True)), blank="未分類"
    )
    if form.validate_on_submit():
        due = form.callback_due_at.data
        citizen_id = form.citizen_id.data
        call = services.Call(
            category_id=form.category_id.data,
            first_note=form.first_note.data,
            duration_minutes=form.duration_minutes.data,
            recording_announced=form.recording_announced.data,
            callback_needed=form.callback_needed.data,
            callback_due_at=due.replace(tzinfo=TOKYO) if due else None,
            subject=form.subject.data,
            anonymous=form.anonymous.data,
            name=form.name.data,
            kana=form.kana.data,
            phone=form.phone.data,
            citizen_id=int(citizen_id) if citizen_id and citizen_id.isdigit() else None,
            birth_date=form.birth_date.data,
            citizen_choice=form.citizen_choice.data,
        )
        ok, ticket, candidates = attempt_intake(
            lambda: services.log_call(actor(), call), "電話相談を記録しました。"
        )
        if ok:
            return redirect(url_for("desk.ticket", number=ticket.number))
    return render_template("phone/log_call.html", form=form, candidates=candidates), (
        422 if request.method == "POST" else 200
    )
