"""Handoffs: the rules of the centre's promise that the department comes to the citizen.

States: 依頼中 → 受付済 → 向かっています → 到着 → 対応済, or 差し戻し (with a reason; counts as a
bounce) from any open state, or 取消 by the centre. Every change is a timeline entry on the
ticket. An officer sees and acts only on handoffs to their own department; an external body acts
through a signed, expiring, revocable link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from consult import plugins, signals, urls
from consult.extensions import db
from consult.models import Department, EntryKind, Role, Staff, Status, Ticket
from consult.services import audit, calendar, mail, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from consult.services.normalize import clean_text
from consult.timeutil import format_tokyo, utcnow
from handoff import rollup
from handoff.models import (
    ACTIVE_STATES,
    ExternalLink,
    Handoff,
    HandoffState,
    Response,
    Urgency,
)
from handoff.settings import HandoffSettings

MAX_SUMMARY = 4000
MAX_RECORD = 4000
MAX_ETA_MINUTES = 240

# Who may move a handoff from one state to the next (the centre may cancel any open one).
TRANSITIONS: dict[HandoffState, set[HandoffState]] = {
    HandoffState.REQUESTED: {HandoffState.ACCEPTED, HandoffState.DECLINED, HandoffState.CANCELLED},
    HandoffState.ACCEPTED: {
        HandoffState.ON_THE_WAY,
        HandoffState.ARRIVED,
        HandoffState.DONE,
        HandoffState.DECLINED,
        HandoffState.CANCELLED,
    },
    HandoffState.ON_THE_WAY: {
        HandoffState.ARRIVED,
        HandoffState.DONE,
        HandoffState.DECLINED,
        HandoffState.CANCELLED,
    },
    HandoffState.ARRIVED: {HandoffState.DONE, HandoffState.DECLINED, HandoffState.CANCELLED},
    HandoffState.DONE: set(),
    HandoffState.DECLINED: set(),
    HandoffState.CANCELLED: set(),
}

# Business minutes (department office time) until the response is due, per wanted response.
DUE_MINUTES = {
    Response.VISIT: 30,
    Response.CALLBACK: 120,
    Response.JOINT: calendar.BUSINESS_DAY_MINUTES,
    Response.WRITTEN: 5 * calendar.BUSINESS_DAY_MINUTES,
}
# Business minutes until an unaccepted handoff escalates, per response and urgency.
ACCEPT_MINUTES = {
    Response.VISIT: {Urgency.URGENT: 5, Urgency.NORMAL: 10, Urgency.LOW: 30},
    Response.CALLBACK: {Urgency.URGENT: 15, Urgency.NORMAL: 60, Urgency.LOW: 120},
    Response.JOINT: {Urgency.URGENT: 30, Urgency.NORMAL: 120, Urgency.LOW: 240},
    Response.WRITTEN: {
        Urgency.URGENT: 120,
        Urgency.NORMAL: calendar.BUSINESS_DAY_MINUTES,
        Urgency.LOW: 2 * calendar.BUSINESS_DAY_MINUTES,
    },
}
# Responses that need the citizen's contact details (shared with the officer, audited).
CONTACT_RESPONSES = {Response.CALLBACK, Response.WRITTEN, Response.JOINT}


@dataclass(frozen=True)
class Request:
    department_id: int
    summary: str
    response: Response
    urgency: Urgency = Urgency.NORMAL
    due_at: datetime | None = None


def _entry(handoff: Handoff, author: Staff | None, body: str, **data) -> None:
    data.update(
        handoff_id=handoff.id,
        state=handoff.state.value,
        department=handoff.department.name,
    )
    tickets.add_entry(handoff.ticket, EntryKind.HANDOFF, author=author, body=body, data=data)


def _touch(handoff: Handoff, now: datetime) -> None:
    handoff.updated_at = now
    # The ticket's last activity moves too, so the live view of the ticket sees the change.
    if now > handoff.ticket.last_activity_at:
        handoff.ticket.last_activity_at = now


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
        _entry(
            handoff,
            actor.staff,
            f"{department.name}へ引継ぎ（{request.response.label}・"
            f"期限 {format_tokyo(due, with_weekday=True)}）\n{summary}",
        )
        _notify_new(handoff)
        created.append(handoff)
    if ticket.status in (Status.RECEIVED, Status.IN_PROGRESS, Status.AWAITING_REPLY):
        tickets.change_status(actor, ticket, Status.HANDED_OFF, internal=True)
    _touch(created[-1], now)
    for handoff in created:
        signals.handoff_changed.send(handoff)
    return created


def _notify_new(handoff: Handoff) -> None:
    department = handoff.department
    base = urls.base_url()
    if department.is_external:
        if not department.email:
            return  # the centre phones them; the panel says no address is on file
        token = issue_link(handoff)
        link = f"{base}/x/handoff/{token}"
        days = HandoffSettings.current().link_days
        text = (
            f"{department.name} ご担当者様\n\n"
            "市民相談センターから、ご相談の対応をお願いいたします。\n"
            f"対応方法：{handoff.response_label}\n"
            f"回答期限：{format_tokyo(handoff.due_at, with_weekday=True)}\n\n"
            "下記のリンクから依頼内容をご確認のうえ、対応記録をご入力ください。\n"
            f"{link}\n\n"
            f"このリンクは{days}日間有効です。第三者に転送しないでください。\n"
        )
    else:
        if not department.email:
            return
        text = (
            f"{department.name} 御中\n\n"
            "市民相談センターから引継ぎがありました。受付をお願いします。\n"
            f"相談番号：{handoff.ticket.number}\n"
            f"対応方法：{handoff.response_label}（{handoff.urgency_label}）\n"
            f"回答期限：{format_tokyo(handoff.due_at, with_weekday=True)}\n\n"
            f"{base}/handoffs/{handoff.id}\n"
        )
    mail.enqueue_mail(
        to=department.email,
        subject=f"【引継ぎ依頼】{handoff.response_label}（相談番号 {handoff.ticket.number}）",
        text=text,
        ticket=handoff.ticket,
    )


# --- access ------------------------------------------------------------------------------------


def _may_see(actor: Actor, handoff: Handoff) -> bool:
    if actor.trusted:
        return True
    if actor.integration is not None:  # an API token: the desk's view, by its scopes
        return actor.may(*DESK_ROLES)
    staff = actor.staff
    if staff is None or not staff.active:
        return False
    if staff.role in DESK_ROLES:
        return True
    return staff.role == Role.OFFICER and staff.department_id == handoff.department_id


def get(actor: Actor, handoff_id: int) -> Handoff:
    handoff = db.session.get(Handoff, handoff_id)
    # The same answer for "does not exist" and "not yours": nothing leaks about other cases.
    if handoff is None or not _may_see(actor, handoff):
        raise NotFound("引継ぎが見つかりません。")
    return handoff


def contact_for(actor: Actor, handoff: Handoff) -> dict | None:
    """The citizen's contact, when the response needs it; each view is audited."""
    if not handoff.share_contact or handoff.ticket.citizen is None:
        return None
    citizen = handoff.ticket.citizen
    if citizen.protected:
        # 支援措置: a handoff never carries a protected person's whereabouts (officers are not
        # named on the case); the officer reaches the person through the centre.
        audit.record(actor, "view_contact", "handoff", handoff.id, "name")
        return {"name": citizen.name, "phones": [], "emails": [], "protected": True}
    audit.record(actor, "view_contact", "handoff", handoff.id, "name,phones,emails")
    return {
        "name": citizen.name,
        "phones": [p.number for p in citizen.phones],
        "emails": [e.address for e in citizen.emails],
    }


