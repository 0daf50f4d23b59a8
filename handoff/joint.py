"""Joint sessions (合同相談): hearing a case together instead of relaying it.

Imabari's project team found that passing a case on to an external body distorts it. From a
handoff whose wanted response is 合同オンライン相談, the consultant sets a time both sides can
make, by video (the centre's meeting link, from the administrator's URL template: madoguchi
does not run video) or at the centre's counter. The invitee receives an iCalendar invitation
by mail (with the signed external link for an external body, the handoff page for a
department), answers 参加します or asks for another time, and every step is on the ticket's
timeline. A change sends the invitation again with a higher SEQUENCE; a cancellation sends
METHOD:CANCEL, so the invitee's calendar follows.

The invitation carries the ticket number, the time and the place or link; never the citizen's
name or the case's text (the summary is behind the link, as for every handoff).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from icalendar import Calendar, Event, vCalAddress

from consult import signals
from consult.extensions import db
from consult.services import audit, calendar, mail, meeting
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import InvalidTransition, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import format_tokyo, to_tokyo, utcnow
from handoff import notifications
from handoff.models import (
    SESSION_MINUTES,
    Handoff,
    JointSession,
    Response,
    SessionAnswer,
    SessionMode,
)
from handoff.services.access import require_officer
from handoff.services.common import add_entry, touch
from handoff.services.external import issue_link
from handoff.settings import HandoffSettings

MAX_NOTE = 2000
PRODID = "-//madoguchi//joint-session//JA"


def video_available() -> bool:
    return bool(HandoffSettings.current().joint_meeting_url)


def span_text(session: JointSession) -> str:
    """「2026/12/05(土) 14:00〜15:00」"""
    return (
        f"{format_tokyo(session.starts_at, with_weekday=True)}〜{to_tokyo(session.ends_at):%H:%M}"
    )


def _check_time(mode: SessionMode, starts_at: datetime, ends_at: datetime) -> None:
    if starts_at <= utcnow():
        raise ValidationFailed("合同相談の日時は、現在より後の日時を指定してください。")
    if mode is SessionMode.COUNTER:
        day = calendar.to_tokyo_date(starts_at)
        hours = calendar.centre_hours(day)
        start, end = to_tokyo(starts_at), to_tokyo(ends_at)
        if (
            hours is None
            or end.date() != day
            or start.time() < hours.opens
            or end.time() > hours.closes
        ):
            raise ValidationFailed(
                f"窓口での合同相談はセンターの開庁時間内に設定してください"
                f"（{calendar.hours_text(day)}）。"
            )


def schedule(
    actor: Actor, handoff: Handoff, *, starts_at: datetime, minutes: int, mode: SessionMode
) -> JointSession:
    """Set (or move) the joint session of a handoff and send the invitation."""
    actor.require(*DESK_ROLES)
    if handoff.response is not Response.JOINT:
        raise InvalidTransition(
            "合同相談は、求める対応が「合同オンライン相談」の引継ぎで設定できます。"
        )
    if not handoff.is_active:
        raise InvalidTransition("終了した引継ぎには合同相談を設定できません。")
    if minutes not in SESSION_MINUTES:
        raise ValidationFailed("所要時間を一覧から選んでください。")
    ends_at = starts_at + timedelta(minutes=minutes)
    _check_time(mode, starts_at, ends_at)
    template = HandoffSettings.current().joint_meeting_url
    if mode is SessionMode.VIDEO and not template:
        raise ValidationFailed(
            "ビデオ会議のURLのひな形が設定されていないため、オンラインの合同相談は設定できません。"
            "窓口での合同相談を選ぶか、管理者に設定を依頼してください。"
        )
    session = handoff.session
    moved = session is not None and session.is_live
    if session is None:
        session = JointSession(
            handoff=handoff,
            code=meeting.new_code(),
            uid=f"joint-{secrets.token_hex(12)}@{mail.settings()['MAIL_DOMAIN']}",
            sequence=0,
            created_by_id=actor.staff_id,
        )
        db.session.add(session)
    else:
        session.sequence += 1
    session.starts_at, session.ends_at, session.mode = starts_at, ends_at, mode
    session.meeting_url = (
        meeting.link(template, session.code) if mode is SessionMode.VIDEO else None
    )
    session.answer = SessionAnswer.PENDING
    session.answer_note = session.answered_by_name = session.answered_at = None
    session.cancelled_at = None
    session.updated_at = utcnow()
    # The handoff is answered by the session: its due time (and what the citizen is told) is
    # the session's end, whether that is before or after the default of a business day.
    handoff.due_at = ends_at
    db.session.flush()
    verb = "変更" if moved else "設定"
    add_entry(
        handoff,
        actor.staff,
        f"{handoff.department.name}との合同相談を{verb}：{span_text(session)}（{session.mode_label}）",
        joint_session=session.id,
    )
    _send(handoff, session, "REQUEST")
    audit.record(actor, f"joint_session_{'moved' if moved else 'set'}", "handoff", handoff.id)
    _changed(handoff)
    return session


def cancel(actor: Actor, handoff: Handoff) -> JointSession:
    actor.require(*DESK_ROLES)
    session = handoff.session
    if session is None or not session.is_live:
        raise InvalidTransition("取り消す合同相談はありません。")
    session.cancelled_at = session.updated_at = utcnow()
    session.sequence += 1
    add_entry(
        handoff,
        actor.staff,
        f"{handoff.department.name}との合同相談（{span_text(session)}）を取り消しました",
        joint_session=session.id,
    )
    _send(handoff, session, "CANCEL")
    _changed(handoff)
    return session


def answer(
    handoff: Handoff,
    *,
    accepted: bool,
    note: str | None,
    by_name: str,
    actor: Actor | None = None,
) -> JointSession:
    """The invitee's answer: from the officer's handoff page (`actor`), or from the external
    link's page (no actor: the link was checked by `services.external.open_link`)."""
    if actor is not None:
        require_officer(actor, handoff)
    session = handoff.session
    if session is None or not session.is_live or not handoff.is_active:
        raise InvalidTransition("回答できる合同相談はありません。")
    text = clean_text(note or "", "希望の日時など", MAX_NOTE, required=not accepted)
    by_name = clean_text(by_name or "", "お名前", 120, required=True)
    session.answer = SessionAnswer.ACCEPTED if accepted else SessionAnswer.OTHER_TIME
    session.answer_note = text or None
    session.answered_by_name = by_name
    session.answered_at = session.updated_at = utcnow()
    body = (
        f"{handoff.department.name}（{by_name}）：合同相談（{span_text(session)}）に参加します"
        if accepted
        else f"{handoff.department.name}（{by_name}）：合同相談の別の日時を希望\n{text}"
    )
    add_entry(handoff, actor.staff if actor else None, body, joint_session=session.id)
    _changed(handoff)
    return session


