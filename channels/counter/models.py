"""A walk-in's visit: the reception number the lobby display calls, and the room."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class VisitState(LabelledEnum):
    WAITING = "waiting", "お待ち"
    CALLED = "called", "呼び出し中"
    SERVING = "serving", "相談中"
    DONE = "done", "終了"


ROOMS = (1, 2, 3)


class CounterVisit(db.Model):
    __tablename__ = "counter_visit"
    __table_args__ = (
        sa.UniqueConstraint("service_date", "reception_number"),
        sa.Index("ix_counter_visit_day_state", "service_date", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), unique=True)
    service_date: Mapped[date]
    reception_number: Mapped[int]
    room: Mapped[int]
    state: Mapped[VisitState] = mapped_column(_enum(VisitState), default=VisitState.WAITING)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()

    @property
    def state_label(self) -> str:
        return VisitState(self.state).label

    def __repr__(self) -> str:
        return f"<CounterVisit {self.id} {self.state}>"