def _require_officer(actor: Actor, handoff: Handoff) -> Staff | None:
    if actor.trusted:
        return actor.staff
    if actor.integration is not None:  # a department's own system, through the API
        if Role.OFFICER in actor.grants and actor.department_id == handoff.department_id:
            return None
        raise PermissionDenied("この引継ぎを操作する権限がありません。")
    staff = actor.staff
    if staff is None or staff.role != Role.OFFICER or staff.department_id != handoff.department_id:
        raise PermissionDenied("この引継ぎを操作する権限がありません。")
    return staff


def _move(handoff: Handoff, new: HandoffState) -> None:
    if new not in TRANSITIONS[handoff.state]:
        raise InvalidTransition(
            f"「{handoff.state.label}」の引継ぎを「{new.label}」にはできません。"
        )
    handoff.state = new


def _lock(handoff: Handoff) -> Handoff:
    """Re-read the row under a write lock (PostgreSQL) so two officers cannot both accept."""
    db.session.flush()  # keep this transaction's own earlier steps (refresh would drop them)
    db.session.refresh(handoff, with_for_update=True)
    return handoff


# --- the officer's steps -----------------------------------------------------------------------


def accept(actor: Actor, handoff: Handoff) -> None:
    staff = _require_officer(actor, _lock(handoff))
    _move(handoff, HandoffState.ACCEPTED)
    now = utcnow()
    handoff.accepted_by = staff
    handoff.accepted_by_name = staff.full_name if staff else handoff.department.name
    handoff.accepted_at = now
    _touch(handoff, now)
    _entry(
        handoff, staff, f"{handoff.department.name}が受け付けました（{handoff.accepted_by_name}）"
    )
    signals.handoff_changed.send(handoff)


