"""The alerts' rules: from a case to a redacted draft, review, publication, the digest.

Who writes (作成): the centre's desk (相談員, センター責任者), administrators, and the officers of
the consumer-affairs centre (the departments named in MADOGUCHI_ALERTS_AUTHOR_DEPARTMENTS,
default 「shohi」): the consumer-affairs consultants are department staff at Imabari.
Who approves (承認): a センター責任者 or an administrator who is not the author, as for the FAQ.

Workflow: draft (下書き) → review (承認待ち) → published (公開中) → archived (公開終了).
Every field goes through the FAQ's redactor each time it is saved (the redacted text is what
is stored), and approval runs it again and is refused while it still finds anything.
Publication tells every member of staff live, queues the LINE notice through a signal, and
the worker's daily digest mails the departments.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from consult import signals, urls
from consult.extensions import db
from consult.models import STAFF_ROLES, Department, Role, Ticket
from consult.services import audit, mail
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, NotFound, PermissionDenied
from consult.services.normalize import clean_text
from consult.timeutil import TOKYO, to_tokyo, utcnow
from faq.alerts.models import AlertStatus, ConsumerAlert
from faq.alerts.settings import AlertSettings
from faq.services import PublishBlocked, names_in_case, redact_text

APPROVE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
DESK_AUTHOR_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.ADMIN)
READ_ROLES = STAFF_ROLES  # every department sees alerts
LIMITS = {
    "title": ("件名", 120, True),
    "method": ("手口", 4000, True),
    "area": ("地域", 200, False),
    "phrases": ("犯人がよく使う言葉", 2000, False),
    "advice": ("対処法", 4000, True),
    "title_en": ("英語の件名", 200, False),
    "method_en": ("英語の手口", 4000, False),
    "area_en": ("英語の地域", 200, False),
    "advice_en": ("英語の対処法", 4000, False),
}
FIELD_LABELS = {name: spec[0] for name, spec in LIMITS.items()}
REDACT_PASSES = 4
ONLY_REVIEW = "承認待ちの注意喚起だけを承認できます。"
LIVE_AUDIENCE = [f"role:{role.value}" for role in STAFF_ROLES]


def may_author(actor: Actor) -> bool:
    if actor.trusted or actor.may(*DESK_AUTHOR_ROLES):
        return True
    staff = actor.staff
    if staff is None or not staff.active or staff.role != Role.OFFICER:
        return False
    codes = set(AlertSettings.current().author_departments)
    department = db.session.get(Department, staff.department_id) if staff.department_id else None
    return department is not None and department.code in codes


def require_author(actor: Actor) -> None:
    if not may_author(actor):
        raise PermissionDenied(
            "注意喚起を作成する権限がありません。相談員・センター責任者、"
            "または消費生活センターの職員が作成できます。"
        )


def _names(alert: ConsumerAlert | None, ticket: Ticket | None) -> list[str]:
    ticket = ticket or (alert.ticket if alert is not None else None)
    return names_in_case(ticket=ticket) if ticket is not None else []


def _clean_and_redact(
    values: dict, names: list[str], optional: tuple[str, ...] = ()
) -> tuple[dict, list]:
    """Each field checked, then redacted; the findings (field, kind, label) for the reviewer."""
    cleaned, notes = {}, []
    for name, (label, limit, required) in LIMITS.items():
        text = clean_text(
            values.get(name), label, limit, required=required and name not in optional
        )
        # Again on its own output until it finds nothing: a replaced name can reveal the
        # address beside it (a few passes at most; approval checks once more).
        for _ in range(REDACT_PASSES):
            result = redact_text(text, names)
            notes += [{"field": name, "kind": s.kind, "label": s.label} for s in result.spans]
            if not result.spans:
                break
            text = result.text
        cleaned[name] = text[:limit]
    return cleaned, notes


def remaining_personal_data(alert: ConsumerAlert) -> list:
    names = _names(alert, None)
    return [
        span
        for name in ConsumerAlert.TEXT_FIELDS
        for span in redact_text(getattr(alert, name) or "", names).spans
    ]


def _first_message(ticket: Ticket) -> str:
    for entry in ticket.timeline:
        if entry.kind.value == "message_in" and entry.body:
            return entry.body
    return ""


def draft_from_ticket(actor: Actor, ticket: Ticket) -> ConsumerAlert:
    """「注意喚起にする」: a draft prefilled from the case, redacted before anyone edits it."""
    require_author(actor)
    audit.record(actor, "view", "ticket", ticket.number, detail="注意喚起の下書きの作成")
    first = _first_message(ticket)
    method = "\n".join(t for t in (first, ticket.resolution_summary or "") if t)
    return create(
        actor,
        {
            "title": ticket.subject[:120],
            "method": method or ticket.subject,
            # Left empty: a placeholder here was published as the advice when nobody edited it.
            "advice": "",
        },
        ticket=ticket,
        optional=("advice",),
    )


def create(
    actor: Actor,
    values: dict,
    *,
    ticket: Ticket | None = None,
    optional: tuple[str, ...] = (),
) -> ConsumerAlert:
    require_author(actor)
    cleaned, notes = _clean_and_redact(values, _names(None, ticket), optional)
    now = utcnow()
    alert = ConsumerAlert(
        **cleaned,
        ticket_id=ticket.id if ticket is not None else None,
        status=AlertStatus.DRAFT,
        author_id=actor.staff_id,
        redaction_notes=notes,
        created_at=now,
        updated_at=now,
    )
    db.session.add(alert)
    db.session.flush()
    audit.record(actor, "create", "consumer_alert", str(alert.id))
    return alert


def update(actor: Actor, alert: ConsumerAlert, values: dict) -> ConsumerAlert:
    """Saving a published alert takes it back to review: only approved text is public."""
    require_author(actor)
    if alert.status == AlertStatus.ARCHIVED:
        raise InvalidTransition("公開を終了した注意喚起は編集できません。")
    cleaned, notes = _clean_and_redact(values, _names(alert, None))
    for name, value in cleaned.items():
        setattr(alert, name, value)
    alert.redaction_notes = notes
    alert.updated_at = utcnow()
    if alert.status == AlertStatus.PUBLISHED:
        alert.status = AlertStatus.REVIEW
        alert.approved_by_id = None
    audit.record(actor, "update", "consumer_alert", str(alert.id))
    return alert


def _move(alert: ConsumerAlert, allowed: AlertStatus, target: AlertStatus, refusal: str) -> None:
    """A conditional update: two reviewers pressing at once move it once."""
    result = db.session.execute(
        sa.update(ConsumerAlert)
        .where(ConsumerAlert.id == alert.id, ConsumerAlert.status == allowed)
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InvalidTransition(refusal)
    db.session.refresh(alert)


NO_ADVICE = "対処法が未記入です。「編集」で対処法を記入してから承認を依頼してください。"


def _require_advice(alert: ConsumerAlert) -> None:
    """An alert tells citizens what to do; without that it is not ready for review or the public."""
    if not (alert.advice or "").strip():
        raise InvalidTransition(NO_ADVICE)


def submit(actor: Actor, alert: ConsumerAlert) -> None:
    require_author(actor)
    _require_advice(alert)
    _move(alert, AlertStatus.DRAFT, AlertStatus.REVIEW, "下書きの注意喚起だけを承認依頼できます。")
    audit.record(actor, "update", "consumer_alert", str(alert.id), "submit")


def send_back(actor: Actor, alert: ConsumerAlert) -> None:
    actor.require(*APPROVE_ROLES)
    _move(alert, AlertStatus.REVIEW, AlertStatus.DRAFT, "承認待ちの注意喚起だけを差し戻せます。")
    audit.record(actor, "update", "consumer_alert", str(alert.id), "send_back")


def approve(actor: Actor, alert: ConsumerAlert) -> None:
    """Publish: a supervisor who is not the author, and nothing personal left in any field."""
    actor.require(*APPROVE_ROLES)
    if alert.status != AlertStatus.REVIEW:
        raise InvalidTransition(ONLY_REVIEW)
    if not actor.trusted and alert.author_id == actor.staff_id:
        raise PermissionDenied(
            "自分が作成した注意喚起は承認できません。別のセンター責任者に依頼してください。"
        )
    _require_advice(alert)
    spans = remaining_personal_data(alert)
    if spans:
        raise PublishBlocked(spans)
    _move(
        alert, AlertStatus.REVIEW, AlertStatus.PUBLISHED, "承認待ちの注意喚起だけを承認できます。"
    )
    alert.approved_by_id = actor.staff_id
    alert.published_at = utcnow()
    db.session.flush()
    audit.record(actor, "update", "consumer_alert", str(alert.id), "publish")
    from consult.live import services as live

    # Ids and a label only: the title is redacted and approved, shortened to a label.
    live.publish(
        "consumer_alert.published",
        LIVE_AUDIENCE,
        {"alert_id": alert.id, "title": alert.title[:80]},
    )
    signals.consumer_alert_published.send(
        alert.id,
        title=alert.title,
        text=alert.citizen_text(),
        url=urls.public_url("alerts_public.alert", alert_id=alert.id),
    )


def archive(actor: Actor, alert: ConsumerAlert) -> None:
    actor.require(*APPROVE_ROLES)
    if alert.status == AlertStatus.ARCHIVED:
        raise InvalidTransition("この注意喚起はすでに公開を終了しています。")
    alert.status = AlertStatus.ARCHIVED
    alert.updated_at = utcnow()
    audit.record(actor, "update", "consumer_alert", str(alert.id), "archive")


def get(actor: Actor, alert_id: int) -> ConsumerAlert:
    actor.require(*READ_ROLES)
    alert = db.session.get(ConsumerAlert, alert_id)
    if alert is None:
        raise NotFound("注意喚起が見つかりません。")
    return alert


def get_public(alert_id: int) -> ConsumerAlert:
    alert = db.session.get(ConsumerAlert, alert_id)
    if alert is None or not alert.is_public:
        raise NotFound("注意喚起が見つかりません。")
    return alert


def list_all(actor: Actor, limit: int = 200) -> list[ConsumerAlert]:
    actor.require(*READ_ROLES)
    return list(
        db.session.scalars(
            sa.select(ConsumerAlert).order_by(ConsumerAlert.updated_at.desc()).limit(limit)
        )
    )


def public_alerts(limit: int = 50) -> list[ConsumerAlert]:
    return list(
        db.session.scalars(
            sa.select(ConsumerAlert)
            .where(ConsumerAlert.status == AlertStatus.PUBLISHED)
            .order_by(ConsumerAlert.published_at.desc(), ConsumerAlert.id.desc())
            .limit(limit)
        )
    )


def from_ticket(ticket: Ticket) -> list[ConsumerAlert]:
    return list(
        db.session.scalars(sa.select(ConsumerAlert).where(ConsumerAlert.ticket_id == ticket.id))
    )


def recent(now: datetime, days: int = 7, limit: int = 10) -> list[ConsumerAlert]:
    """Published in the last `days`, newest first: the 今日 page's block (one query)."""
    return list(
        db.session.scalars(
            sa.select(ConsumerAlert)
            .where(
                ConsumerAlert.status == AlertStatus.PUBLISHED,
                ConsumerAlert.published_at >= now - timedelta(days=days),
            )
            .order_by(ConsumerAlert.published_at.desc())
            .limit(limit)
        )
    )


