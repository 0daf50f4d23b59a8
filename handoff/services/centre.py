"""The centre's steps: hand a case to departments, add what it learned, cancel, and manage an
external body's links. Each new handoff is announced to its department by mail
(handoff.notifications), queued in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from consult import signals
from consult.extensions import db
from consult.models import Department, Status, Ticket
from consult.services import audit, calendar, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import format_tokyo, utcnow
from handoff import notifications
from handoff.models import ExternalLink, Handoff, HandoffState, Response, Urgency
from handoff.services.common import (
    ACCEPT_MINUTES,
    CONTACT_RESPONSES,
    DUE_MINUTES,
    MAX_RECORD,
    MAX_SUMMARY,
    add_entry,
    lock,
    move,
    return_to_centre_when_settled,
    touch,
)
from handoff.services.external import issue_link


@dataclass(frozen=True)
class Request:
    department_id: int
    summary: str
    response: Response
    urgency: Urgency = Urgency.NORMAL
    due_at: datetime | None = None


def default_due(response: Response, start: datetime) -> datetime:
    return calendar.add_business_minutes(start, DUE_MINUTES[response])


def accept_deadline(response: Response, urgency: Urgency, start: datetime) -> datetime:
    return calendar.add_business_minutes(start, ACCEPT_MINUTES[response][urgency])


def duty_department_today(now: datetime | None = None) -> Department | None:
    """On a closed day (no department office hours), the department on duty, if any."""
    day = calendar.to_tokyo_date(now or utcnow())
    if calendar.is_business_day(day):
        return None
    return calendar.duty_department_for(day)


def handoff_targets() -> list[Department]:
    return list(
        db.session.scalars(
            sa.select(Department)
            .where(Department.active.is_(True))
            .order_by(Department.is_external, Department.sort_order, Department.name)
        )
    )


def create(actor: Actor, ticket: Ticket, requests: list[Request]) -> list[Handoff]:
    """Hand a case to one or more departments at once; all or nothing."""
    actor.require(*DESK_ROLES)
    if ticket.status == Status.CLOSED:
        raise InvalidTransition("完了した相談は引き継げません。再開してから操作してください。")
    if not requests:
        raise ValidationFailed("引継ぎ先を1つ以上選んでください。")
    now = utcnow()
    seen: set[int] = set()
    created = []
    # In department order: each handoff's flush locks its department's rollup rows until the
    # commit, so two cases handed to the same departments at once take them in the same order
    # (no deadlock on PostgreSQL).
    for request in sorted(requests, key=lambda r: r.department_id):
        department = db.session.get(Department, request.department_id)
        if department is None or not department.active:
            raise ValidationFailed("選択された引継ぎ先は存在しません。一覧から選び直してください。")
        if department.id in seen:
            raise ValidationFailed(f"「{department.name}」が重複しています。")
        seen.add(department.id)
        summary = clean_text(request.summary, "担当課への伝達事項", MAX_SUMMARY, required=True)
        due = request.due_at or default_due(request.response, now)
        if due <= now:
            raise ValidationFailed("回答期限は現在より後の日時を指定してください。")
        duty = duty_department_today(now)
        offered_as_duty = duty is not None and duty.id == department.id
        handoff = Handoff(
            ticket=ticket,
            department=department,
            summary=summary,
            response=request.response,
            urgency=request.urgency,
            share_contact=request.response in CONTACT_RESPONSES,
            state=HandoffState.REQUESTED,
            created_by=actor.staff,
            created_at=now,
            updated_at=now,
            due_at=due,
            accept_by=min(due, accept_deadline(request.response, request.urgency, now)),
            offered_as_duty=offered_as_duty,
        )
        db.session.add(handoff)
        db.session.flush()
        add_entry(
            handoff,
            actor.staff,
            f"{department.name}へ引継ぎ（{request.response.label}・"
            f"期限 {format_tokyo(due, with_weekday=True)}）\n{summary}",
        )
        _notify_new(handoff)
        created.append(handoff)
    if ticket.status in (Status.RECEIVED, Status.IN_PROGRESS, Status.AWAITING_REPLY):
        tickets.change_status(actor, ticket, Status.HANDED_OFF, internal=True)
    touch(created[-1], now)
    for handoff in created:
        signals.handoff_changed.send(handoff)
    return created


def _notify_new(handoff: Handoff) -> None:
    """Mail the department (an external body: with a fresh signed link). Without an address on
    file nothing is sent: the centre phones them, and the panel says so."""
    if not handoff.department.email:
        return
    token = issue_link(handoff) if handoff.department.is_external else None
    notifications.new_handoff(handoff, token)


def cancel(actor: Actor, handoff: Handoff, reason: str) -> None:
    actor.require(*DESK_ROLES)
    reason = clean_text(reason, "取消の理由", MAX_RECORD, required=True)
    move(lock(handoff), HandoffState.CANCELLED)
    touch(handoff, utcnow())
    for link in _links(handoff):
        link.revoked_at = link.revoked_at or utcnow()
    add_entry(
        handoff, actor.staff, f"{handoff.department.name}への引継ぎを取り消しました\n{reason}"
    )
    return_to_centre_when_settled(handoff, actor.staff)
    signals.handoff_changed.send(handoff)


def add_information(actor: Actor, handoff: Handoff, text: str) -> None:
    """The centre adds what it learned; the officer who accepted gets an email."""
    actor.require(*DESK_ROLES)
    if not handoff.is_active:
        raise InvalidTransition("終了した引継ぎには追加情報を送れません。")
    text = clean_text(text, "追加情報", MAX_SUMMARY, required=True)
    touch(handoff, utcnow())
    add_entry(handoff, actor.staff, f"{handoff.department.name}へ追加情報\n{text}", info=True)
    recipient = None
    if handoff.accepted_by is not None and handoff.accepted_by.email:
        recipient = handoff.accepted_by.email
    elif handoff.department.email:
        recipient = handoff.department.email
    if recipient:
        notifications.information_added(handoff, recipient, text)
    signals.handoff_changed.send(handoff)


def _links(handoff: Handoff) -> list[ExternalLink]:
    return list(db.session.scalars(sa.select(ExternalLink).where(ExternalLink.handoff == handoff)))


def revoke_links(actor: Actor, handoff: Handoff) -> int:
    actor.require(*DESK_ROLES)
    count = 0
    for link in _links(handoff):
        if link.revoked_at is None:
            link.revoked_at = utcnow()
            count += 1
    add_entry(handoff, actor.staff, f"{handoff.department.name}への外部リンクを無効にしました")
    audit.record(actor, "revoke_link", "handoff", handoff.id)
    return count


def reissue_link(actor: Actor, handoff: Handoff) -> None:
    """Revoke the old links and mail a fresh one."""
    actor.require(*DESK_ROLES)
    if not handoff.department.is_external:
        raise InvalidTransition("外部リンクは外部機関への引継ぎだけで使えます。")
    if not handoff.is_active:
        raise InvalidTransition("終了した引継ぎのリンクは再発行できません。")
    for link in _links(handoff):
        link.revoked_at = link.revoked_at or utcnow()
    _notify_new(handoff)
    add_entry(handoff, actor.staff, f"{handoff.department.name}へ外部リンクを再発行しました")