def on_the_way(actor: Actor, handoff: Handoff, eta_minutes: int | None) -> None:
    staff = _require_officer(actor, _lock(handoff))
    if handoff.response != Response.VISIT:
        raise InvalidTransition("「向かっています」は来庁して対応する引継ぎだけで使えます。")
    if eta_minutes is None or not 1 <= eta_minutes <= MAX_ETA_MINUTES:
        raise ValidationFailed(f"到着までの時間は1〜{MAX_ETA_MINUTES}分で入力してください。")
    if handoff.state == HandoffState.REQUESTED:
        accept(actor, handoff)
    _move(handoff, HandoffState.ON_THE_WAY)
    now = utcnow()
    handoff.eta_minutes = eta_minutes
    handoff.on_the_way_at = now
    _touch(handoff, now)
    _entry(handoff, staff, f"{handoff.department.name}の職員が向かっています（約{eta_minutes}分）")
    signals.handoff_changed.send(handoff)


def arrive(actor: Actor, handoff: Handoff) -> None:
    staff = _require_officer(actor, _lock(handoff))
    _move(handoff, HandoffState.ARRIVED)
    now = utcnow()
    handoff.arrived_at = now
    _touch(handoff, now)
    _entry(handoff, staff, f"{handoff.department.name}の職員が窓口に到着しました")
    signals.handoff_changed.send(handoff)


@dataclass(frozen=True)
class Record:
    action: str
    outcome: str
    follow_up: str = ""
    follow_up_by: str = ""


def finish(actor: Actor, handoff: Handoff, record: Record) -> None:
    staff = _require_officer(actor, _lock(handoff))
    _finish(handoff, staff, record, author_name=None)


def _finish(handoff: Handoff, staff: Staff | None, record: Record, author_name: str | None):
    action = clean_text(record.action, "対応内容", MAX_RECORD, required=True)
    outcome = clean_text(record.outcome, "結果", MAX_RECORD, required=True)
    follow_up = clean_text(record.follow_up, "今後の対応", MAX_RECORD)
    follow_up_by = clean_text(record.follow_up_by, "今後の対応の担当", 120)
    if follow_up and not follow_up_by:
        raise ValidationFailed("今後の対応がある場合は、誰が対応するかを入力してください。")
    _move(handoff, HandoffState.DONE)
    now = utcnow()
    if handoff.accepted_at is None:
        handoff.accepted_at = now
        handoff.accepted_by = staff
        handoff.accepted_by_name = author_name or (staff.full_name if staff else None)
    handoff.done_at = now
    handoff.record_action = action
    handoff.record_outcome = outcome
    handoff.record_follow_up = follow_up or None
    handoff.record_follow_up_by = follow_up_by or None
    _touch(handoff, now)
    lines = [f"{handoff.department.name}の対応記録", f"対応内容：{action}", f"結果：{outcome}"]
    if follow_up:
        lines.append(f"今後の対応：{follow_up}（{follow_up_by}）")
    _entry(handoff, staff, "\n".join(lines), record=True, by=author_name)
    _return_to_centre_when_settled(handoff, staff)
    signals.handoff_changed.send(handoff)


