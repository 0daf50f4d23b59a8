"""管理 → API連携: integrations (tokens shown once) and webhooks with their delivery log."""

from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, redirect, render_template, url_for

from api import services, webhooks
from api.forms import IntegrationForm, WebhookForm
from api.models import DeliveryStatus, Scope, WebhookEvent
from consult.forms import ConfirmForm
from consult.models import Role
from consult.timeutil import TOKYO
from consult.web import actor, attempt, roles_required

bp = Blueprint("api_admin", __name__, url_prefix="/admin/api")


def _page(status: int = 200, **context):
    context.setdefault("form", IntegrationForm(prefix="i"))
    context.setdefault("hook_form", WebhookForm(prefix="w"))
    return render_template(
        "api/admin.html",
        integrations=services.list_integrations(),
        hooks=webhooks.list_hooks(),
        deliveries=webhooks.recent_deliveries(),
        confirm=ConfirmForm(),
        Scope=Scope,
        WebhookEvent=WebhookEvent,
        DeliveryStatus=DeliveryStatus,
        **context,
    ), status


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    return _page()


@bp.post("/integrations")
@roles_required(Role.ADMIN)
def create_integration():
    form = IntegrationForm(prefix="i")
    if not form.validate_on_submit():
        return _page(422, form=form)
    expires = None
    if form.expires_on.data:
        expires = datetime.combine(form.expires_on.data, time(23, 59, 59), TOKYO)
    ok, created = attempt(
        lambda: services.create_integration(
            actor(),
            name=form.name.data,
            scopes=form.scopes.data or [],
            allowed_addresses=form.allowed_addresses.data or "",
            expires_at=expires,
            department_id=form.department_id.data,
        )
    )
    if not ok:
        return _page(422, form=form)
    # Shown once, on this answer only: never stored, never in a URL.
    return _page(200, new_token=created.token, new_integration=created.integration)


@bp.post("/integrations/<int:integration_id>/revoke")
@roles_required(Role.ADMIN)
def revoke_integration(integration_id: int):
    if ConfirmForm().validate_on_submit():
        attempt(
            lambda: services.revoke_integration(actor(), integration_id),
            "アクセストークンを無効にしました。",
        )
    return redirect(url_for("api_admin.index"))


@bp.post("/webhooks")
@roles_required(Role.ADMIN)
def create_webhook():
    form = WebhookForm(prefix="w")
    if not form.validate_on_submit():
        return _page(422, hook_form=form)
    ok, created = attempt(
        lambda: webhooks.create_hook(
            actor(),
            name=form.name.data,
            url=form.url.data,
            events=form.events.data or [],
            personal=bool(form.personal.data),
        )
    )
    if not ok:
        return _page(422, hook_form=form)
    hook, secret = created
    return _page(200, new_secret=secret, new_hook=hook)


@bp.post("/webhooks/<int:hook_id>/revoke")
@roles_required(Role.ADMIN)
def revoke_webhook(hook_id: int):
    if ConfirmForm().validate_on_submit():
        attempt(lambda: webhooks.revoke_hook(actor(), hook_id), "Webhook を無効にしました。")
    return redirect(url_for("api_admin.index", _anchor="webhooks"))
