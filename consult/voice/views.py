"""The citizens' voice pages: the public satisfaction question, and the requests' staff pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from consult.extensions import db
from consult.models import Role, Ticket
from consult.services import audit, tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import DomainError
from consult.voice import services
from consult.voice.forms import AnswerForm, MarkForm, SatisfactionForm
from consult.voice.models import CitizenRequest
from consult.web import actor, attempt, passive, public, roles_required, ticket_page_with_errors

bp = Blueprint("voice", __name__)

REQUEST_ROLES = (*DESK_ROLES, Role.OFFICER, Role.ADMIN)


# --- public: the one question ------------------------------------------------------------------


@bp.route("/voice/satisfaction/<token>", methods=["GET", "POST"])
@public
def satisfaction(token: str):
    """The question behind a mail link or a receipt's QR code. Shows nothing of the case."""
    try:
        services.open_invite(token)
    except services.AlreadyAnswered:
        return render_template("consult/voice/satisfaction_closed.html"), 410
    form = SatisfactionForm()
    if form.validate_on_submit():
        try:
            services.answer(token, form.score.data, form.comment.data)
        except services.AlreadyAnswered:
            db.session.rollback()
            return render_template("consult/voice/satisfaction_closed.html"), 410
        except DomainError:
            db.session.rollback()
            form.score.errors = [*form.score.errors, _("選択肢から一つ選んでください。")]
        else:
            return redirect(url_for("voice.satisfaction_thanks"))
    status = 422 if request.method == "POST" else 200
    return render_template("consult/voice/satisfaction.html", form=form), status


@bp.get("/voice/satisfaction/thanks")
@public
def satisfaction_thanks():
    return render_template("consult/voice/satisfaction_thanks.html")


# --- staff: requests to the city and letters to the mayor ---------------------------------------


def ticket_panel(ticket: Ticket):
    """The ticket page's panel: the request and its deadline, and the mark or answer form."""
    item, asked = services.panel_state(ticket)
    return "consult/voice/_panel.html", {
        "request_item": item,
        # A form refused a moment ago (consult.voice.views) comes back as typed.
        "mark_form": g.get("voice_mark_form") or MarkForm(formdata=None),
        "answer_form": g.get("voice_answer_form") or AnswerForm(formdata=None),
        "today": services.tokyo_today(),
        "date_text": services.date_text,
        "satisfaction_asked": asked,
    }


def _ticket(number: str):
    return tickets.get_ticket(actor(), number, audit_view=False)


def _back(number: str):
    return redirect(url_for("desk.ticket", number=number) + "#voice")


def _from_ticket_page(number: str, form, name: str, operation, success: str):
    """A form of the panel: done, back to the panel; refused (by the form or the service), the
    ticket page again (422) with the form as typed and its messages (on ``g.<name>``)."""
    if form.validate_on_submit():
        ok, _result = attempt(operation, success)
        if ok:
            return _back(number)
    setattr(g, name, form)
    return ticket_page_with_errors(number)


@bp.get("/tickets/<number>/request/panel")
@passive  # asked by the page itself on another person's event: not the user's activity
@roles_required(*DESK_ROLES)
def panel_live(number: str):
    """The ticket page's request panel alone, for its live refresh (consult/static/js/voice.js):
    not the whole page again. It may show the written answer, so it is a view of the ticket,
    audited as the ticket's own live refresh is (once per person and ticket in ten minutes)."""
    item = _ticket(number)
    tickets.record_live_view(actor(), item)
    template, context = ticket_panel(item)
    response = make_response(render_template(template, ticket=item, **context))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tickets/<number>/request")
@roles_required(*DESK_ROLES)
def mark(number: str):
    item = _ticket(number)
    form = MarkForm()
    return _from_ticket_page(
        item.number,
        form,
        "voice_mark_form",
        lambda: services.mark_request(actor(), item, form.kind.data),
        "要望・手紙として登録し、回答期限を設定しました。",
    )


@bp.post("/tickets/<number>/request/answer")
@roles_required(*DESK_ROLES)
def answer(number: str):
    """The written answer from the ticket page. A refused answer comes back on the ticket page
    (422) with the text as typed: an answer can be long, and retyping it is not acceptable."""
    item = _ticket(number)
    form = AnswerForm()
    return _from_ticket_page(
        item.number,
        form,
        "voice_answer_form",
        lambda: services.record_answer(actor(), item, form.text.data),
        "回答を記録しました。",
    )


@bp.get("/requests")
@roles_required(*REQUEST_ROLES)
def requests_list():
    state = request.args.get("state", "open")
    if state not in ("open", "answered", "all"):
        state = "open"
    items = services.list_requests(actor(), state)
    return render_template(
        "consult/voice/requests.html",
        items=items,
        state=state,
        today=services.tokyo_today(),
        date_text=services.date_text,
    )


def _request_or_404(request_id: int) -> CitizenRequest:
    item = db.session.get(CitizenRequest, request_id)
    if item is None:
        abort(404)
    me = actor()
    if me.may(*DESK_ROLES):
        return item
    if (
        me.may(Role.OFFICER)
        and me.staff.department_id is not None
        and me.staff.department_id == item.department_id
    ):
        return item
    abort(404)  # no oracle: another department's request answers as a missing one


@bp.route("/requests/<int:request_id>", methods=["GET", "POST"])
@roles_required(*DESK_ROLES, Role.OFFICER)
def request_detail(request_id: int):
    """The request for the responsible department's officer: what was asked, the deadline,
    and the answer form. What the citizen wrote is personal data: each view is audited."""
    item = _request_or_404(request_id)
    form = AnswerForm()
    # A refused answer: the template shows the messages next to the field, the text as typed.
    if request.method == "POST" and form.validate_on_submit():
        ok, _result = attempt(
            lambda: services.record_answer(actor(), item.ticket, form.text.data),
            "回答を記録しました。",
        )
        if ok:
            return redirect(url_for("voice.request_detail", request_id=item.id))
    audit.record(actor(), "view", "ticket", item.ticket.number, "citizen_request")
    return render_template(
        "consult/voice/request_detail.html",
        item=item,
        form=form,
        today=services.tokyo_today(),
        date_text=services.date_text,
    ), (422 if request.method == "POST" else 200)