def decline(actor: Actor, handoff: Handoff, reason: str) -> None:
    staff = _require_officer(actor, _lock(handoff))
    _decline(handoff, staff, reason)


def _decline(handoff: Handoff, staff: Staff | None, reason: str) -> None:
    reason = clean_text(reason, "差し戻しの理由", MAX_RECORD, required=True)
    _move(handoff, HandoffState.DECLINED)
    now = utcnow()
    handoff.declined_at = now
    handoff.decline_reason = reason
    _touch(handoff, now)
    _entry(handoff, staff, f"{handoff.department.name}から差し戻されました\n理由：{reason}")
    _return_to_centre_when_settled(handoff, staff)
    signals.handoff_changed.send(handoff)


def _return_to_centre_when_settled(handoff: Handoff, staff: Staff | None) -> None:
    """With no handoff still open, the case is the centre's again (引継中 → 対応中)."""
    ticket = handoff.ticket
    still_open = db.session.scalar(
        sa.select(sa.func.count(Handoff.id)).where(
            Handoff.ticket_id == ticket.id, Handoff.state.in_(ACTIVE_STATES)
        )
    )
    if not still_open and ticket.status == Status.HANDED_OFF:
        tickets.change_status(Actor(staff, trusted=True), ticket, Status.IN_PROGRESS, internal=True)


# --- the centre's steps ------------------------------------------------------------------------


def cancel(actor: Actor, handoff: Handoff, reason: str) -> None:
    actor.require(*DESK_ROLES)
    reason = clean_text(reason, "取消の理由", MAX_RECORD, required=True)
    _move(_lock(handoff), HandoffState.CANCELLED)
    _touch(handoff, utcnow())
    for link in _links(handoff):
        link.revoked_at = link.revoked_at or utcnow()
    _entry(handoff, actor.staff, f"{handoff.department.name}への引継ぎを取り消しました\n{reason}")
    _return_to_centre_when_settled(handoff, actor.staff)
    signals.handoff_changed.send(handoff)


def add_information(actor: Actor, handoff: Handoff, text: str) -> None:
    """The centre adds what it learned; the officer who accepted gets an email."""
    actor.require(*DESK_ROLES)
    if not handoff.is_active:
        raise InvalidTransition("終了した引継ぎには追加情報を送れません。")
    text = clean_text(text, "追加情報", MAX_SUMMARY, required=True)
    _touch(handoff, utcnow())
    _entry(handoff, actor.staff, f"{handoff.department.name}へ追加情報\n{text}", info=True)
    recipient = None
    if handoff.accepted_by is not None and handoff.accepted_by.email:
        recipient = handoff.accepted_by.email
    elif handoff.department.email:
        recipient = handoff.department.email
    if recipient:
        base = urls.base_url()
        mail.enqueue_mail(
            to=recipient,
            subject=f"【追加情報】相談番号 {handoff.ticket.number}",
            text=(
                "市民相談センターから、引継ぎ中の相談に追加情報があります。\n\n"
                f"{text}\n\n{base}/handoffs/{handoff.id}\n"
            ),
            ticket=handoff.ticket,
        )
    signals.handoff_changed.send(handoff)


