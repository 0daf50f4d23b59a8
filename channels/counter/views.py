"""Counter reception, visit moves, and the public waiting display."""

from __future__ import annotations

import json
import time

from flask import (
    Blueprint,
    Response,
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
from consult.web import actor, attempt, attempt_intake, passive, public, roles_required

bp = Blueprint("counter", __name__)


@bp.route("/counter/new", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def reception():
    form = ReceptionForm()
    candidates: list = []
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
            birth_date=form.birth_date.data,
            citizen_choice=form.citizen_choice.data,
        )
        ok, visit, candidates = attempt_intake(lambda: services.receive(actor(), walk_in))
        if ok:
            return redirect(url_for("desk.ticket", number=visit.ticket.number))
    return render_template("counter/reception.html", form=form, candidates=candidates), (
        422 if request.method == "POST" else 200
    )


@bp.post("/tickets/<number>/visit/<action>")
@roles_required(*DESK_ROLES)
def move(number: str, action: str):
    if action not in {"call", "serve", "finish"}:
        abort(404)
    ticket = tickets.get_ticket(actor(), number, audit_view=False)
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
    from consult.live import services as live

    cursor = live.latest_id()  # before the board: a call committed after it comes by the stream
    return render_template(
        "counter/display.html",
        board=services.display_board(),
        refresh=current_app.config["MADOGUCHI"]["DISPLAY_REFRESH_SECONDS"],
        cursor=cursor,
    )


DISPLAY_HEARTBEAT_SECONDS = 15.0
DISPLAY_STREAM_SECONDS = 300.0  # then the screen reconnects with Last-Event-ID


def _display_events(hub, after: int) -> tuple[list[dict], int]:
    """Only calls, only for the display: other kinds never leave this filter, whatever their
    audience (the cursor still moves past them)."""
    found = hub.events_after(after)
    calls = [
        {"id": e.id, "kind": e.kind, "payload": e.payload}
        for e in found
        if e.kind == "display.call" and services.DISPLAY_AUDIENCE in e.audience
    ]
    return calls, (found[-1].id if found else after)


@bp.get("/display/live")
@public  # a public screen: no session, so nothing to end; it runs for hours
@passive
def display_live():
    """The lobby display's read-only stream (SSE, or JSON with ?poll=1): calls, with the
    reception number and the room, nothing else."""
    from consult.extensions import db
    from consult.live import services as live

    after = -1
    for raw in (request.headers.get("Last-Event-ID"), request.args.get("after")):
        if raw and raw.isdigit() and len(raw) < 19:
            after = int(raw)
            break
    if after < 0:
        after = live.latest_id()
    hub = live.hub_for(db.engine)
    if request.args.get("poll") == "1":
        events, cursor = _display_events(hub, after)
        return jsonify(events=events, cursor=cursor)
    heartbeat = min(
        float(current_app.config["MADOGUCHI"].get("LIVE_HEARTBEAT_SECONDS") or 15.0),
        DISPLAY_HEARTBEAT_SECONDS,
    )
    db.session.commit()  # give the request's connection back before the long wait

    def generate():
        cursor = after
        started = last_sent = time.monotonic()
        generation = hub.generation
        yield f"retry: 2000\n: cursor {cursor}\n\n"
        while not hub.stopped.is_set():
            events, top = _display_events(hub, cursor)
            for item in events:
                last_sent = time.monotonic()
                data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {item['id']}\ndata: {data}\n\n"
            if top > (events[-1]["id"] if events else cursor):
                # Other kinds moved the cursor: an id without data (nothing is dispatched), so
                # a reconnect starts past them.
                yield f"id: {top}\n\n"
            cursor = top
            now = time.monotonic()
            if now - started >= DISPLAY_STREAM_SECONDS:
                return
            if now - last_sent >= heartbeat:
                last_sent = now
                yield ": keepalive\n\n"
            generation = hub.wait(generation, min(hub.poll_seconds, heartbeat))

    return Response(
        generate(),
        mimetype="text/event-stream",
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
    )


@bp.get("/display/board.json")
@public
def display_board():
    board = services.display_board()
    return jsonify({"called": board.called, "waiting": board.waiting})


@bp.get("/counter/receipt/<number>")
@roles_required(*DESK_ROLES)
def receipt(number: str):
    """The printed receipt (受付票): numbers and the QR code of the satisfaction question."""
    item = tickets.get_ticket(actor(), number, audit_view=False)
    found = services.receipt(actor(), item)
    return render_template("counter/receipt.html", receipt=found)
