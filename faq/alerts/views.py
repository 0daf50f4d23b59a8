"""Alert pages: staff (/staff/alerts…) and citizens (/alerts…, Japanese and English)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from consult.models import Ticket
from consult.services import tickets
from consult.services.actor import DESK_ROLES
from consult.web import actor, attempt, public, roles_required
from faq.alerts import services
from faq.alerts.forms import ActionForm, AlertForm
from faq.alerts.models import AlertStatus

bp = Blueprint("alerts", __name__)
public_bp = Blueprint("alerts_public", __name__)


def _alert(alert_id: int):
    return services.get(actor(), alert_id)


def _may_approve() -> bool:
    return actor().may(*services.APPROVE_ROLES)


@bp.get("/staff/alerts")
@roles_required(*services.READ_ROLES)
def staff_index():
    return render_template(
        "faq/alerts/staff_index.html",
        alerts=services.list_all(actor()),
        may_author=services.may_author(actor()),
    )


@bp.route("/staff/alerts/new", methods=["GET", "POST"])
@roles_required(*services.READ_ROLES)
def staff_new():
    if not services.may_author(actor()):
        abort(403)
    form = AlertForm()
    if form.validate_on_submit():
        ok, alert = attempt(
            lambda: services.create(actor(), form.values()),
            "下書きを保存しました。個人情報を除いた箇所を確認してください。",
        )
        if ok:
            return redirect(url_for("alerts.staff_alert", alert_id=alert.id))
    status = 422 if request.method == "POST" else 200
    return render_template("faq/alerts/staff_form.html", form=form, alert=None), status


@bp.post("/staff/alerts/from-ticket/<number>")
@roles_required(*services.READ_ROLES)
def from_ticket(number: str):
    """「注意喚起にする」 on a ticket: a redacted draft linked to the case."""
    if not ActionForm().validate_on_submit():
        abort(400)
    ticket = tickets.get_ticket(actor(), number, audit_view=False)
    ok, alert = attempt(
        lambda: services.draft_from_ticket(actor(), ticket),
        "相談から注意喚起の下書きを作成しました。個人情報を除いた箇所を確認してください。",
    )
    if not ok:
        return redirect(url_for("desk.ticket", number=number))
    return redirect(url_for("alerts.staff_alert", alert_id=alert.id))


@bp.get("/staff/alerts/<int:alert_id>")
@roles_required(*services.READ_ROLES)
def staff_alert(alert_id: int):
    alert = _alert(alert_id)
    remaining = [] if alert.is_public else services.remaining_personal_data(alert)
    return render_template(
        "faq/alerts/staff_alert.html",
        alert=alert,
        remaining=remaining,
        labels=services.FIELD_LABELS,
        action_form=ActionForm(),
        may_author=services.may_author(actor()),
        may_approve=_may_approve(),
        ticket_number=_ticket_number(alert),
    )


def _ticket_number(alert) -> str | None:
    """The linked case's number, for desk staff only (an officer sees cases by handoff)."""
    if alert.ticket_id is None or not actor().may(*DESK_ROLES):
        return None
    from consult.extensions import db

    ticket = db.session.get(Ticket, alert.ticket_id)
    return ticket.number if ticket is not None else None


@bp.route("/staff/alerts/<int:alert_id>/edit", methods=["GET", "POST"])
@roles_required(*services.READ_ROLES)
def staff_edit(alert_id: int):
    alert = _alert(alert_id)
    if not services.may_author(actor()):
        abort(403)
    form = AlertForm(obj=alert) if request.method == "GET" else AlertForm()
    if request.method == "POST" and form.validate_on_submit():
        ok, _ = attempt(lambda: services.update(actor(), alert, form.values()), "保存しました。")
        if ok:
            return redirect(url_for("alerts.staff_alert", alert_id=alert_id))
    status = 422 if request.method == "POST" else 200
    return render_template("faq/alerts/staff_form.html", form=form, alert=alert), status


ACTIONS = {
    "submit": (services.submit, "承認を依頼しました。"),
    "send_back": (services.send_back, "下書きに差し戻しました。"),
    "approve": (
        services.approve,
        "承認して公開しました。全部署に通知し、LINEのお知らせの下書きを作成しました。",
    ),
    "archive": (services.archive, "公開を終了しました。"),
}


@bp.post("/staff/alerts/<int:alert_id>/<action>")
@roles_required(*services.READ_ROLES)
def staff_action(alert_id: int, action: str):
    if not (services.may_author(actor()) or _may_approve()):
        abort(403)
    if action not in ACTIONS or not ActionForm().validate_on_submit():
        abort(400 if action in ACTIONS else 404)
    alert = _alert(alert_id)
    operation, message = ACTIONS[action]
    attempt(lambda: operation(actor(), alert), message)
    return redirect(url_for("alerts.staff_alert", alert_id=alert_id))


def ticket_panel(ticket: Ticket):
    """On every ticket page: the alerts made from it, and 「注意喚起にする」."""
    from flask_login import current_user

    alerts = services.from_ticket(ticket)
    may = current_user.is_authenticated and services.may_author(actor())
    if not alerts and not may:
        return None
    return (
        "faq/alerts/_ticket_panel.html",
        {"alerts": alerts, "may_author": may, "alert_form": ActionForm()},
    )


# --- citizens ---------------------------------------------------------------------------------


@public_bp.get("/alerts")
@public
def index():
    return render_template("faq/alerts/public_index.html", alerts=services.public_alerts())


@public_bp.get("/alerts/<int:alert_id>")
@public
def alert(alert_id: int):
    found = services.get_public(alert_id)
    return render_template("faq/alerts/public_alert.html", alert=found)


__all__ = ["AlertStatus", "bp", "public_bp"]