# --- external bodies: signed, expiring, revocable links ----------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    """The external link's signature: the app's secret on one server; the relay key when the
    relay and the core are split (the page is the relay's, which never holds the core's
    secret: handoff.transfer)."""
    from consult.transfer.services import role, settings

    secret = current_app.config["SECRET_KEY"] if role() == "all" else settings().key
    return URLSafeTimedSerializer(secret, salt="handoff-external-link")


def issue_link(handoff: Handoff) -> str:
    days = HandoffSettings.current().link_days
    nonce = secrets.token_urlsafe(24)
    link = ExternalLink(handoff=handoff, nonce=nonce, expires_at=utcnow() + timedelta(days=days))
    db.session.add(link)
    return _serializer().dumps({"h": handoff.id, "n": nonce})


def _links(handoff: Handoff) -> list[ExternalLink]:
    return list(db.session.scalars(sa.select(ExternalLink).where(ExternalLink.handoff == handoff)))


def revoke_links(actor: Actor, handoff: Handoff) -> int:
    actor.require(*DESK_ROLES)
    count = 0
    for link in _links(handoff):
        if link.revoked_at is None:
            link.revoked_at = utcnow()
            count += 1
    _entry(handoff, actor.staff, f"{handoff.department.name}への外部リンクを無効にしました")
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
    _entry(handoff, actor.staff, f"{handoff.department.name}へ外部リンクを再発行しました")


class LinkRefused(Exception):
    """The link cannot be used; the page says so and shows nothing of the case."""


def read_link(token: str) -> dict:
    """The link's handoff id and nonce ("h", "n"), if its signature holds and it is not older
    than the links live; LinkRefused otherwise."""
    max_age = HandoffSettings.current().link_days * 86400
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkRefused("expired") from exc
    except BadSignature as exc:
        raise LinkRefused("invalid") from exc
    if not isinstance(payload, dict):
        raise LinkRefused("invalid")
    return payload


def open_link(token: str, address: str | None) -> Handoff:
    """Check a link: signature, expiry (ours, in the database), revocation. Audits each use."""
    payload = read_link(token)
    link = db.session.scalar(sa.select(ExternalLink).where(ExternalLink.nonce == payload.get("n")))
    if link is None or link.handoff_id != payload.get("h"):
        raise LinkRefused("invalid")
    now = utcnow()
    if link.revoked_at is not None:
        raise LinkRefused("revoked")
    if link.expires_at <= now:
        raise LinkRefused("expired")
    link.uses += 1
    link.last_used_at = now
    audit.record(
        Actor(None, address, trusted=True), "external_link_use", "handoff", link.handoff_id
    )
    return link.handoff


def external_contact(handoff: Handoff, address: str | None) -> dict | None:
    """What an external body asked to call back sees: the 相談番号 and the citizen's phone
    numbers, as an internal officer does, while the request is open; each view is audited.

    Only the responses that need contact (CONTACT_RESPONSES, shared when the handoff was made);
    not the name or the mail address (a call needs neither). The audit row says who (the
    external body, by department id), from where and what (field names), never the values.
    """
    if handoff.response not in CONTACT_RESPONSES or not handoff.share_contact:
        return None
    if not handoff.is_active:
        return None
    citizen = handoff.ticket.citizen
    # 支援措置: never to an external body; it calls the centre instead.
    shown = citizen is not None and not citizen.protected
    phones = [p.number for p in citizen.phones] if shown else []
    audit.record(
        Actor(None, address, trusted=True),
        "external_view_contact",
        "handoff",
        handoff.id,
        f"department:{handoff.department_id} number,phones",
    )
    return {"number": handoff.ticket.number, "phones": phones}


def finish_external(handoff: Handoff, record: Record, author_name: str) -> None:
    """An external body answers in one go: taking the request and recording what it did."""
    author_name = clean_text(author_name, "ご担当者名", 120, required=True)
    full_name = f"{handoff.department.name} {author_name}"
    if handoff.state == HandoffState.REQUESTED:
        _move(handoff, HandoffState.ACCEPTED)
        handoff.accepted_at = utcnow()
        handoff.accepted_by_name = full_name
    _finish(handoff, None, record, author_name=full_name)


def decline_external(handoff: Handoff, reason: str) -> None:
    _decline(handoff, None, reason)


# --- lists -------------------------------------------------------------------------------------

INBOX_TABS = {
    "new": "新着",
    "accepted": "対応中",
    "overdue": "期限超過",
    "done": "完了",
}


def inbox(actor: Actor, tab: str, *, before_id: int | None = None, limit: int = 50):
    """An officer's department inbox (a desk member may look at any department's)."""
    staff = actor.require(Role.OFFICER, *DESK_ROLES)
    query = sa.select(Handoff)
    if staff is not None and staff.role == Role.OFFICER:
        query = query.where(Handoff.department_id == staff.department_id)
    now = utcnow()
    if tab == "new":
        query = query.where(Handoff.state == HandoffState.REQUESTED)
    elif tab == "accepted":
        query = query.where(
            Handoff.state.in_(
                (HandoffState.ACCEPTED, HandoffState.ON_THE_WAY, HandoffState.ARRIVED)
            )
        )
    elif tab == "overdue":
        query = query.where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < now)
    elif tab == "done":
        query = query.where(Handoff.state.in_((HandoffState.DONE, HandoffState.DECLINED)))
    else:
        raise NotFound("一覧が見つかりません。")
    if before_id:
        query = query.where(Handoff.id < before_id)
    query = query.order_by(Handoff.id.desc()).limit(limit + 1)
    rows = list(
        db.session.scalars(
            query.options(
                sa.orm.selectinload(Handoff.ticket).selectinload(Ticket.assignee),
                sa.orm.selectinload(Handoff.department),
                sa.orm.selectinload(Handoff.created_by),
            )
        )
    )
    more = len(rows) > limit
    return rows[:limit], (rows[limit - 1].id if more else None)


def inbox_counts(actor: Actor) -> dict[str, int]:
    staff = actor.require(Role.OFFICER, *DESK_ROLES)
    base = sa.select(sa.func.count(Handoff.id))
    if staff is not None and staff.role == Role.OFFICER:
        base = base.where(Handoff.department_id == staff.department_id)
    now = utcnow()
    return {
        "new": db.session.scalar(base.where(Handoff.state == HandoffState.REQUESTED)),
        "overdue": db.session.scalar(
            base.where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < now)
        ),
    }


@dataclass(frozen=True)
class WhereToGo:
    """Where an officer asked to come (来庁して対応) goes: the room of the counter visit, the
    reception number the citizen is called by, and the consultant's display name (表示名)."""

    room: int | None
    reception_number: int | None
    consultant: str | None


