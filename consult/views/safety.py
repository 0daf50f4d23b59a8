"""Staff safety: the help button, the live alert feed, answers, incident records, takeover.

The live feed is short polling (alerts.js asks /alerts/live.json every second) rather than
server-sent events: under gunicorn's sync workers an SSE stream holds a whole worker per open
staff page, while a poll is one indexed query and a few hundred bytes; 1 s polling keeps the
2-second promise with room for one lost request.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

from consult.extensions import csrf, db
from consult.forms import (
    AlertDeviceForm,
    ConfirmForm,
    HelpForm,
    IncidentForm,
    SafetySettingsForm,
    choices,
)
from consult.models import FollowUp, IncidentCategory, Role
from consult.services import safety, tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import DomainError
from consult.timeutil import TOKYO, utcnow
from consult.web import actor, attempt, public, roles_required, safe_next

bp = Blueprint("safety", __name__)

LIVE_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.SUPPORT)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _back(default: str):
    return redirect(safe_next(request.form.get("next")) or default)


def _ticket_or_none(number: str | None):
    if not number:
        return None
    return tickets.get_ticket(actor(), number, audit_view=False)


@bp.post("/alerts")
@roles_required(*DESK_ROLES)
def raise_alert():
    """The help button. The page sends it with fetch (JSON) and stays as it is, so nothing
    typed is lost; without JavaScript the form posts and comes back here."""
    form = HelpForm()
    form.place.choices = choices(safety.PLACES.items())
    if not form.validate_on_submit():
        if _wants_json():
            return jsonify({"error": "場所を選んでください。"}), 422
        flash("場所を選んでください。", "error")
        return _back(url_for("auth.home"))
    ticket = _ticket_or_none(form.ticket.data)
    if _wants_json():
        try:
            alert = safety.raise_alert(actor(), place=form.place.data, ticket=ticket)
            db.session.flush()
        except DomainError as error:
            db.session.rollback()
            return jsonify({"error": error.message}), 422
        return jsonify({"id": alert.id, "place": safety.place_text(alert)}), 200
    ok, alert = attempt(lambda: safety.raise_alert(actor(), place=form.place.data, ticket=ticket))
    if ok:
        flash(
            f"応援を要請しました（{safety.place_text(alert)}）。サポート室と責任者に通知しました。",
            "success",
        )
    return _back(url_for("desk.ticket", number=ticket.number) if ticket else url_for("auth.home"))


@bp.get("/alerts/phone")
@roles_required(*DESK_ROLES)
def phone():
    """The help button alone, large, for a work phone kept open beside the counter (Minato).

    The same form and script as every page's button; the answers (向かいます・到着) appear
    above it through the live channel."""
    return render_template("consult/safety/phone.html", help_phone=True)


@bp.post("/alerts/device")
@public
@csrf.exempt
def device_press():
    """A one-button device's press: `Authorization: Bearer <token>`, no cookie, no form.

    Answered in JSON for the device's own log; a refusal is committed (its failure counter),
    since an error answer otherwise rolls the request back."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    try:
        alert = safety.press_device(token, request.remote_addr)
    except safety.DeviceRefused as refused:
        db.session.commit()
        return jsonify({"error": refused.message}), refused.status
    except DomainError as error:
        db.session.rollback()
        return jsonify({"error": error.message}), 422
    return jsonify({"id": alert.id, "place": safety.place_text(alert)}), 200


@bp.get("/alerts/live.json")
@roles_required(*LIVE_ROLES)
def live():
    since = request.args.get("since", "")
    payload = safety.live_feed(actor(), int(since) if since.isdigit() else 0)
    response = jsonify(payload)
    # A poll is not activity: discard the session's last-seen touch, so an open page does not
    # defeat the idle time-out. Nothing else was written.
    db.session.rollback()
    return response


