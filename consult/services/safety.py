"""Staff safety (カスハラ): help alerts, incident records, long sessions, repeated demands.

The centre's rule, from Iwamizawa and Chikuma: nobody at the counter is left alone with an
abusive citizen. The help button reaches every signed-in support-room member and supervisor
within seconds (the live channel tells their pages, which read `live_feed`), and by email through
the outbox; their answers (向かいます, 到着) go on the ticket's timeline, so the record shows that
several people handled it. An alert no one answers in time is escalated (`escalate_alerts`).

Incident records are sensitive about the staff as much as the citizen: only supervisors, the
support room and administrators read them. Any desk member may file one, also after the fact.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from consult import signals
from consult.extensions import db
from consult.models import (
    AlertDevice,
    AlertResponseKind,
    CentreSetting,
    Channel,
    EntryKind,
    FollowUp,
    HelpAlert,
    HelpResponse,
    Incident,
    IncidentCategory,
    IncidentCategoryMark,
    IncidentStaff,
    LongSessionAlert,
    Role,
    Staff,
    Ticket,
)
from consult.services import audit, ratelimit, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import DomainError, NotFound, ValidationFailed
from consult.timeutil import format_tokyo, utcnow
from consult.urls import public_url

# Who is told of a help alert, and who may answer it.
RESPONDER_ROLES = (Role.SUPPORT, Role.SUPERVISOR)
# Who may read incident records (never consultants or officers).
INCIDENT_READERS = (Role.SUPERVISOR, Role.SUPPORT, Role.ADMIN)
# Who may file one (the admin is not at the counter).
INCIDENT_REPORTERS = (Role.CONSULTANT, Role.SUPERVISOR, Role.SUPPORT)

PLACES = {
    "room1": "相談室1",
    "room2": "相談室2",
    "room3": "相談室3",
    "counter": "受付カウンター",
    "phone": "電話対応中",
    "other": "その他",
}
# A second press within this time (double click, Alt+H twice) is the same alert.
REPEAT_PRESS = timedelta(seconds=60)
MAX_DESCRIPTION = 10_000

# --- settings ----------------------------------------------------------------------------------

DEFAULT_RECORDING_POLICY = (
    "当センターでは、相談内容の正確な記録と職員の安全のため、窓口および電話での会話を"
    "録音しています。あらかじめご了承ください。"
)


@dataclass(frozen=True)
class SettingSpec:
    label: str
    default: str
    kind: str  # "minutes" (comma separated), "int", "text", "emails"
    hint: str = ""


SETTINGS: dict[str, SettingSpec] = {
    "long_session_minutes": SettingSpec(
        "長時間対応の通知（分）", "30,60", "minutes", "カンマ区切りで複数指定できます（例：30,60）"
    ),
    "repeat_contacts": SettingSpec(
        "繰り返し要求の判定（件数）", "3", "int", "この件数を超えた相談を表示します"
    ),
    "repeat_days": SettingSpec("繰り返し要求の判定（日数）", "30", "int", "さかのぼる日数"),
    "alert_mail_to": SettingSpec(
        "応援要請の通知先メールアドレス",
        "anshin-support@example.lg.jp",
        "emails",
        "安心対応サポート室・センター責任者の共有アドレス（カンマ区切り）",
    ),
    "recording_policy": SettingSpec(
        "録音についてのお知らせ（窓口に表示）", DEFAULT_RECORDING_POLICY, "text"
    ),
}


def get_setting(key: str) -> str:
    row = db.session.get(CentreSetting, key)
    return row.value if row else SETTINGS[key].default


def _parse(key: str, raw: str) -> str:
    spec = SETTINGS[key]
    value = (raw or "").strip()
    if spec.kind == "minutes":
        parts = [p.strip() for p in value.replace("、", ",").split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 1 <= int(p) <= 1440 for p in parts):
            raise ValidationFailed(f"{spec.label}は1〜1440の数をカンマ区切りで入力してください。")
        return ",".join(str(m) for m in sorted({int(p) for p in parts}))
    if spec.kind == "int":
        if not value.isdigit() or not 1 <= int(value) <= 3650:
            raise ValidationFailed(f"{spec.label}は1〜3650の数で入力してください。")
        return str(int(value))
    if spec.kind == "emails":
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all("@" in p and " " not in p and len(p) <= 254 for p in parts):
            raise ValidationFailed(
                f"{spec.label}にはメールアドレスをカンマ区切りで入力してください。"
            )
        return ",".join(parts)
    if not value:
        raise ValidationFailed(f"{spec.label}を入力してください。")
    if len(value) > 2000:
        raise ValidationFailed(f"{spec.label}は2,000文字以内で入力してください。")
    return value


def save_settings(actor: Actor, values: dict[str, str]) -> None:
    """Validate every value first, so a bad one changes nothing."""
    actor.require(Role.ADMIN)
    parsed = {key: _parse(key, values.get(key, "")) for key in SETTINGS}
    for key, value in parsed.items():
        row = db.session.get(CentreSetting, key)
        if row is None:
            db.session.add(CentreSetting(key=key, value=value, updated_by_id=actor.staff_id))
        elif row.value != value:
            row.value, row.updated_at, row.updated_by_id = value, utcnow(), actor.staff_id
    audit.record(actor, "update", "setting", None, "safety settings")


def long_session_thresholds() -> list[int]:
    return [int(m) for m in get_setting("long_session_minutes").split(",")]


# --- help alerts -------------------------------------------------------------------------------


def visit_place(ticket: Ticket | None) -> int | None:
    """The room of the ticket's visit in progress (a counter visit called or seated), or None.

    Asked through a signal: the counter channel knows its visits, the kernel does not.
    """
    if ticket is None or ticket.id is None:
        return None
    found: list[int] = []
    signals.visit_place_asked.send(ticket, found=found)
    return found[0] if found else None


def _place_of(ticket: Ticket | None, chosen: str | None) -> tuple[str, str]:
    """(place key, what the support room reads).

    The visit in progress wins over anything the page sent: a device's remembered choice is
    only for a phone call or when there is no visit, and then the alert says it was chosen.
    """
    room = visit_place(ticket)
    if room is not None:
        key = f"room{room}"
        return key, f"相談室{room}（受付中の相談 {ticket.number}）"
    if chosen not in PLACES:
        raise ValidationFailed("場所を選んでください。")
    if ticket is not None and ticket.channel == Channel.PHONE:
        return chosen, f"電話（端末で選択：{PLACES[chosen]}）"
    return chosen, f"{PLACES[chosen]}（端末で選択）"


def place_text(alert: HelpAlert) -> str:
    return alert.place_label or PLACES.get(alert.place, alert.place)


def raise_alert(actor: Actor, *, place: str | None, ticket: Ticket | None = None) -> HelpAlert:
    """The help button. One transaction: the alert, the timeline entry and the emails.

    A second press within REPEAT_PRESS returns the open alert. Two presses at the same moment
    (two tabs) both pass any "is there one?" read, so the guard is the unique `press_key`: one
    INSERT wins, the other fails on the key and returns the winner's alert.
    """
    staff = actor.require(*DESK_ROLES)
    key, label = _place_of(ticket, place)
    now = utcnow()
    # Presses older than the repeat window no longer hold the key (a new alert may be raised).
    db.session.execute(
        sa.update(HelpAlert)
        .where(
            HelpAlert.press_key == staff.id,
            sa.or_(HelpAlert.raised_at <= now - REPEAT_PRESS, HelpAlert.closed_at.is_not(None)),
        )
        .values(press_key=None)
        .execution_options(synchronize_session=False)
    )
    alert = HelpAlert(
        place=key,
        place_label=label,
        ticket=ticket,
        raised_by=staff,
        raised_at=now,
        press_key=staff.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(alert)
            db.session.flush()
    except IntegrityError:
        recent = db.session.scalar(sa.select(HelpAlert).where(HelpAlert.press_key == staff.id))
        if recent is not None:
            return recent
        raise
    if ticket is not None:
        tickets.add_entry(
            ticket,
            EntryKind.SAFETY,
            author=staff,
            body=f"応援要請：{label}",
            data={"alert": "raised", "alert_id": alert.id},
            at=now,
        )
    db.session.flush()
    _mail_alert(alert)
    signals.help_alert_changed.send(alert, action="raised")
    return alert


# --- one-button devices ------------------------------------------------------------------------
# Minato's counters have a button that calls the support room without a screen. Here it is any
# device that can send one HTTP request (a hardware button on the LAN, a work phone's shortcut):
# POST /alerts/device with its own token, registered by an administrator to a person and a place.

DEVICE_SCOPE = "alert-device"
# Wrong tokens from one address: a device that lost its token must not become a guessing tool.
DEVICE_FAILURES = 20
DEVICE_FAILURE_WINDOW = timedelta(minutes=10)
DEVICE_NAME_MAX = 80


class DeviceRefused(DomainError):
    """The press was not accepted; the message is what the device's log shows."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


