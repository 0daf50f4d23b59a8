"""Counter reception, visit moves, and the public waiting display."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from channels.counter import services
from channels.counter.forms import ReceptionForm, VisitForm
from consult.forms import choices
from consult.services import staff as staff_service
from consult.services import tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import NotFound
from consult.web import actor, attempt, public, roles_required

bp = Blueprint("counter", __name__)


@bp.route("/counter/new", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def reception():
    form = ReceptionForm()
    form.category_id.choices = choices(
        ((c.id, c.name) for c in staff_service.list_categories(active_only=True)), blank="未分類"
    )
    if form.validate_on_submit():
        citizen_id = form.citizen_id.data
        walk_in = services.WalkIn(
            category_id=form.category_id.data,
            room=form.room.data,
            first_note=form.first_note.data,
            subject=form.subject.data,
            anonymous=form.anonymous.data,
            name=form.name.data,
            kana=form.kana.data,
            phone=form.phone.data,
            citizen_id=int(citizen_id) if citizen_id and citizen_id.isdigit() else None,
        )
        ok, visit = attempt(lambda: services.receive(actor(), walk_in))
        if ok:
            return redirect(url_for("desk.ticket", number=visit.ticket.number))
    return render_template("counter/reception.html", form=form), (
        422 if request.method == "POST" else 200
    )


@bp.post("/tickets/<number>/visit/<action>")
@roles_required(*DESK_ROLES)
def move(number: str, action: str):
    if action not in {"call", "serve", "finish"}:
        abort(404)
    try:
        ticket = tickets.get_ticket(actor(), number, audit_view=False)
    except NotFound:
        abort(404)
    form = VisitForm()
    if form.validate_on_submit():
        messages = {
            "call": "呼び出しました。",
            "serve": "相談を開始しました。",
            "finish": "窓口対応を終了しました。",
        }
        attempt(lambda: services.move(actor(), ticket, action, form.room.data), messages[action])
    return redirect(url_for("desk.ticket", number=number))


@bp.get("/display")
@public
def display():
    return render_template(
        "counter/display.html",
        board=services.display_board(),
        refresh=current_app.config["MADOGUCHI"]["DISPLAY_REFRESH_SECONDS"],
    )


@bp.get("/display/board.json")
@public
def display_board():
    board = services.display_board()
    return jsonify({"called": board.called, "waiting": board.waiting})
