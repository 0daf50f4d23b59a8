"""The citizens' voice: satisfaction answers and requests to the city (市への要望・市長への手紙).

How a satisfaction answer is kept apart from the citizen (the rule of issue 19):
- `SatisfactionInvite` is the single-use right to answer once. It holds no ticket id, no time:
  only the channel, the category and the month the case closed, a keyed digest of the token
  (HMAC with the app's secret: a copy of the database alone cannot match a token seen
  elsewhere, in an outbox row, to its invite) and a coarse expiry day (the end of the month
  after closing, the same for every case of that month).
- `SatisfactionAnswer` holds the channel, the category, the month, the score and an optional
  comment. Its id is random (no sequence to line up with closing order) and it has no
  timestamp. The invite is deleted in the transaction that writes the answer, and nothing
  records which invite gave which answer.
- `SatisfactionAsk` says a ticket was asked (so it is asked once, and a reprinted receipt does
  not mint a second vote); it knows neither the token nor the answer.
The reports hide any cell with fewer than `voice.services.MIN_CELL` answers, so that a month in
which a category had one answer does not name its author either. A comment is personal data
the citizen may have typed: it is kept with the answer only, shown to report readers, and
disposed of with the answers of its month (`voice.services.dispose_comments`).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Department, Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow

SCORES = (5, 4, 3, 2, 1)
SCORE_LABELS = {
    5: "満足",
    4: "やや満足",
    3: "どちらともいえない",
    2: "やや不満",
    1: "不満",
}


def _random_id() -> str:
    return secrets.token_hex(16)


class SatisfactionInvite(db.Model):
    """A right to answer once; no link to the ticket (see the module's docstring)."""

    __tablename__ = "satisfaction_invite"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=_random_id)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"))
    month: Mapped[str] = mapped_column(sa.String(7))  # 2026-12 (Tokyo)
    expires_on: Mapped[date]

    def __repr__(self) -> str:
        return f"<SatisfactionInvite {self.id[:6]}>"


class SatisfactionAnswer(db.Model):
    """One anonymous answer: channel, category, month, score, comment; nothing else."""

    __tablename__ = "satisfaction_answer"
    __table_args__ = (
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        sa.Index("ix_satisfaction_answer_month", "month", "channel"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=_random_id)
    channel: Mapped[str] = mapped_column(sa.String(20))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"))
    month: Mapped[str] = mapped_column(sa.String(7))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(sa.Text)

    def __repr__(self) -> str:
        return f"<SatisfactionAnswer {self.id[:6]}>"


class SatisfactionAsk(db.Model):
    """A ticket whose citizen was asked (once). Knows nothing of the token or an answer."""

    __tablename__ = "satisfaction_ask"

    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20))

    def __repr__(self) -> str:
        return f"<SatisfactionAsk {self.ticket_id}>"


class RequestKind(LabelledEnum):
    REQUEST = "request", "市への要望"
    MAYOR_LETTER = "mayor_letter", "市長への手紙"


class CitizenRequest(db.Model):
    """A ticket that is a request to the city or a letter to the mayor: its answer deadline in
    business days, the responsible department (from the case's handoff) and the written answer.

    Personal data: `answer_text` may name the citizen; it lives and is disposed of with its
    ticket (the disclosure bundle reads it through the ticket's timeline entry of the answer).
    """

    __tablename__ = "citizen_request"
    __table_args__ = (sa.Index("ix_citizen_request_due", "answered_at", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), unique=True)
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind))
    received_on: Mapped[date]
    answer_days: Mapped[int]
    due_on: Mapped[date]
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    # The handoff that named the department (handoff's table: no foreign key from the kernel).
    handoff_id: Mapped[int | None]
    answer_text: Mapped[str | None] = mapped_column(sa.Text)
    answered_on: Mapped[date | None]
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    answer_business_days: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship()
    department: Mapped[Department | None] = relationship()
    answered_by: Mapped[Staff | None] = relationship()

    @property
    def kind_label(self) -> str:
        return RequestKind(self.kind).label

    def overdue(self, today: date) -> bool:
        if self.answered_on is not None:
            return self.answered_on > self.due_on
        return today > self.due_on

    def __repr__(self) -> str:
        return f"<CitizenRequest {self.id} {self.kind}>"