def _device_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def device_staff_choices() -> list[Staff]:
    """Who a device may raise alerts for: the active desk staff (the button's holder)."""
    return [s for s in staff_choices() if s.role in DESK_ROLES]


def register_device(
    actor: Actor, *, name: str, staff_id: int, place: str
) -> tuple[AlertDevice, str]:
    """Register a device; answers it with its token, which is shown this once and never kept."""
    admin = actor.require(Role.ADMIN)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("端末の名前を入力してください。")
    if len(name) > DEVICE_NAME_MAX:
        raise ValidationFailed(f"端末の名前は{DEVICE_NAME_MAX}文字以内で入力してください。")
    if place not in PLACES:
        raise ValidationFailed("設置場所を一覧から選んでください。")
    holder = db.session.get(Staff, staff_id) if staff_id else None
    if holder is None or not holder.active or holder.role not in DESK_ROLES:
        raise ValidationFailed("端末を持つ職員を一覧から選んでください（相談員または責任者）。")
    token = "mdv_" + secrets.token_urlsafe(32)
    device = AlertDevice(
        name=name,
        staff=holder,
        place=place,
        token_hash=_device_digest(token),
        token_prefix=token[:12],
        created_by_id=admin.id if admin else None,
    )
    db.session.add(device)
    db.session.flush()
    audit.record(actor, "device_registered", "alert_device", device.id, f"place={place}")
    return device, token


