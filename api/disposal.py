"""Disposal's part in the API (consult.services.retention): webhook deliveries still waiting
whose body carries a disposed ticket (its number; with the personal scope its subject and the
citizen's name). Delivered and given-up deliveries have no body already (api.webhooks); a
waiting one is given up, with its body gone."""

from __future__ import annotations

import json

import sqlalchemy as sa

from api.models import ApiWebhookDelivery, DeliveryStatus
from consult.models import Ticket
from consult.plugins import DisposalBatch, PersonalData

HOLDS = (
    PersonalData(
        "api_webhook_delivery",
        ("body",),
        "送信待ちのWebhook本文（件名・相談者名）",
        "相談の記録（連携システムへの通知）",
    ),
)


def dispose(batch: DisposalBatch) -> None:
    connection = batch.connection
    ticket = Ticket.__table__
    numbers = dict(
        connection.execute(
            sa.select(ticket.c.number, ticket.c.id).where(batch.among(ticket.c.id))
        ).all()
    )
    table = ApiWebhookDelivery.__table__
    hit: dict[int, int] = {}
    for delivery_id, body in connection.execute(
        sa.select(table.c.id, table.c.body).where(table.c.body.is_not(None))
    ):
        try:
            number = (json.loads(body).get("ticket") or {}).get("number")
        except (ValueError, AttributeError):
            continue
        if number in numbers:
            hit[delivery_id] = numbers[number]
    if not hit:
        return
    result = connection.execute(
        table.update()
        .where(table.c.id.in_(sorted(hit)))
        .values(
            body=None,
            status=DeliveryStatus.FAILED,
            last_error="相談記録の廃棄により送信を取りやめました",
        )
    )
    by_ticket: dict[int, int] = {}
    for tid in hit.values():
        by_ticket[tid] = by_ticket.get(tid, 0) + 1
    batch.count("webhook_body", "送信待ちのWebhook本文", result.rowcount, by_ticket)