def _changed(handoff: Handoff) -> None:
    touch(handoff, utcnow())
    signals.handoff_changed.send(handoff)


# --- the invitation ----------------------------------------------------------------------------


def _location(session: JointSession) -> str:
    centre = current_app.config["MADOGUCHI"]["CENTRE_NAME"]
    if session.mode is SessionMode.VIDEO:
        return session.meeting_url or ""
    return f"{centre}（窓口）"


def invitation(
    handoff: Handoff, session: JointSession, method: str = "REQUEST", stamp: datetime | None = None
) -> str:
    """RFC 5546: REQUEST for a new or moved session, CANCEL for a cancelled one. `stamp` (the
    DTSTAMP) is now unless given (the relay's copy: the session's last change, so the copy
    changes only when the session does)."""
    settings = current_app.config["MADOGUCHI"]
    organizer = vCalAddress.new(settings["MAIL_FROM"], cn=settings["CENTRE_NAME"])
    attendees = []
    if handoff.department.email:
        attendees.append(
            vCalAddress.new(handoff.department.email, cn=handoff.department.name, rsvp=False)
        )
    event = Event.new(
        uid=session.uid,
        sequence=session.sequence,
        stamp=stamp or utcnow(),
        start=to_tokyo(session.starts_at),
        end=to_tokyo(session.ends_at),
        summary=f"合同相談（相談番号 {handoff.ticket.number}）",
        location=_location(session),
        organizer=organizer,
        attendees=attendees,
        status="CANCELLED" if method == "CANCEL" else "CONFIRMED",
        description=(
            f"{settings['CENTRE_NAME']}と{handoff.department.name}の合同相談です。"
            "ご相談の内容は、依頼のメールのリンクからご確認ください。"
        ),
    )
    if session.meeting_url:
        event.add("url", session.meeting_url)
    cal = Calendar.new(method=method, prodid=PRODID)
    cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")


def _send(handoff: Handoff, session: JointSession, method: str) -> None:
    department = handoff.department
    if not department.email:
        return  # the centre phones them; the panel says no address is on file
    if department.is_external:
        link = notifications.external_link(issue_link(handoff))
    else:
        link = notifications.page_link(handoff)
    where = (
        f"オンライン（ビデオ会議）：{session.meeting_url}"
        if session.mode is SessionMode.VIDEO
        else f"{_location(session)}にお越しください"
    )
    notifications.joint_session(
        handoff,
        session,
        method=method,
        when=span_text(session),
        where=where,
        link=link,
        invitation=invitation(handoff, session, method),
    )
