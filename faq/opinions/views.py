"""「寄せられたご意見と回答」: the public monthly page (Japanese and English) and staff pages."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from consult.models import Role
from consult.services.actor import DESK_ROLES
from consult.voice.models import RequestKind
from consult.web import actor, attempt, public, roles_required
from faq.opinions import services
from faq.opinions.forms import OpinionForm

bp = Blueprint("opinions", __name__)
public_bp = Blueprint("opinions_public", __name__)

STAFF_ROLES = (*DESK_ROLES, Role.ADMIN)
MONTH = re.compile(r"\d{4}-\d{2}")
ACTIONS = {
    "submit": (services.submit, "承認を依頼しました。"),
    "send_back": (services.send_back, "差し戻しました。"),
    "approve": (services.approve, "承認し、公開しました。"),
    "withdraw": (services.withdraw, "公開を取り下げました。"),
}


@public_bp.get("/opinions")
@public
def public_index():
    months = services.public_months()
    month = request.args.get("month") or ""
    if month and (not MONTH.fullmatch(month) or month not in months):
        month = ""
    return render_template(
        "faq/opinions/public_index.html",
        months=months,
        month=month,
        entries=services.public_entries(month or None),
    )


@bp.get("/staff/opinions")
@roles_required(*STAFF_ROLES)
def staff_index():
    return render_template(
        "faq/opinions/staff_index.html",
        entries=services.list_entries(actor()),
        kinds=RequestKind,
    )


@bp.post("/staff/opinions/from-request/<int:request_id>")
@roles_required(*STAFF_ROLES)
def from_request(request_id: int):
    ok, entry = attempt(lambda: services.draft_from_request(actor(), request_id))
    if not ok:
        return redirect(url_for("voice.request_detail", request_id=request_id))
    flash("個人情報を伏せた下書きを作りました。内容を確かめてください。", "success")
    return redirect(url_for("opinions.staff_entry", entry_id=entry.id))


@bp.route("/staff/opinions/<int:entry_id>", methods=["GET", "POST"])
@roles_required(*STAFF_ROLES)
def staff_entry(entry_id: int):
    entry = services.get_entry(actor(), entry_id)
    form = OpinionForm(obj=entry) if request.method == "GET" else OpinionForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            ok, _ = attempt(
                lambda: services.update(
                    actor(),
                    entry,
                    opinion=form.opinion.data,
                    answer=form.answer.data,
                    opinion_en=form.opinion_en.data,
                    answer_en=form.answer_en.data,
                ),
                "保存しました。",
            )
            if ok:
                return redirect(url_for("opinions.staff_entry", entry_id=entry.id))
        status = 422
    return render_template(
        "faq/opinions/staff_entry.html", entry=entry, form=form, kinds=RequestKind
    ), status


@bp.post("/staff/opinions/<int:entry_id>/<action>")
@roles_required(*STAFF_ROLES)
def staff_action(entry_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    operation, success = ACTIONS[action]
    entry = services.get_entry(actor(), entry_id)
    attempt(lambda: operation(actor(), entry), success)
    return redirect(url_for("opinions.staff_entry", entry_id=entry_id))
