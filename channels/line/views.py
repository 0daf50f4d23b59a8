"""The LINE blueprint: the ticket page's reply, code and link actions (the webhook: intake.py)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)

from channels.line import services
from channels.line.forms import ActionForm, ReplyForm
from consult.services import tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import NotFound
from consult.web import actor, attempt, roles_required

bp = Blueprint("line", __name__)


# Served by channels.line.intake in front of Flask; here for url_for and the route list.
bp.add_url_rule("/channels/line/webhook", "webhook", methods=["POST"], build_only=True)


def _ticket(number: str):
    try:
        return tickets.get_ticket(actor(), number, audit_view=False)
    except NotFound:
        abort(404)


@bp.route("/channels/line/tickets/<number>/reply", methods=["POST"])
@roles_required(*DESK_ROLES)
def reply(number: str):
    item = _ticket(number)
    form = ReplyForm()
    if form.validate_on_submit():
        attempt(
            lambda: services.send_reply(actor(), item, form.body.data),
            "LINEの返信を送信待ちに入れました。まもなく相談者に届きます。",
        )
    else:
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
    return redirect(url_for("desk.ticket", number=item.number) + "#line-heading")


@bp.route("/channels/line/tickets/<number>/link-code", methods=["POST"])
@roles_required(*DESK_ROLES)
def link_code(number: str):
    item = _ticket(number)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    ok, code = attempt(lambda: services.issue_link_code(actor(), item))
    if not ok:
        return redirect(url_for("desk.ticket", number=item.number))
    # Shown once, on this page only (not in a flash cookie, not in a URL).
    return render_template("line/link_code.html", ticket=item, code=code)


@bp.route("/channels/line/tickets/<number>/link-contact", methods=["POST"])
@roles_required(*DESK_ROLES)
def link_contact(number: str):
    item = _ticket(number)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    attempt(lambda: services.link_contact(actor(), item), "LINEの連絡先を相談者に紐付けました。")
    return redirect(url_for("desk.ticket", number=item.number))


@bp.route("/channels/line/media/<int:media_id>")
@roles_required(*DESK_ROLES)
def media(media_id: int):
    """Never the file as LINE sent it: its converted form (無害化, consult.views.files)."""
    from consult.views.files import redirect_to

    return redirect_to("line_media", media_id)