@bp.post("/alerts/<int:alert_id>/<any(coming, arrived):kind>")
@roles_required(*safety.RESPONDER_ROLES)
def respond(alert_id: int, kind: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    ok, _ = attempt(lambda: safety.respond(actor(), alert_id, kind))
    if _wants_json():
        return jsonify({"ok": ok}), 200 if ok else 422
    return _back(url_for("auth.home"))


@bp.post("/alerts/<int:alert_id>/close")
@roles_required(*DESK_ROLES, Role.SUPPORT)
def close(alert_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    ok, _ = attempt(lambda: safety.close_alert(actor(), alert_id), "対応終了にしました。")
    if _wants_json():
        return jsonify({"ok": ok}), 200 if ok else 422
    return _back(url_for("auth.home"))


# --- incidents ---------------------------------------------------------------------------------


def _incident_form(form: IncidentForm) -> IncidentForm:
    people = safety.staff_choices()
    form.categories.choices = choices(IncidentCategory.labelled())
    form.follow_ups.choices = choices(FollowUp.labelled())
    form.involved_ids.choices = choices(
        (s.id, f"{s.full_name}（{s.role_label}）") for s in people if s.role in DESK_ROLES
    )
    form.support_ids.choices = choices(
        (s.id, f"{s.full_name}（{s.role_label}）")
        for s in people
        if s.role in safety.RESPONDER_ROLES
    )
    return form


@bp.route("/incidents/new", methods=["GET", "POST"])
@roles_required(*safety.INCIDENT_REPORTERS)
def incident_new():
    form = _incident_form(IncidentForm())
    number = request.values.get("ticket") or None
    ticket = _ticket_or_none(number) if number and actor().staff.role in DESK_ROLES else None
    if request.method == "GET":
        form.occurred_at.data = (
            utcnow().astimezone(TOKYO).replace(tzinfo=None, second=0, microsecond=0)
        )
        form.ticket.data = ticket.number if ticket else ""
        if actor().staff.role in DESK_ROLES:
            form.involved_ids.data = [actor().staff.id]
    elif form.validate_on_submit():
        data = safety.IncidentInput(
            occurred_at=form.occurred_at.data.replace(tzinfo=TOKYO),
            categories=form.categories.data or [],
            description=form.description.data,
            follow_ups=form.follow_ups.data or [],
            involved_ids=form.involved_ids.data or [],
            support_ids=form.support_ids.data or [],
            ticket=ticket,
        )
        ok, incident = attempt(
            lambda: safety.create_incident(actor(), data), "事案を記録しました。"
        )
        if ok:
            if actor().staff.role in safety.INCIDENT_READERS:
                return redirect(url_for("safety.incident", incident_id=incident.id))
            if ticket is not None:
                return redirect(url_for("desk.ticket", number=ticket.number))
            return redirect(url_for("auth.home"))
    status = 422 if request.method == "POST" else 200
    return render_template("consult/safety/incident_form.html", form=form, ticket=ticket), status


@bp.get("/incidents")
@roles_required(*safety.INCIDENT_READERS)
def incidents():
    return render_template(
        "consult/safety/incidents.html", incidents=safety.list_incidents(actor())
    )


@bp.get("/incidents/<int:incident_id>")
@roles_required(*safety.INCIDENT_READERS)
def incident(incident_id: int):
    item = safety.get_incident(actor(), incident_id)
    return render_template("consult/safety/incident.html", incident=item)


# --- long sessions: takeover -------------------------------------------------------------------


@bp.post("/tickets/<number>/takeover")
@roles_required(Role.SUPERVISOR)
def take_over(number: str):
    form = ConfirmForm()
    ticket = _ticket_or_none(number)
    if form.validate_on_submit():
        attempt(
            lambda: safety.take_over(actor(), ticket), "交代しました。担当者があなたになりました。"
        )
    return redirect(url_for("desk.ticket", number=number) + "#timeline")


# --- settings ----------------------------------------------------------------------------------


@bp.route("/admin/safety", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def settings():
    form = SafetySettingsForm()
    if request.method == "GET":
        for key in safety.SETTINGS:
            getattr(form, key).data = safety.get_setting(key)
    elif form.validate_on_submit():
        values = {key: getattr(form, key).data for key in safety.SETTINGS}
        ok, _ = attempt(lambda: safety.save_settings(actor(), values), "設定を保存しました。")
        if ok:
            return redirect(url_for("safety.settings"))
        return render_template(
            "consult/safety/settings.html", form=form, specs=safety.SETTINGS
        ), 422
    return render_template("consult/safety/settings.html", form=form, specs=safety.SETTINGS)


# --- one-button devices ------------------------------------------------------------------------


def _device_form(form: AlertDeviceForm | None = None) -> AlertDeviceForm:
    form = form or AlertDeviceForm()
    form.staff_id.choices = choices(
        ((s.id, f"{s.full_name}（{s.role_label}）") for s in safety.device_staff_choices()),
        blank="選んでください",
    )
    form.place.choices = choices(safety.PLACES.items())
    return form


def _devices_page(status: int = 200, **context):
    form = _device_form(context.pop("form", None))
    return render_template(
        "consult/safety/devices.html",
        form=form,
        devices=safety.list_devices(),
        places=safety.PLACES,
        confirm=ConfirmForm(),
        **context,
    ), status


@bp.get("/admin/devices")
@roles_required(Role.ADMIN)
def devices():
    return _devices_page()


@bp.post("/admin/devices")
@roles_required(Role.ADMIN)
def device_register():
    form = _device_form()
    if not form.validate_on_submit():
        return _devices_page(422, form=form)
    ok, created = attempt(
        lambda: safety.register_device(
            actor(),
            name=form.name.data,
            staff_id=int(form.staff_id.data),
            place=form.place.data,
        )
    )
    if not ok:
        return _devices_page(422, form=form)
    device, token = created
    # Shown once, on this answer only: never stored, never in a URL.
    return _devices_page(
        200, form=AlertDeviceForm(formdata=None), new_device=device, new_token=token
    )


@bp.post("/admin/devices/<int:device_id>/revoke")
@roles_required(Role.ADMIN)
def device_revoke(device_id: int):
    if ConfirmForm().validate_on_submit():
        attempt(lambda: safety.revoke_device(actor(), device_id), "端末の登録を取り消しました。")
    return redirect(url_for("safety.devices"))