def revoke_device(actor: Actor, device_id: int) -> AlertDevice:
    actor.require(Role.ADMIN)
    device = db.session.get(AlertDevice, device_id)
    if device is None:
        raise NotFound("その端末は登録されていません。")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        audit.record(actor, "device_revoked", "alert_device", device.id)
        db.session.flush()
    return device


def list_devices() -> list[AlertDevice]:
    return list(
        db.session.scalars(
            sa.select(AlertDevice)
            .options(selectinload(AlertDevice.staff))
            .order_by(AlertDevice.revoked_at.is_not(None), AlertDevice.id)
        )
    )


def press_device(token: str | None, address: str | None) -> HelpAlert:
    """A device's press: the alert as its holder, at its place, like the button on a page.

    A wrong or revoked token changes nothing but a counter per address: the token's 256 random
    bits are the guard against guessing, the counter keeps a misconfigured or hostile sender
    from flooding the database (after DEVICE_FAILURES it is told to wait).
    """
    device = (
        db.session.scalar(
            sa.select(AlertDevice).where(AlertDevice.token_hash == _device_digest(token))
        )
        if token
        else None
    )
    if device is None or device.revoked_at is not None:
        count = ratelimit.hit(DEVICE_SCOPE, address or "unknown", DEVICE_FAILURE_WINDOW)
        db.session.flush()
        if count.hits > DEVICE_FAILURES:
            raise DeviceRefused("失敗が続いたため、しばらく受け付けません。", status=429)
        raise DeviceRefused("端末の鍵が正しくないか、登録が取り消されています。")
    holder = device.staff
    if not holder.active or holder.role not in DESK_ROLES:
        raise DeviceRefused(
            "この端末の職員は現在、応援要請を出せません。管理者に連絡してください。", 403
        )
    device.last_used_at = utcnow()
    alert = raise_alert(Actor(holder, f"device:{device.id}"), place=device.place)
    audit.record(
        Actor(holder, address), "device_pressed", "alert_device", device.id, f"alert={alert.id}"
    )
    return alert


