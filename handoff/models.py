"""A handoff: the centre asks a department (or an external body) to act on a case.

The handoff carries only what the officer needs (a summary written for them); the ticket's
timeline records every change. Timestamps of each step are kept on the row itself, so that the
supervisor's figures (time to accept, to arrive; bounces) are plain aggregate queries.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Department, Grain, Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class Response(LabelledEnum):
    VISIT = "visit", "来庁して対応"
    CALLBACK = "callback", "折り返し電話"
    WRITTEN = "written", "文書回答"
    JOINT = "joint", "合同オンライン相談"


class Urgency(LabelledEnum):
    URGENT = "urgent", "至急"
    NORMAL = "normal", "通常"
    LOW = "low", "急がない"


class HandoffState(LabelledEnum):
    REQUESTED = "requested", "依頼中"
    ACCEPTED = "accepted", "受付済"
    ON_THE_WAY = "on_the_way", "向かっています"
    ARRIVED = "arrived", "到着"
    DONE = "done", "対応済"
    DECLINED = "declined", "差し戻し"
    CANCELLED = "cancelled", "取消"


ACTIVE_STATES = (
    HandoffState.REQUESTED,
    HandoffState.ACCEPTED,
    HandoffState.ON_THE_WAY,
    HandoffState.ARRIVED,
)


class Handoff(db.Model):
    __tablename__ = "handoff"
    __table_args__ = (
        # The officer's inbox: a department's handoffs by state, newest first (keyset).
        sa.Index("ix_handoff_department_state", "department_id", "state", "id"),
        sa.Index("ix_handoff_state_accept_by", "state", "accept_by"),
        sa.Index("ix_handoff_state_due", "state", "due_at"),
        sa.Index("ix_handoff_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A merged ticket's handoffs move to its survivor (consult.services.merge, MOVES_WITH_MERGE).
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ticket.id"), index=True, info={"moves_with_merge": True}
    )
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    summary: Mapped[str] = mapped_column(sa.Text)
    response: Mapped[Response] = mapped_column(_enum(Response))
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency), default=Urgency.NORMAL)
    share_contact: Mapped[bool] = mapped_column(default=False)
    state: Mapped[HandoffState] = mapped_column(_enum(HandoffState), default=HandoffState.REQUESTED)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Due: when the response is wanted. Accept by: when escalation starts if nobody took it.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accept_by: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offered_as_duty: Mapped[bool] = mapped_column(default=False)

    accepted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    accepted_by_name: Mapped[str | None] = mapped_column(sa.String(120))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eta_minutes: Mapped[int | None]
    on_the_way_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(sa.Text)

    # 対応記録 (required to finish).
    record_action: Mapped[str | None] = mapped_column(sa.Text)
    record_outcome: Mapped[str | None] = mapped_column(sa.Text)
    record_follow_up: Mapped[str | None] = mapped_column(sa.Text)
    record_follow_up_by: Mapped[str | None] = mapped_column(sa.String(120))

    ticket: Mapped[Ticket] = relationship()
    department: Mapped[Department] = relationship()
    created_by: Mapped[Staff | None] = relationship(foreign_keys=[created_by_id])
    accepted_by: Mapped[Staff | None] = relationship(foreign_keys=[accepted_by_id])
    session: Mapped[JointSession | None] = relationship(back_populates="handoff")

    @property
    def state_label(self) -> str:
        return HandoffState(self.state).label

    @property
    def response_label(self) -> str:
        return Response(self.response).label

    @property
    def urgency_label(self) -> str:
        return Urgency(self.urgency).label

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def eta_at(self) -> datetime | None:
        if self.on_the_way_at is None or self.eta_minutes is None:
            return None
        return self.on_the_way_at + timedelta(minutes=self.eta_minutes)

    def is_overdue(self, now: datetime) -> bool:
        return self.is_active and self.due_at < now

    def __repr__(self) -> str:
        return f"<Handoff {self.id} {self.state}>"


class SessionMode(LabelledEnum):
    VIDEO = "video", "オンライン（ビデオ会議）"
    COUNTER = "counter", "センターの窓口"


# How long a joint session may be booked for, in minutes.
SESSION_MINUTES = (30, 45, 60, 90, 120)


class SessionAnswer(LabelledEnum):
    PENDING = "pending", "回答待ち"
    ACCEPTED = "accepted", "参加します"
    OTHER_TIME = "other_time", "別の日時を希望"


class JointSession(db.Model):
    """合同相談: the centre and a department or external body hear the citizen together.

    Imabari's project team found that relaying a case distorts it. The session is a time both
    sides can make, by video (the centre's meeting link, from the administrator's template) or
    at the counter; the invitee gets it as an iCalendar invitation (`uid`, `sequence` grow with
    each change, as RFC 5546 wants) and answers 参加します or asks for another time.

    Personal data: `answer_note` is the invitee's free text (it may name the citizen); disposal
    and the disclosure bundle reach it with the handoff's own texts.
    """

    __tablename__ = "joint_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(sa.ForeignKey("handoff.id"), unique=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mode: Mapped[SessionMode] = mapped_column(_enum(SessionMode, 10))
    # The meeting's code in the administrator's URL template: random, so a link cannot be
    # guessed from a ticket number.
    code: Mapped[str] = mapped_column(sa.String(24))
    meeting_url: Mapped[str | None] = mapped_column(sa.String(500))
    uid: Mapped[str] = mapped_column(sa.String(120), unique=True)
    sequence: Mapped[int] = mapped_column(default=0)
    answer: Mapped[SessionAnswer] = mapped_column(
        _enum(SessionAnswer, 12), default=SessionAnswer.PENDING
    )
    answer_note: Mapped[str | None] = mapped_column(sa.Text)
    answered_by_name: Mapped[str | None] = mapped_column(sa.String(120))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    handoff: Mapped[Handoff] = relationship(back_populates="session")

    @property
    def mode_label(self) -> str:
        return SessionMode(self.mode).label

    @property
    def answer_label(self) -> str:
        return SessionAnswer(self.answer).label

    @property
    def is_live(self) -> bool:
        return self.cancelled_at is None

    def __repr__(self) -> str:
        return f"<JointSession {self.id} {self.answer}>"


class ExternalLink(db.Model):
    """A signed, expiring, revocable link that lets an external body answer one handoff."""

    __tablename__ = "handoff_external_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(sa.ForeignKey("handoff.id"), index=True)
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uses: Mapped[int] = mapped_column(default=0)

    handoff: Mapped[Handoff] = relationship()


class Measure(enum.StrEnum):
    """What a handoff_daily row counts."""

    CREATED = "created"
    DECLINED = "declined"  # a bounce: the handoff's state is DECLINED
    ACCEPTED = "accepted"  # minutes from the request to the accept
    ARRIVED = "arrived"  # minutes from the request to the arrival


class HandoffDaily(db.Model):
    """Derived, never edited by hand: handoffs per Japanese day of their request (created_at), and
    per month, by department; accepted and arrived ones also by whole minutes from the request,
    so a period's medians come from a histogram a few thousand rows long whatever its length.
    Kept in step in the same transaction as every write of a handoff by handoff.rollup."""

    __tablename__ = "handoff_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grain: Mapped[Grain] = mapped_column(_enum(Grain, 8), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(
        sa.ForeignKey("department.id"), primary_key=True, autoincrement=False
    )
    measure: Mapped[Measure] = mapped_column(_enum(Measure, 10), primary_key=True)
    # Whole minutes from the request (ACCEPTED, ARRIVED); 0 for CREATED and DECLINED.
    minutes: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    handoffs: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<HandoffDaily {self.grain} {self.day} {self.department_id} {self.measure}>"
