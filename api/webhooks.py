"""Webhooks out: registered by administrators, filled from the kernel's signals, delivered by
the `webhooks` lane of the worker through the one work queue, each signed.

A delivery row is written in the transaction of the change (as the outbox is), so nothing is
sent for a change that rolled back and nothing is sent from inside a web request. The worker
claims due rows (consult.services.queue: exclusive across processes, taken back from a dead
worker), posts the body outside any transaction, records the attempt (the delivery log), and
retries with the queue's back-off until `API_WEBHOOK_MAX_ATTEMPTS`.

Signature: `X-Madoguchi-Signature: sha256=<hex>` is HMAC-SHA256 with the hook's secret over
`<X-Madoguchi-Timestamp>.<body bytes>`; the README shows how to verify it.

Personal data (the subject and the citizen's name) goes only into the bodies of hooks with the
personal-data scope, and a body is cleared when its delivery ends (delivered or given up).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from api.models import (
    ApiWebhook,
    ApiWebhookAttempt,
    ApiWebhookDelivery,
    DeliveryStatus,
    WebhookEvent,
)
from consult.extensions import db
from consult.models import Role, Ticket
from consult.services import audit, protection, queue
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import single_line
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.api.webhooks")

LANE = "webhooks"


def _describe(row: ApiWebhookDelivery) -> str:
    hook = db.session.get(ApiWebhook, row.webhook_id)
    return f"Webhook「{hook.name if hook else row.webhook_id}」への {row.event}"


def _retry(row: ApiWebhookDelivery) -> None:
    row.status = DeliveryStatus.PENDING
    row.next_attempt_at = utcnow()


QUEUE = queue.QueueSpec(
    name="webhook",
    label="Webhook送信",
    model=ApiWebhookDelivery,
    pending=DeliveryStatus.PENDING,
    claimed=DeliveryStatus.SENDING,
    failed=DeliveryStatus.FAILED,
    describe=_describe,
    retry=_retry,
)


# --- administrators ---------------------------------------------------------------------------


def create_hook(
    actor: Actor, *, name: str, url: str, events: list[str], personal: bool = False
) -> tuple[ApiWebhook, str]:
    """A new hook and its signing secret (shown to the administrator once, kept to sign)."""
    actor.require(Role.ADMIN)
    name = single_line(name or "")
    if not name or len(name) > 80:
        raise ValidationFailed("名前を80文字以内で入力してください。")
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise ValidationFailed(
            "送信先は http:// または https:// で始まるURL（500文字以内）にしてください。"
        )
    try:
        chosen = sorted({WebhookEvent(value).value for value in events})
    except ValueError as exc:
        raise ValidationFailed("イベントは一覧から選んでください。") from exc
    if not chosen:
        raise ValidationFailed("イベントを一つ以上選んでください。")
    secret = secrets.token_hex(32)
    hook = ApiWebhook(
        name=name, url=url, events=chosen, secret=secret, personal=personal, created_at=utcnow()
    )
    db.session.add(hook)
    db.session.flush()
    audit.record(actor, "create", "api_webhook", hook.id, detail=",".join(chosen))
    return hook, secret


def revoke_hook(actor: Actor, hook_id: int) -> ApiWebhook:
    """The hook gets nothing more; deliveries still waiting are given up."""
    actor.require(Role.ADMIN)
    hook = db.session.get(ApiWebhook, hook_id)
    if hook is None:
        raise NotFound("Webhook が見つかりません。")
    if hook.revoked_at is None:
        hook.revoked_at = utcnow()
        db.session.execute(
            sa.update(ApiWebhookDelivery)
            .where(
                ApiWebhookDelivery.webhook_id == hook.id,
                ApiWebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .values(
                status=DeliveryStatus.FAILED, last_error="Webhook が無効にされました", body=None
            )
        )
        audit.record(actor, "deactivate", "api_webhook", hook.id)
    return hook


def list_hooks() -> list[ApiWebhook]:
    return list(db.session.scalars(sa.select(ApiWebhook).order_by(ApiWebhook.id)))


def recent_deliveries(limit: int = 50) -> list[tuple[ApiWebhookDelivery, list[ApiWebhookAttempt]]]:
    """The delivery log: the latest deliveries, each with its attempts."""
    rows = list(
        db.session.scalars(
            sa.select(ApiWebhookDelivery).order_by(ApiWebhookDelivery.id.desc()).limit(limit)
        )
    )
    attempts: dict[int, list[ApiWebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in db.session.scalars(
            sa.select(ApiWebhookAttempt)
            .where(ApiWebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(ApiWebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [(row, attempts[row.id]) for row in rows]


# --- from the signals ----------------------------------------------------------------------------


def _payload(event: WebhookEvent, ticket: Ticket, personal: bool, extra: dict, hidden=None) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "event": event.value,
        "occurred_at": utcnow().isoformat(),
        "ticket": {
            "number": ticket.number,
            "status": ticket.status.value,
            "channel": ticket.channel.value,
            "priority": ticket.priority.value,
            "category_id": ticket.category_id,
        },
        **extra,
    }
    if personal:
        # A subject may carry a protected person's whereabouts (a LINE chat's first message, a
        # mail's subject): hidden here as in every other message that leaves the centre.
        body["ticket"]["subject"] = hidden.scrub(ticket.subject) if hidden else ticket.subject
        body["ticket"]["citizen_name"] = ticket.citizen.name if ticket.citizen else None
    return body


def enqueue(event: WebhookEvent, ticket: Ticket, **extra) -> int:
    """A delivery for every active hook that wants `event`, in the caller's transaction."""
    hooks = [
        hook
        for hook in db.session.scalars(sa.select(ApiWebhook).where(ApiWebhook.revoked_at.is_(None)))
        if event.value in (hook.events or [])
    ]
    now = utcnow()
    hidden = protection.all_protected_secrets() if any(h.personal for h in hooks) else None
    for hook in hooks:
        payload = _payload(event, ticket, hook.personal, extra, hidden)
        db.session.add(
            ApiWebhookDelivery(
                webhook_id=hook.id,
                event=event.value,
                body=json.dumps(payload, ensure_ascii=False),
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(hooks)


def on_ticket_created(ticket, **_kwargs) -> None:
    enqueue(WebhookEvent.TICKET_CREATED, ticket)


def on_status_changed(ticket, old=None, new=None, **_kwargs) -> None:
    enqueue(
        WebhookEvent.STATUS_CHANGED,
        ticket,
        change={"from": getattr(old, "value", old), "to": getattr(new, "value", new)},
    )


def on_ticket_closed(ticket, **_kwargs) -> None:
    enqueue(WebhookEvent.TICKET_CLOSED, ticket)


def on_handoff_changed(handoff, **_kwargs) -> None:
    """The handoff's state says which event it is (the handoff package is not imported)."""
    state = str(getattr(handoff, "state", ""))
    event = {"requested": WebhookEvent.HANDOFF_REQUESTED, "done": WebhookEvent.HANDOFF_ANSWERED}
    if state not in event or getattr(handoff, "ticket", None) is None:
        return
    # A request given more information sends handoff_changed again, with a later updated_at:
    # "requested" goes out once, for the handoff as it was made.
    if state == "requested" and getattr(handoff, "updated_at", None) != handoff.created_at:
        return
    department = getattr(handoff, "department_id", None)
    enqueue(event[state], handoff.ticket, handoff={"id": handoff.id, "department_id": department})


# --- delivery (the worker's `webhooks` lane) --------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int | None, str | None]:
    """(status code, error): an answer 2xx is success; anything else is an error to retry."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, single_line(f"{type(exc).__name__}: {reason}")[:200]


def deliver_one(delivery_id: int, holder: str, max_attempts: int, timeout: float) -> str:
    delivery = db.session.get(ApiWebhookDelivery, delivery_id)
    hook = db.session.get(ApiWebhook, delivery.webhook_id) if delivery else None
    if delivery is None or hook is None:
        db.session.rollback()
        return "missing"
    url, secret, body, event = hook.url, hook.secret, (delivery.body or "").encode(), delivery.event
    revoked = hook.revoked_at is not None
    db.session.commit()  # nothing held while the receiver answers
    started = time.monotonic()
    if revoked:
        code, error = None, "Webhook が無効にされました"
    else:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "madoguchi-webhook/1",
            "X-Madoguchi-Event": event,
            "X-Madoguchi-Delivery": str(delivery_id),
            "X-Madoguchi-Timestamp": timestamp,
            "X-Madoguchi-Signature": sign(secret, timestamp, body),
        }
        code, error = _post(url, body, headers, timeout)
    elapsed = int((time.monotonic() - started) * 1000)
    if not queue.hold(QUEUE, delivery_id, holder):
        db.session.rollback()
        log.warning("webhook delivery=%s: claim lost while sending", delivery_id)
        return "lost"
    delivery = db.session.get(ApiWebhookDelivery, delivery_id)
    db.session.add(
        ApiWebhookAttempt(
            delivery_id=delivery_id,
            at=utcnow(),
            status_code=code,
            error=error,
            milliseconds=elapsed,
        )
    )
    if error is None:
        queue.release(delivery)
        delivery.attempts += 1
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = utcnow()
        delivery.last_error = None
        delivery.body = None
        outcome = "delivered"
    else:
        given_up = queue.settle_failure(QUEUE, delivery, error, max_attempts, final=revoked)
        if given_up:
            delivery.body = None
        outcome = "failed" if given_up else "retry"
    db.session.commit()
    log.info("webhook delivery=%s event=%s outcome=%s", delivery_id, event, outcome)
    return outcome


def run_once(batch: int = 10) -> dict[str, int]:
    """Deliver everything due now; the worker task of the `webhooks` lane."""
    settings = current_app.config["MADOGUCHI"]
    max_attempts = int(settings["API_WEBHOOK_MAX_ATTEMPTS"])
    timeout = float(settings["API_WEBHOOK_TIMEOUT"])
    holder = queue.worker_id()
    counts: dict[str, int] = {}
    while True:
        ids = queue.claim(
            QUEUE,
            batch,
            holder=holder,
            order_by=(ApiWebhookDelivery.next_attempt_at, ApiWebhookDelivery.id),
        )
        if not ids:
            return counts
        for delivery_id in ids:
            outcome = deliver_one(delivery_id, holder, max_attempts, timeout)
            counts[outcome] = counts.get(outcome, 0) + 1