def _mail_alert(alert: HelpAlert, *, escalated: bool = False) -> None:
    """Staff-internal mail: the place, the ticket number and who asked; no citizen data."""

    from consult.services.mail import enqueue_mail

    where = place_text(alert)
    first = "応援要請がありました。至急向かってください。"
    if escalated:
        first = "応援要請にまだ誰も応答していません（エスカレーション）。至急向かってください。"
    lines = [
        first,
        "",
        f"場所：{where}",
        f"要請者：{alert.raised_by.full_name}",
        f"時刻：{format_tokyo(alert.raised_at, with_weekday=True)}",
    ]
    if alert.ticket is not None:
        lines.append(f"相談番号：{alert.ticket.number}")
        lines.append(public_url("desk.ticket", number=alert.ticket.number))
    lines += ["", "madoguchi の画面で「向かいます」「到着」を押してください。"]
    subject = f"【応援要請・未応答】{where}" if escalated else f"【応援要請】{where}"
    for address in get_setting("alert_mail_to").split(","):
        enqueue_mail(
            to=address,
            subject=subject,
            text="\n".join(lines),
            ticket=alert.ticket,
            extra_headers={
                "X-Madoguchi-Internal": "help-alert-escalated" if escalated else "help-alert"
            },
        )


def escalate_alerts(now: datetime | None = None) -> int:
    """Worker task (alerts lane): open alerts no one answered in time go to everyone, louder.

    Each is taken with one conditional UPDATE (escalated_at IS NULL and still no 向かいます), so
    two workers, or two rounds, escalate an alert once: one mail, one timeline entry.
    """
    from consult.config import SafetySettings

    now = now or utcnow()
    delay = timedelta(seconds=SafetySettings.current().alert_escalate_seconds)
    answered = sa.select(HelpResponse.id).where(HelpResponse.alert_id == HelpAlert.id).exists()
    due = list(
        db.session.scalars(
            sa.select(HelpAlert.id).where(
                HelpAlert.closed_at.is_(None),
                HelpAlert.escalated_at.is_(None),
                HelpAlert.raised_at <= now - delay,
                ~answered,
            )
        )
    )
    done = 0
    for alert_id in due:
        taken = db.session.execute(
            sa.update(HelpAlert)
            .where(
                HelpAlert.id == alert_id,
                HelpAlert.escalated_at.is_(None),
                HelpAlert.closed_at.is_(None),
                ~answered,
            )
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            continue  # answered, closed or escalated by another worker meanwhile
        alert = db.session.get(HelpAlert, alert_id)
        db.session.refresh(alert)
        if alert.ticket is not None:
            tickets.add_entry(
                alert.ticket,
                EntryKind.SAFETY,
                body="応援要請：未応答（エスカレーション済み）・全責任者とサポート室に再通知",
                data={"alert": "escalated", "alert_id": alert.id},
                at=now,
            )
        _mail_alert(alert, escalated=True)
        signals.help_alert_changed.send(alert, action="escalated")
        done += 1
    db.session.flush()  # the worker commits the round (consult.worker)
    return done


ALERT_CLOSED = "この応援要請は対応終了になっています。"


def _open_alert(alert_id: int) -> HelpAlert:
    alert = db.session.get(HelpAlert, alert_id)
    if alert is None:
        raise NotFound("応援要請が見つかりません。")
    if alert.closed_at is not None:
        raise ValidationFailed(ALERT_CLOSED)
    return alert


def respond(actor: Actor, alert_id: int, kind: str) -> HelpResponse:
    """向かいます or 到着; pressing twice changes nothing. 到着 implies 向かいます."""
    staff = actor.require(*RESPONDER_ROLES)
    try:
        kind = AlertResponseKind(kind)
    except ValueError as exc:
        raise ValidationFailed("応答の種類が正しくありません。") from exc
    alert = _open_alert(alert_id)
    existing = {(r.staff_id, r.kind): r for r in alert.responses}
    if (staff.id, kind) in existing:
        return existing[(staff.id, kind)]
    response = HelpResponse(alert_id=alert.id, staff_id=staff.id, kind=kind, at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(response)
    except IntegrityError:
        # Pressed twice at once (two tabs, two devices): the unique (alert, staff, kind) lets
        # one in; the other changes nothing either, instead of failing with an error page.
        return db.session.scalar(
            sa.select(HelpResponse).where(
                HelpResponse.alert_id == alert.id,
                HelpResponse.staff_id == staff.id,
                HelpResponse.kind == kind,
            )
        )
    db.session.expire(alert, ["responses"])
    if alert.ticket is not None:
        tickets.add_entry(
            alert.ticket,
            EntryKind.SAFETY,
            author=staff,
            body=f"{kind.label}（{staff.role_label}）",
            data={"alert": kind.value, "alert_id": alert.id},
        )
    signals.help_alert_changed.send(alert, action=kind.value)
    return response


def close_alert(actor: Actor, alert_id: int) -> HelpAlert:
    staff = actor.require(*DESK_ROLES, Role.SUPPORT)
    alert = _open_alert(alert_id)
    if staff.role == Role.CONSULTANT and alert.raised_by_id != staff.id:
        raise ValidationFailed("対応終了にできるのは要請した職員、サポート室、責任者です。")
    # One conditional UPDATE: of several people closing it at once, one closes it (one entry on
    # the ticket); the others are told it is closed, as they would be a moment later.
    db.session.flush()
    closed = db.session.execute(
        sa.update(HelpAlert)
        .where(HelpAlert.id == alert.id, HelpAlert.closed_at.is_(None))
        .values(closed_at=utcnow(), closed_by_id=staff.id, press_key=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(alert)
    if closed != 1:
        raise ValidationFailed(ALERT_CLOSED)
    if alert.ticket is not None:
        tickets.add_entry(
            alert.ticket, EntryKind.SAFETY, author=staff, body="応援要請を対応終了にしました"
        )
    signals.help_alert_changed.send(alert, action="closed")
    return alert


def live_feed(actor: Actor, since: int = 0) -> dict:
    """What the staff page's poll shows: open alerts (all of them for responders, one's own
    for a consultant) and, for supervisors, long sessions waiting for a look.

    Cheap by design: it runs every second from every open staff page (index on closed_at, id).
    """
    staff = actor.staff
    if staff is None or staff.role not in (*RESPONDER_ROLES, Role.CONSULTANT):
        return {"alerts": [], "long_sessions": [], "latest": since}
    query = (
        sa.select(HelpAlert)
        .where(HelpAlert.closed_at.is_(None))
        .options(
            selectinload(HelpAlert.responses).selectinload(HelpResponse.staff),
            selectinload(HelpAlert.raised_by),
            selectinload(HelpAlert.ticket),
        )
        .order_by(HelpAlert.id)
        .limit(20)
    )
    if staff.role == Role.CONSULTANT:
        query = query.where(HelpAlert.raised_by_id == staff.id)
    alerts = list(db.session.scalars(query))
    payload = {
        "alerts": [_alert_json(alert, staff, since) for alert in alerts],
        "long_sessions": [],
        "latest": max([since, *(a.id for a in alerts)]),
        "responder": staff.role in RESPONDER_ROLES,
    }
    if staff.role == Role.SUPERVISOR:
        payload["long_sessions"] = [
            {
                "id": item.id,
                "number": item.ticket.number,
                "minutes": item.threshold_minutes,
                "url": f"/tickets/{item.ticket.number}",
            }
            for item in open_long_sessions()
        ]
    return payload


def _alert_json(alert: HelpAlert, viewer: Staff, since: int) -> dict:
    mine = {r.kind.value for r in alert.responses if r.staff_id == viewer.id}
    return {
        "id": alert.id,
        "new": alert.id > since,
        "place": place_text(alert),
        "escalated": alert.escalated_at is not None,
        "coming": [
            r.staff.full_name for r in alert.responses if r.kind == AlertResponseKind.COMING
        ],
        "ticket": alert.ticket.number if alert.ticket else None,
        "url": f"/tickets/{alert.ticket.number}" if alert.ticket else None,
        "raised_by": alert.raised_by.full_name,
        "raised_at": format_tokyo(alert.raised_at),
        "own": alert.raised_by_id == viewer.id,
        "responses": [
            {"name": r.staff.full_name, "kind": r.kind.value, "label": r.kind_label}
            for r in alert.responses
        ],
        "answered": sorted(mine),
    }


def alerts_for_ticket(ticket: Ticket) -> list[HelpAlert]:
    return list(
        db.session.scalars(
            sa.select(HelpAlert)
            .where(HelpAlert.ticket_id == ticket.id)
            .order_by(HelpAlert.id.desc())
            .limit(5)
        )
    )


# --- incident records --------------------------------------------------------------------------


@dataclass
class IncidentInput:
    occurred_at: datetime
    categories: list[str]
    description: str
    follow_ups: list[str]
    involved_ids: list[int]
    support_ids: list[int]
    ticket: Ticket | None = None
    alert_id: int | None = None


def create_incident(actor: Actor, data: IncidentInput) -> Incident:
    staff = actor.require(*INCIDENT_REPORTERS)
    try:
        categories = sorted({IncidentCategory(c) for c in data.categories})
        chosen = {FollowUp(f) for f in data.follow_ups}
        follow_ups = [f for f in FollowUp if f in chosen]
    except ValueError as exc:
        raise ValidationFailed("分類または事後対応の値が正しくありません。") from exc
    if not categories:
        raise ValidationFailed("事案の分類を1つ以上選んでください。")
    description = (data.description or "").strip()
    if not description:
        raise ValidationFailed("経過（何があったか）を入力してください。")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"経過は{MAX_DESCRIPTION:,}文字以内で入力してください。")
    if data.occurred_at.tzinfo is None or data.occurred_at > utcnow() + timedelta(minutes=5):
        raise ValidationFailed("発生日時に未来の日時は指定できません。")
    ids = set(data.involved_ids) | set(data.support_ids)
    known = set(db.session.scalars(sa.select(Staff.id).where(Staff.id.in_(ids)))) if ids else set()
    if ids - known:
        raise ValidationFailed("選択された職員が見つかりません。一覧から選び直してください。")
    if data.alert_id is not None and db.session.get(HelpAlert, data.alert_id) is None:
        raise ValidationFailed("応援要請が見つかりません。")
    ticket = data.ticket
    incident = Incident(
        ticket=ticket,
        citizen_id=ticket.citizen_id if ticket else None,
        alert_id=data.alert_id,
        occurred_at=data.occurred_at,
        reported_by=staff,
        reported_at=utcnow(),
        description=description,
        follow_ups=[f.value for f in follow_ups],
    )
    incident.categories = [IncidentCategoryMark(category=c) for c in categories]
    incident.people = [IncidentStaff(staff_id=i, part="involved") for i in set(data.involved_ids)]
    incident.people += [IncidentStaff(staff_id=i, part="support") for i in set(data.support_ids)]
    db.session.add(incident)
    if ticket is not None:
        # The timeline says a record exists, never what is in it (consultants read timelines).
        tickets.add_entry(ticket, EntryKind.SAFETY, author=staff, body="カスハラ事案を記録しました")
    db.session.flush()
    audit.record(actor, "create", "incident", incident.id)
    return incident


def list_incidents(actor: Actor, limit: int = 200) -> list[Incident]:
    actor.require(*INCIDENT_READERS)
    rows = list(
        db.session.scalars(
            sa.select(Incident)
            .options(selectinload(Incident.categories), selectinload(Incident.ticket))
            .order_by(Incident.occurred_at.desc(), Incident.id.desc())
            .limit(limit)
        )
    )
    audit.record(actor, "view", "incident", None, f"list count={len(rows)}")
    return rows


def get_incident(actor: Actor, incident_id: int) -> Incident:
    actor.require(*INCIDENT_READERS)
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("事案が見つかりません。")
    audit.record(actor, "view", "incident", incident.id)
    return incident


def incident_count_for_citizen(citizen_id: int | None) -> int:
    if citizen_id is None:
        return 0
    return db.session.scalar(
        sa.select(sa.func.count(Incident.id)).where(Incident.citizen_id == citizen_id)
    )


def staff_choices() -> list[Staff]:
    return list(
        db.session.scalars(
            sa.select(Staff)
            .where(Staff.active.is_(True), Staff.role != Role.ADMIN)
            .order_by(Staff.role, Staff.full_name)
        )
    )


# --- long sessions -----------------------------------------------------------------------------


def check_long_sessions(now: datetime | None = None) -> int:
    """Worker task: alert the supervisors once per threshold per running counter/phone session.

    The unique (ticket, threshold) key makes a second worker, or the next round, a no-op.
    """
    now = now or utcnow()
    thresholds = long_session_thresholds()
    running = list(
        db.session.scalars(
            sa.select(Ticket).where(
                Ticket.session_ended_at.is_(None),
                Ticket.session_started_at.is_not(None),
                Ticket.session_started_at <= now - timedelta(minutes=min(thresholds)),
                Ticket.is_open.is_(True),
            )
        )
    )
    if not running:
        return 0
    done = set(
        db.session.execute(
            sa.select(LongSessionAlert.ticket_id, LongSessionAlert.threshold_minutes).where(
                LongSessionAlert.ticket_id.in_([t.id for t in running])
            )
        ).all()
    )
    created = 0
    for ticket in running:
        elapsed = now - ticket.session_started_at
        for minutes in thresholds:
            if elapsed < timedelta(minutes=minutes) or (ticket.id, minutes) in done:
                continue
            try:
                with db.session.begin_nested():
                    db.session.add(
                        LongSessionAlert(
                            ticket_id=ticket.id, threshold_minutes=minutes, alerted_at=now
                        )
                    )
                    tickets.add_entry(
                        ticket,
                        EntryKind.SAFETY,
                        body=f"対応時間が{minutes}分を超えました（責任者に通知）",
                        data={"long_session": minutes},
                        at=now,
                    )
                    _mail_long_session(ticket, minutes)
                    signals.long_session_alerted.send(ticket, minutes=minutes)
            except IntegrityError:
                continue  # another worker got there first
            created += 1
    db.session.flush()  # the worker commits the round (consult.worker)
    return created


def _mail_long_session(ticket: Ticket, minutes: int) -> None:
    """Staff-internal mail to the supervisors (their work addresses; the alert address when no
    supervisor has one): the ticket, how long, who is at the desk; no citizen data."""

    from consult.services.mail import enqueue_mail

    addresses = sorted(
        set(
            db.session.scalars(
                sa.select(Staff.email).where(
                    Staff.active.is_(True),
                    Staff.role == Role.SUPERVISOR,
                    Staff.email.is_not(None),
                    Staff.email != "",
                )
            )
        )
    ) or [a for a in get_setting("alert_mail_to").split(",") if a]
    where = "電話" if ticket.channel == Channel.PHONE else "窓口"
    desk = ticket.assignee or ticket.created_by  # as 交代 names them
    lines = [
        f"{where}での相談が{minutes}分を超えています。状況を確認し、必要なら交代してください。",
        "",
        f"相談番号：{ticket.number}",
        f"開始：{format_tokyo(ticket.session_started_at, with_weekday=True)}",
        f"担当：{desk.full_name if desk else '—'}",
        public_url("desk.ticket", number=ticket.number),
    ]
    for address in addresses:
        enqueue_mail(
            to=address,
            subject=f"【長時間対応】{ticket.number}（{minutes}分超）",
            text="\n".join(lines),
            ticket=ticket,
            extra_headers={"X-Madoguchi-Internal": "long-session"},
        )


def open_long_sessions() -> list[LongSessionAlert]:
    """Unacknowledged alerts whose session still runs: the supervisor's to-look-at list."""
    return list(
        db.session.scalars(
            sa.select(LongSessionAlert)
            .join(Ticket, Ticket.id == LongSessionAlert.ticket_id)
            .where(LongSessionAlert.acknowledged_at.is_(None), Ticket.session_ended_at.is_(None))
            .options(selectinload(LongSessionAlert.ticket))
            .order_by(LongSessionAlert.id)
            .limit(20)
        )
    )


def take_over(actor: Actor, ticket: Ticket) -> None:
    """交代: the supervisor becomes the assignee; the timeline says who took over from whom."""
    staff = actor.require(Role.SUPERVISOR)
    previous = ticket.assignee or ticket.created_by
    ticket.ensure_open()
    if ticket.assignee_id == staff.id:
        raise tickets.InvalidTransition("この相談はすでにあなたが担当しています。")
    # Conditional on the assignee read: pressed twice at once (or by two supervisors), both
    # requests read the old assignee and both wrote 交代; now the loser writes nothing.
    tickets.take_assignment(actor, ticket, staff)
    tickets.add_entry(
        ticket,
        EntryKind.SAFETY,
        author=staff,
        body=f"交代：{previous.full_name if previous else '—'} → {staff.full_name}",
        data={"takeover": True, "from": previous.id if previous else None, "to": staff.id},
    )
    now = utcnow()
    for item in db.session.scalars(
        sa.select(LongSessionAlert).where(
            LongSessionAlert.ticket_id == ticket.id, LongSessionAlert.acknowledged_at.is_(None)
        )
    ):
        item.acknowledged_at, item.acknowledged_by_id = now, staff.id


# --- repeated demands and caution -----------------------------------------------------------


def _repeat_window() -> tuple[int, timedelta]:
    return int(get_setting("repeat_contacts")), timedelta(days=int(get_setting("repeat_days")))


def repeated_cases(ticket: Ticket) -> list[Ticket]:
    """The citizen's cases on the same category within the window, when more than N: else []."""
    if ticket.citizen_id is None or ticket.category_id is None:
        return []
    limit, days = _repeat_window()
    rows = list(
        db.session.scalars(
            sa.select(Ticket)
            .where(
                Ticket.citizen_id == ticket.citizen_id,
                Ticket.category_id == ticket.category_id,
                Ticket.created_at >= ticket.created_at - days,
                Ticket.created_at <= ticket.created_at,
            )
            .order_by(Ticket.created_at.desc())
            .limit(100)
        )
    )
    if len(rows) <= limit:
        return []
    return [t for t in rows if t.id != ticket.id]


def repeated_flags(page: list[Ticket]) -> dict[int, int]:
    """For the queue: ticket id → contacts in the window, for the page's flagged tickets only.

    One GROUP BY over the page's (citizen, category) pairs, using ix_ticket_citizen.
    """
    pairs = {(t.citizen_id, t.category_id) for t in page if t.citizen_id and t.category_id}
    if not pairs:
        return {}
    limit, days = _repeat_window()
    since = utcnow() - days
    counts = dict(
        ((citizen, category), count)
        for citizen, category, count in db.session.execute(
            sa.select(Ticket.citizen_id, Ticket.category_id, sa.func.count(Ticket.id))
            .where(
                Ticket.citizen_id.in_({c for c, _ in pairs}),
                Ticket.created_at >= since,
            )
            .group_by(Ticket.citizen_id, Ticket.category_id)
        )
    )
    return {
        t.id: counts[(t.citizen_id, t.category_id)]
        for t in page
        if counts.get((t.citizen_id, t.category_id), 0) > limit
    }


def ticket_panel(ticket: Ticket):
    """The ticket page's safety panel: help button, alerts, caution, repeats, recording policy."""
    from flask_login import current_user

    return "consult/safety/_panel.html", {
        "alerts": alerts_for_ticket(ticket),
        "repeats": repeated_cases(ticket),
        "repeat_days": int(get_setting("repeat_days")),
        "incident_count": incident_count_for_citizen(ticket.citizen_id),
        "recording_policy": get_setting("recording_policy")
        if ticket.channel.value in ("counter", "phone", "booking")
        else None,
        "places": PLACES,
        "can_take_over": current_user.is_authenticated and current_user.role == Role.SUPERVISOR,
        "can_read_incidents": current_user.is_authenticated
        and current_user.role in INCIDENT_READERS,
    }