def _consultant_of(handoff: Handoff) -> Staff | None:
    return handoff.ticket.assignee or handoff.created_by


def where_to_go(handoffs: list[Handoff]) -> dict[int, WhereToGo]:
    """{handoff id: WhereToGo} for the come-to-counter handoffs among these, in one lookup.

    The visit comes through the plugin contract (the counter's `visit_lookup`), so the handoff
    never imports the counter; a ticket with no visit (a phone call) still names the consultant.
    """
    visits = [h for h in handoffs if h.response == Response.VISIT]
    found = plugins.registry().visits([h.ticket for h in visits])
    places = {}
    for handoff in visits:
        info = found.get(handoff.ticket_id)
        consultant = _consultant_of(handoff)
        places[handoff.id] = WhereToGo(
            room=info.room if info else None,
            reception_number=info.reception_number if info else None,
            consultant=consultant.display_name if consultant else None,
        )
    return places


def for_ticket(ticket: Ticket) -> list[Handoff]:
    return list(
        db.session.scalars(
            sa.select(Handoff)
            .where(Handoff.ticket_id == ticket.id)
            .order_by(Handoff.id)
            .options(sa.orm.selectinload(Handoff.department), sa.orm.selectinload(Handoff.session))
        )
    )


def live_states(ticket_ids: list[int]) -> dict[int, list[Handoff]]:
    """The open handoffs of the tickets on a page (the consultant's queue polls this)."""
    if not ticket_ids:
        return {}
    rows = db.session.scalars(
        sa.select(Handoff)
        .where(Handoff.ticket_id.in_(ticket_ids), Handoff.state.in_(ACTIVE_STATES))
        .order_by(Handoff.id)
        .options(sa.orm.selectinload(Handoff.department))
    )
    found: dict[int, list[Handoff]] = {}
    for handoff in rows:
        found.setdefault(handoff.ticket_id, []).append(handoff)
    return found


def citizen_expectation(handoff: Handoff) -> str:
    """What the counter tells the citizen about when the department will answer."""
    return calendar.expected_answer_text(handoff.due_at)


# --- escalation (the worker) -------------------------------------------------------------------


