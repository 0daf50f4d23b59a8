"""The API's data: integrations (tokens), outgoing webhooks, their deliveries and attempts.

A token is shown once and kept only as a SHA-256 digest (it is 32 random bytes, so a slow hash
adds nothing); a webhook's secret must be kept to sign, and is shown only to administrators
when it is made. Delivery bodies of a webhook with the personal-data scope carry the ticket's
subject and citizen name: a body is cleared once delivered (or given up), so only waiting work
holds it; the attempts keep status codes and times, never a body.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Department, Staff, _enum
from consult.timeutil import UTCDateTime, utcnow


class Scope(LabelledEnum):
    TICKETS_READ = "tickets:read", "相談の閲覧"
    TICKETS_WRITE = "tickets:write", "相談の登録・更新"
    PERSONAL = "personal", "個人情報（相談者・経過）の閲覧"
    REPORTS = "reports", "統計"
    FAQ = "faq", "FAQ（職員のみのものを含む公開中のFAQの閲覧）"


class WebhookEvent(LabelledEnum):
    TICKET_CREATED = "ticket.created", "相談の登録"
    STATUS_CHANGED = "ticket.status_changed", "状態の変更"
    HANDOFF_REQUESTED = "handoff.requested", "引継ぎの依頼"
    HANDOFF_ANSWERED = "handoff.answered", "引継ぎの対応完了"
    TICKET_CLOSED = "ticket.closed", "相談の完了"


class DeliveryStatus(LabelledEnum):
    PENDING = "pending", "送信待ち"
    SENDING = "sending", "送信中"
    DELIVERED = "delivered", "送信済み"
    FAILED = "failed", "失敗"


class ApiIntegration(db.Model):
    """One connected system and its token."""

    __tablename__ = "api_integration"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    # The token's public part (looked up) and the digest of its secret part (compared).
    token_prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Addresses or networks (CIDR), one per line; empty: any address.
    allowed_addresses: Mapped[str] = mapped_column(sa.Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    # A department's own system: with tickets:write it takes the officer's steps on the
    # handoffs addressed to that department, as the department's officers do.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[Staff | None] = relationship()
    department: Mapped[Department | None] = relationship()

    def has(self, scope: Scope) -> bool:
        return str(scope) in (self.scopes or [])

    def __repr__(self) -> str:
        return f"<ApiIntegration {self.id}>"


class ApiWebhook(db.Model):
    """A URL an administrator registered, the events it wants, and the secret that signs."""

    __tablename__ = "api_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    url: Mapped[str] = mapped_column(sa.String(500))
    events: Mapped[list] = mapped_column(sa.JSON, default=list)
    secret: Mapped[str] = mapped_column(sa.String(64))
    # Only such a hook gets the subject and the citizen's name in its bodies.
    personal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiWebhook {self.id}>"


class ApiWebhookDelivery(db.Model):
    """One event to one hook: a row of the work queue (consult.services.queue)."""

    __tablename__ = "api_webhook_delivery"
    __table_args__ = (sa.Index("ix_api_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("api_webhook.id"), index=True)
    event: Mapped[str] = mapped_column(sa.String(40))
    body: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    webhook: Mapped[ApiWebhook] = relationship()

    def __repr__(self) -> str:
        return f"<ApiWebhookDelivery {self.id} {self.status}>"


class ApiWebhookAttempt(db.Model):
    """What one try of a delivery got: the delivery log the administrators read."""

    __tablename__ = "api_webhook_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("api_webhook_delivery.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(200))
    milliseconds: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<ApiWebhookAttempt {self.id} {self.status_code}>"


class ApiIdempotencyKey(db.Model):
    """An `Idempotency-Key` an integration sent with a POST, and the first answer to it.

    One row per token and key (the unique constraint is what makes two concurrent requests with
    the same key create one ticket on both databases: the second INSERT waits for the first
    transaction and then finds its row). The row is written in the same transaction as what the
    request created, so it exists exactly when that does. `fingerprint` is a digest of the
    method, path and body; `body` is the answer as sent, which for a token with the personal
    scope holds the citizen's name and contacts: rows are deleted after KEEP_FOR (24 hours) by
    the requests that come later, and disposal of a ticket need not reach them past that day.
    """

    __tablename__ = "api_idempotency_key"
    __table_args__ = (
        sa.UniqueConstraint("integration_id", "key", name="uq_api_idempotency_key_key"),
        sa.Index("ix_api_idempotency_key_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("api_integration.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(sa.Text)
    location: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<ApiIdempotencyKey {self.id} status={self.status_code}>"
