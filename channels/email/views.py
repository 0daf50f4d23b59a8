"""The email blueprint: reply, saved replies, attachments, proposed citizen, quarantine."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from channels.email import imap, services, tasks
from channels.email.forms import ReplyForm, TemplateForm
from channels.email.models import ReplyTemplate
from consult.extensions import db
from consult.forms import Form
from consult.models import Role
from consult.services import tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import DomainError, NotFound
from consult.web import actor, attempt, attempt_intake, roles_required

bp = Blueprint("email", __name__, url_prefix="/email")
TEMPLATE_ROLES = (Role.ADMIN, Role.CONSULTANT, Role.SUPERVISOR)


def _ticket(number: str):
    return tickets.get_ticket(actor(), number, audit_view=False)


@bp.post("/tickets/<number>/reply")
@roles_required(*DESK_ROLES)
def reply(number: str):
    ticket = _ticket(number)
    form = ReplyForm()
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: services.send_reply(actor(), ticket, form.body.data),
            "返信を送信待ちに登録しました。",
        )
        if ok:
            return redirect(url_for("desk.ticket", number=ticket.number) + "#timeline")
    else:
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
    return render_template("email/compose.html", ticket=ticket, form=form), 422


@bp.get("/tickets/<number>/compose")
@roles_required(*DESK_ROLES)
def compose(number: str):
    """The reply form started from a saved reply (works without JavaScript)."""
    ticket = _ticket(number)
    form = ReplyForm()
    template_id = request.args.get("template", type=int)
    if template_id:
        chosen = db.session.get(ReplyTemplate, template_id)
        if chosen is None or not chosen.active:
            abort(404)
        form.body.data = chosen.body
    return render_template(
        "email/compose.html", ticket=ticket, form=form, templates=services.list_templates()
    )


@bp.post("/tickets/<number>/citizen")
@roles_required(*DESK_ROLES)
def register_citizen(number: str):
    ticket = _ticket(number)
    form = Form()
    if form.validate_on_submit():
        _ok, _, candidates = attempt_intake(
            lambda: services.register_proposed_citizen(actor(), ticket),
            "差出人を相談者として登録しました。",
        )
        if candidates:
            # A registered citizen may be this sender: the ticket page asks which, with the
            # sender's name and address in the citizen form, nothing created yet.
            from consult.forms import CitizenForm
            from consult.views.desk import render_choice

            ticket = _ticket(number)
            sender = services.proposed_sender(ticket)
            return render_choice(ticket, candidates, CitizenForm(data=sender))
    return redirect(url_for("desk.ticket", number=ticket.number))


@bp.get("/attachments/<int:attachment_id>")
@roles_required(*DESK_ROLES)
def attachment(attachment_id: int):
    """Never the attachment as received: its converted form (無害化, consult.views.files)."""
    from consult.views.files import redirect_to

    return redirect_to("email_attachment", attachment_id)


@bp.get("/templates")
@roles_required(*TEMPLATE_ROLES)
def templates():
    return render_template(
        "email/templates.html",
        items=services.list_templates(active_only=False),
        form=TemplateForm(),
    )


@bp.route("/templates/new", methods=["GET", "POST"], defaults={"template_id": None})
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@roles_required(*TEMPLATE_ROLES)
def template_form(template_id: int | None):
    item = db.session.get(ReplyTemplate, template_id) if template_id else None
    if template_id and item is None:
        abort(404)
    form = TemplateForm(obj=item)
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: services.save_template(
                actor(), template_id, form.name.data, form.body.data, form.active.data
            ),
            "定型文を保存しました。",
        )
        if ok:
            return redirect(url_for("email.templates"))
    status = 422 if request.method == "POST" else 200
    return render_template("email/template_form.html", form=form, item=item), status


@bp.get("/inbound")
@roles_required(Role.ADMIN)
def inbound():
    status = request.args.get("status") or None
    if status not in (None, "pending", "processed", "ignored", "quarantined"):
        status = None

    return render_template(
        "email/inbound.html",
        items=services.list_inbound(status),
        status=status,
        form=Form(),
        poll=imap.poll_status(),
        imap_configured=bool(services.settings()["IMAP_HOST"]),
    )


@bp.post("/inbound/<int:inbound_id>/retry")
@roles_required(Role.ADMIN)
def inbound_retry(inbound_id: int):
    form = Form()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.retry(actor(), inbound_id)
    except NotFound:
        abort(404)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("email.inbound"))
    db.session.commit()  # the retry is recorded before processing, which commits on its own
    item = tasks.process(inbound_id)
    if item.status.value == "quarantined":
        flash(f"再処理しましたが、隔離されたままです：{item.reason}", "error")
    else:
        flash("再処理しました。", "success")
    return redirect(url_for("email.inbound"))