# --- the departments' daily digest ------------------------------------------------------------


def digest_due(now: datetime) -> bool:
    return to_tokyo(now).hour >= AlertSettings.current().digest_hour


def send_digest(now: datetime | None = None) -> int:
    """Once a day from the digest hour (Tokyo): one mail to each active department with an
    address, listing the alerts published since the last digest; returns how many mails were
    queued. The alerts are taken by a conditional
    update in the same transaction as the mails, so two workers never send one twice. The
    caller commits."""
    now = now or utcnow()
    if not digest_due(now):
        return 0
    last = db.session.scalar(sa.select(sa.func.max(ConsumerAlert.digest_sent_at)))
    if last is not None and to_tokyo(last).date() == to_tokyo(now).date():
        return 0  # today's digest went out: what was published since waits for tomorrow's
    alerts = list(
        db.session.scalars(
            sa.select(ConsumerAlert)
            .where(
                ConsumerAlert.status == AlertStatus.PUBLISHED,
                ConsumerAlert.digest_sent_at.is_(None),
            )
            .order_by(ConsumerAlert.published_at, ConsumerAlert.id)
        )
    )
    if not alerts:
        return 0
    ids = [a.id for a in alerts]
    taken = db.session.execute(
        sa.update(ConsumerAlert)
        .where(ConsumerAlert.id.in_(ids), ConsumerAlert.digest_sent_at.is_(None))
        .values(digest_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != len(ids):
        db.session.rollback()  # another worker is sending this digest
        return 0
    departments = list(
        db.session.scalars(
            sa.select(Department)
            .where(Department.active.is_(True), Department.email.is_not(None))
            .order_by(Department.sort_order, Department.id)
        )
    )
    from flask import current_app

    day = to_tokyo(now).astimezone(TOKYO)
    subject = (
        "【注意喚起】新しい消費生活・特殊詐欺の注意喚起"
        f"（{day.month}月{day.day}日・{len(alerts)}件）"
    )
    # Rendered without a request (the worker): the template alone, no request context.
    text = current_app.jinja_env.get_template("faq/alerts/mail/digest.txt").render(
        alerts=alerts,
        public_url=urls.public_url("alerts_public.index"),
        url_of=lambda a: urls.public_url("alerts_public.alert", alert_id=a.id),
    )
    sent = 0
    for department in departments:
        if not (department.email or "").strip():
            continue
        mail.enqueue_mail(to=department.email, subject=subject, text=text)
        sent += 1
    return sent
