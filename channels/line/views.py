"""The LINE blueprint: the ticket page's reply, code and link actions (the webhook: intake.py)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from channels.line import notices, services
from channels.line.forms import ActionForm, ReplyForm, notice_form
from consult.services import tickets
from consult.services.actor import DESK_ROLES
from consult.web import actor, attempt, roles_required

bp = Blueprint("line", __name__)


# Served by channels.line.intake in front of Flask; here for url_for and the route list.
bp.add_url_rule("/channels/line/webhook", "webhook", methods=["POST"], build_only=True)


def _ticket(number: str):
    return tickets.get_ticket(actor(), number, audit_view=False)


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


# --- notices to citizens who opted in (channels.line.notices) ----------------------------------


@bp.route("/staff/line/notices", methods=["GET", "POST"])
@roles_required(*notices.SEND_ROLES)
def notices_page():
    """Compose a notice, choose the segment, see the recipients and the month's quota, send.

    「送信先を確認」 shows the count and the quota with the 「送信する」 button; only that button
    queues the notice (through the outbox: nothing is sent from this request)."""
    draft = None
    if request.method == "GET" and (request.args.get("draft") or "").isdigit():
        draft = notices.get_draft(actor(), int(request.args["draft"]))
        form = notice_form(
            formdata=None, text=draft.text, interest=draft.interest, draft_id=str(draft.id)
        )
    else:
        form = notice_form()
    count = None
    quota = notices.current_quota()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            segment = notices.Segment(
                form.interest.data, form.district.data or None, form.age_band.data or None
            )
            draft_id = int(form.draft_id.data) if (form.draft_id.data or "").isdigit() else None
            if "send" in request.form:
                ok, notice = attempt(
                    lambda: notices.queue_notice(
                        actor(), form.text.data, segment, quota=quota, draft_id=draft_id
                    )
                )
                if ok:
                    how = (
                        "送信先をLINEに登録して一度に送信"
                        if notices.use_narrowcast(notice.recipient_count)
                        else f"{notice.batch_count:,}回に分けて送信"
                    )
                    flash(
                        f"お知らせを{notice.recipient_count:,}人に送信します（{how}）。", "success"
                    )
                    return redirect(url_for("line.notices_page"))
                status = 422
            else:
                ok, count = attempt(lambda: notices.count_recipients(segment))
                status = 200 if ok else 422
        else:
            status = 422
    return render_template(
        "line/notices.html",
        form=form,
        count=count,
        narrowcast=count is not None and notices.use_narrowcast(count),
        quota=quota,
        drafts=notices.drafts(),
        sent=notices.sent(),
        interests=notices.INTERESTS,
        age_bands=notices.AGE_BANDS,
    ), status
