"""A phone consultation's call details, beside its ticket."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.extensions import db
from consult.models import Ticket
from consult.timeutil import UTCDateTime


class PhoneCall(db.Model):
    __tablename__ = "phone_call"
    __table_args__ = (sa.Index("ix_phone_call_callback", "callback_needed", "callback_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), unique=True)
    # Minato and Iwamizawa record calls with an announcement; the log says whether it was played.
    recording_announced: Mapped[bool] = mapped_column(default=False)
    callback_needed: Mapped[bool] = mapped_column(default=False)
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<PhoneCall {self.id}>"