def escalate_due(now: datetime | None = None) -> int:
    """Alert the supervisors and the department's other officers about handoffs nobody took."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            sa.select(Handoff)
            .where(
                Handoff.state == HandoffState.REQUESTED,
                Handoff.accept_by <= now,
                Handoff.escalated_at.is_(None),
            )
            .limit(200)
        )
    )
    for handoff in due:
        # Conditional update: two workers never alert twice.
        claimed = db.session.execute(
            sa.update(Handoff)
            .where(Handoff.id == handoff.id, Handoff.escalated_at.is_(None))
            .values(escalated_at=now)
        ).rowcount
        if not claimed:
            continue
        db.session.refresh(handoff)
        recipients = db.session.scalars(
            sa.select(Staff).where(
                Staff.active.is_(True),
                Staff.email.is_not(None),
                sa.or_(
                    Staff.role == Role.SUPERVISOR,
                    sa.and_(
                        Staff.role == Role.OFFICER, Staff.department_id == handoff.department_id
                    ),
                ),
            )
        )
        addresses = sorted({staff.email for staff in recipients})
        if handoff.department.email and handoff.department.email not in addresses:
            addresses.append(handoff.department.email)  # the department's shared mailbox
        base = urls.base_url()
        for address in addresses:
            mail.enqueue_mail(
                to=address,
                subject=f"【未受付】{handoff.department.name}への引継ぎ（{handoff.ticket.number}）",
                text=(
                    f"{handoff.department.name}への引継ぎ（{handoff.response_label}・"
                    f"{handoff.urgency_label}）が、受付期限 "
                    f"{format_tokyo(handoff.accept_by, with_weekday=True)} を過ぎても"
                    "受け付けられていません。\n\n"
                    f"{base}/handoffs/{handoff.id}\n"
                ),
                ticket=handoff.ticket,
            )
        _entry(
            handoff,
            None,
            f"{handoff.department.name}が受付期限までに受け付けていません（通知済み）",
            escalated=True,
        )
        signals.handoff_changed.send(handoff)
    db.session.flush()  # the worker commits the round (consult.worker)
    return len(due)


# --- the supervisor's overview -----------------------------------------------------------------


@dataclass
class DepartmentFigures:
    department: str
    handoffs: int = 0
    overdue_now: int = 0
    bounces: int = 0
    median_accept_minutes: float | None = None
    median_arrive_minutes: float | None = None


def _median(buckets: list[tuple[int, int]]) -> float:
    """The middle value (or the mean of the two middle values) of a (value, count) histogram."""
    buckets.sort()
    total = sum(count for _, count in buckets)
    wanted = {(total - 1) // 2, total // 2}  # zero-based positions of the middle value(s)
    found, seen = [], 0
    for value, count in buckets:
        found += [value for position in wanted if seen <= position < seen + count]
        seen += count
    return round(sum(found) / len(found), 1)


def overdue_now(actor: Actor, limit: int = 100) -> list[Handoff]:
    actor.require(Role.SUPERVISOR, Role.ADMIN)
    return list(
        db.session.scalars(
            sa.select(Handoff)
            .where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < utcnow())
            .order_by(Handoff.due_at)
            .limit(limit)
            .options(sa.orm.selectinload(Handoff.ticket), sa.orm.selectinload(Handoff.department))
        )
    )


def overview(actor: Actor, start: datetime, end: datetime) -> list[DepartmentFigures]:
    """Per department for a period: handoffs, overdue now, bounces, median minutes."""
    actor.require(Role.SUPERVISOR, Role.ADMIN)
    return department_figures(start, end)


def department_figures(start: datetime, end: datetime) -> list[DepartmentFigures]:
    """The figures of the handoffs requested in [start, end): the whole Japanese days from the
    rollup (handoff.rollup; a year is as quick as a month), part-days at the ends from the rows.
    Overdue-now is a live count."""
    return _figures(rollup.tallies(start, end))


def _department_figures_from_rows(start: datetime, end: datetime) -> list[DepartmentFigures]:
    """The same figures counted from the handoffs alone (what the rollup must always equal)."""
    return _figures(rollup.from_rows(start, end))


def _figures(tallies: dict[int, rollup.Tally]) -> list[DepartmentFigures]:
    names = dict(db.session.execute(sa.select(Department.id, Department.name)).all())
    figures: dict[int, DepartmentFigures] = {}
    for department_id, tally in tallies.items():
        if tally.created <= 0:
            continue
        figures[department_id] = DepartmentFigures(
            names[department_id],
            tally.created,
            0,
            tally.declined,
            _median(list((+tally.accepted).items())) if +tally.accepted else None,
            _median(list((+tally.arrived).items())) if +tally.arrived else None,
        )
    overdue = db.session.execute(
        sa.select(Handoff.department_id, sa.func.count(Handoff.id))
        .where(Handoff.state.in_(ACTIVE_STATES), Handoff.due_at < utcnow())
        .group_by(Handoff.department_id)
    )
    for department_id, count in overdue:
        figures.setdefault(
            department_id, DepartmentFigures(names[department_id])
        ).overdue_now = count
    return sorted(figures.values(), key=lambda f: (-f.overdue_now, -f.handoffs, f.department))


def case_records(ticket: Ticket) -> list[plugins.CaseRecord]:
    """The 対応記録 of a ticket's finished handoffs, for an FAQ draft (consult's registry)."""
    records = []
    for handoff in for_ticket(ticket):
        if handoff.state != HandoffState.DONE:
            continue
        lines = [
            f"【{handoff.department.name}の対応】",
            f"対応内容：{handoff.record_action}",
            f"結果：{handoff.record_outcome}",
        ]
        if handoff.record_follow_up:
            lines.append(f"今後の対応：{handoff.record_follow_up}")
        records.append(
            plugins.CaseRecord(
                f"handoff:{handoff.id}",
                "\n".join(lines),
                handoff.department_id,
                label=f"{handoff.department.name}の対応記録",
            )
        )
    return records


def seed_demo(members: dict) -> None:
    """Demo handoffs on the demo centre's open tickets: one new, one on the way, one done."""
    shimin = db.session.scalar(sa.select(Department).where(Department.code == "shimin"))
    kokuho = db.session.scalar(sa.select(Department).where(Department.code == "kokuho"))
    if shimin is None or kokuho is None:
        return
    open_tickets = list(
        db.session.scalars(
            sa.select(Ticket)
            .where(Ticket.is_open.is_(True))
            .order_by(Ticket.last_activity_at.desc())
            .limit(3)
        )
    )
    if len(open_tickets) < 3:
        return
    desk = Actor(members["yamada"], "seed")
    create(
        desk,
        open_tickets[0],
        [Request(shimin.id, "転入届の記載内容を窓口で一緒に確認してください。", Response.VISIT)],
    )
    [coming] = create(
        desk,
        open_tickets[1],
        [
            Request(
                kokuho.id,
                "退職による収入減で保険料の減免を希望。離職票の写しは持参済み。",
                Response.VISIT,
                Urgency.URGENT,
            )
        ],
    )
    officer = Actor(members["takahashi"], "seed")
    accept(officer, coming)
    on_the_way(officer, coming, 5)
    [done] = create(
        desk,
        open_tickets[2],
        [
            Request(
                shimin.id,
                "住民票の写しの請求方法を折り返し電話で説明してください。",
                Response.CALLBACK,
            )
        ],
    )
    suzuki = Actor(members["suzuki"], "seed")
    accept(suzuki, done)
    finish(
        suzuki,
        done,
        Record("請求方法と必要書類を電話で説明した", "相談者が明日来庁して請求する"),
    )


