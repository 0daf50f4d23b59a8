"""What the ticket page's LINE panel shows."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from channels.line.models import LineContact, LineMedia
from channels.line.services.common import CHANNEL, settings
from channels.line.services.contacts import line_ticket
from consult.extensions import db
from consult.models import Channel, OutboxMessage, Ticket


@dataclass
class PanelData:
    configured: bool
    contact: LineContact | None
    media: list[LineMedia]
    deliveries: list[OutboxMessage]


def panel_data(ticket: Ticket) -> PanelData | None:
    link = line_ticket(ticket) if ticket.channel == Channel.LINE else None
    if link is None and ticket.citizen_id is None:
        return None
    media, deliveries = [], []
    if link is not None:
        media = list(
            db.session.scalars(
                sa.select(LineMedia).where(LineMedia.ticket_id == ticket.id).order_by(LineMedia.id)
            )
        )
        deliveries = list(
            db.session.scalars(
                sa.select(OutboxMessage)
                .where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == CHANNEL)
                .order_by(OutboxMessage.id.desc())
                .limit(5)
            )
        )
    return PanelData(settings().configured, link.contact if link else None, media, deliveries)
