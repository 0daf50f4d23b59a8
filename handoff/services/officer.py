"""The department officer's steps: accept, on the way, arrived, the 対応記録, or send it back.

An officer acts only on their own department's handoffs; the row is re-read under a write lock
first, so two officers cannot both take the same one."""

from __future__ import annotations

from dataclasses import dataclass

from consult import signals
from consult.models import Staff
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import utcnow
from handoff.models import Handoff, HandoffState, Response
from handoff.services.access import require_officer
from handoff.services.common import (
    MAX_ETA_MINUTES,
    MAX_RECORD,
    add_entry,
    lock,
    move,
    return_to_centre_when_settled,
    touch,
)


def accept(actor: Actor, handoff: Handoff) -> None:
    staff = require_officer(actor, lock(handoff))
    move(handoff, HandoffState.ACCEPTED)
    now = utcnow()
    handoff.accepted_by = staff
    handoff.accepted_by_name = staff.full_name if staff else handoff.department.name
    handoff.accepted_at = now
    touch(handoff, now)
    add_entry(
        handoff, staff, f"{handoff.department.name}が受け付けました（{handoff.accepted_by_name}）"
    )
    signals.handoff_changed.send(handoff)


def on_the_way(actor: Actor, handoff: Handoff, eta_minutes: int | None) -> None:
    staff = require_officer(actor, lock(handoff))
    if handoff.response != Response.VISIT:
        raise InvalidTransition("「向かっています」は来庁して対応する引継ぎだけで使えます。")
    if eta_minutes is None or not 1 <= eta_minutes <= MAX_ETA_MINUTES:
        raise ValidationFailed(f"到着までの時間は1〜{MAX_ETA_MINUTES}分で入力してください。")
    if handoff.state == HandoffState.REQUESTED:
        accept(actor, handoff)
    move(handoff, HandoffState.ON_THE_WAY)
    now = utcnow()
    handoff.eta_minutes = eta_minutes
    handoff.on_the_way_at = now
    touch(handoff, now)
    add_entry(
        handoff, staff, f"{handoff.department.name}の職員が向かっています（約{eta_minutes}分）"
    )
    signals.handoff_changed.send(handoff)


def arrive(actor: Actor, handoff: Handoff) -> None:
    staff = require_officer(actor, lock(handoff))
    move(handoff, HandoffState.ARRIVED)
    now = utcnow()
    handoff.arrived_at = now
    touch(handoff, now)
    add_entry(handoff, staff, f"{handoff.department.name}の職員が窓口に到着しました")
    signals.handoff_changed.send(handoff)


@dataclass(frozen=True)
class Record:
    action: str
    outcome: str
    follow_up: str = ""
    follow_up_by: str = ""


def finish(actor: Actor, handoff: Handoff, record: Record) -> None:
    staff = require_officer(actor, lock(handoff))
    complete(handoff, staff, record, author_name=None)


def complete(
    handoff: Handoff, staff: Staff | None, record: Record, author_name: str | None
) -> None:
    """Record the 対応記録 and close the handoff, once who may was checked (an officer here, an
    external body through its link: handoff.services.external)."""
    action = clean_text(record.action, "対応内容", MAX_RECORD, required=True)
    outcome = clean_text(record.outcome, "結果", MAX_RECORD, required=True)
    follow_up = clean_text(record.follow_up, "今後の対応", MAX_RECORD)
    follow_up_by = clean_text(record.follow_up_by, "今後の対応の担当", 120)
    if follow_up and not follow_up_by:
        raise ValidationFailed("今後の対応がある場合は、誰が対応するかを入力してください。")
    move(handoff, HandoffState.DONE)
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
    touch(handoff, now)
    lines = [f"{handoff.department.name}の対応記録", f"対応内容：{action}", f"結果：{outcome}"]
    if follow_up:
        lines.append(f"今後の対応：{follow_up}（{follow_up_by}）")
    add_entry(handoff, staff, "\n".join(lines), record=True, by=author_name)
    return_to_centre_when_settled(handoff, staff)
    signals.handoff_changed.send(handoff)


def decline(actor: Actor, handoff: Handoff, reason: str) -> None:
    staff = require_officer(actor, lock(handoff))
    send_back(handoff, staff, reason)


def send_back(handoff: Handoff, staff: Staff | None, reason: str) -> None:
    """Send the handoff back with a reason (a bounce), once who may was checked."""
    reason = clean_text(reason, "差し戻しの理由", MAX_RECORD, required=True)
    move(handoff, HandoffState.DECLINED)
    now = utcnow()
    handoff.declined_at = now
    handoff.decline_reason = reason
    touch(handoff, now)
    add_entry(handoff, staff, f"{handoff.department.name}から差し戻されました\n理由：{reason}")
    return_to_centre_when_settled(handoff, staff)
    signals.handoff_changed.send(handoff)