# --- requests to the city (市への要望・市長への手紙) ---------------------------------------


def name_request_department(handoff: Handoff, **_kwargs) -> None:
    """The handoff-changed receiver: the first department a request or letter is handed to
    (and that does not send it back) is the one responsible for its written answer."""
    from consult.voice import services as voice

    if handoff.ticket is None or handoff.department is None or handoff.department.is_external:
        return
    item = voice.request_for(handoff.ticket)
    if item is None:
        return
    if handoff.state in (HandoffState.DECLINED, HandoffState.CANCELLED):
        if item.handoff_id == handoff.id:
            item.department_id = None
            item.handoff_id = None
        return
    voice.set_department(item, handoff.department_id, handoff.id)


def name_marked_request_department(item, **_kwargs) -> None:
    """The citizen-request-marked receiver: a case registered after it was handed on takes
    the department of its first live handoff, as if the handoff had come after."""
    first = db.session.scalar(
        sa.select(Handoff)
        .join(Department, Handoff.department_id == Department.id)
        .where(
            Handoff.ticket_id == item.ticket_id,
            Handoff.state.not_in((HandoffState.DECLINED, HandoffState.CANCELLED)),
            Department.is_external.is_(False),
        )
        .order_by(Handoff.created_at, Handoff.id)
        .limit(1)
    )
    if first is not None:
        from consult.voice import services as voice

        voice.set_department(item, first.department_id, first.id)
