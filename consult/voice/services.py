"""The citizens' voice: satisfaction after a case closes, and requests to the city.

Satisfaction (満足度): when a case closes, its channel asks the citizen one question, once
(`ask`): LINE as a quick reply, mail as a link, the counter as a QR code on the printed
receipt. The token is signed (itsdangerous, as the booking's and the handoff's links) and
single-use: answering deletes the invite in the transaction that stores the answer, and the
answer keeps only channel, category, month, score and comment (see consult/voice/models.py for
why no answer can be traced back to its ticket).

Requests (市への要望・市長への手紙): a flag on a ticket with an answer deadline in business days
(the kernel's calendar), the responsible department (set from the case's handoff by the handoff
package) and the written answer, recorded on the ticket's timeline. The answer's signal lets the
handoff package complete the 文書回答 handoff its department's officer answered; each change is
a live event (`announce`) that the ticket page's panel and the /requests lists follow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from consult import signals, upsert
from consult.extensions import db
from consult.models import (
    Category,
    Channel,
    Department,
    EntryKind,
    Role,
    Ticket,
)
from consult.services import audit, calendar, tickets
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import WEEKDAYS_JA, to_tokyo, tokyo_today, utcnow
from consult.voice.models import (
    SCORE_LABELS,
    CitizenRequest,
    RequestKind,
    SatisfactionAnswer,
    SatisfactionAsk,
    SatisfactionInvite,
    _random_id,
)
from consult.voice.settings import VoiceSettings

SALT = "satisfaction"
MAX_COMMENT = 1000
MAX_ANSWER = 10_000
# A report cell with fewer answers than this shows no figure (see models.py).
MIN_CELL = 3
# The channels that ask: where the citizen can be reached anonymously afterwards.
ASKING_CHANNELS = (Channel.LINE, Channel.EMAIL, Channel.COUNTER)


class AlreadyAnswered(DomainError):
    """The link was used, expired, or was never ours: the page says so, nothing changes."""

    def __init__(self) -> None:
        super().__init__("このアンケートは回答済みか、回答期限が過ぎています。")


# --- satisfaction: tokens -----------------------------------------------------------------------


def _secret() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


def _role() -> str:
    from consult.transfer.services import role

    return role()


def _link_secret() -> bytes:
    """What signs the link and keys the invite's digest: the app's secret on one server; the
    relay and the core's shared key when they are split (the relay, which shows the question,
    never holds the core's secret)."""
    if _role() == "all":
        return _secret()
    from consult.transfer.services import settings

    return str(settings().key).encode()


def _nonce(ticket_id: int) -> str:
    """The same for a ticket every time (a reprinted receipt shows the same code), and not
    computable without the app's secret."""
    mac = hmac.new(_secret(), f"satisfaction:{ticket_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")


def _digest(nonce: str) -> str:
    return hmac.new(_link_secret(), f"invite:{nonce}".encode(), hashlib.sha256).hexdigest()


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(_link_secret(), salt=SALT)


def _nonce_of(token: str) -> str:
    try:
        nonce = _serializer().loads(token)
    except BadSignature as exc:
        raise AlreadyAnswered() from exc
    if not isinstance(nonce, str):
        raise AlreadyAnswered()
    return nonce


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _expiry(day: date) -> date:
    """The last day of the month after `day`'s: the same for every case of one month."""
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    first_after = (first_next.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_after - timedelta(days=1)


def ask(ticket: Ticket, channel: str | None = None, *, again: bool = False) -> str | None:
    """The token for this ticket's one question, creating its invite on the first call.

    None when the question is not asked (turned off), was asked before (a case closed twice
    is asked once) or, with `again` (a reprinted receipt shows the same code), was already
    answered (the invite is gone). Flushes; the caller commits.
    """
    if not VoiceSettings.current().satisfaction_enabled:
        return None
    channel = str(channel or ticket.channel.value)
    nonce = _nonce(ticket.id)
    digest = _digest(nonce)
    added = upsert.insert_ignore(
        SatisfactionAsk.__table__,
        {"ticket_id": ticket.id, "channel": channel},
        ["ticket_id"],
        returning=SatisfactionAsk.ticket_id,
    ).first()
    if added is not None:
        closed = to_tokyo(ticket.closed_at).date() if ticket.closed_at else tokyo_today()
        invite = SatisfactionInvite(
            digest=digest,
            channel=channel,
            category_id=ticket.category_id,
            month=month_of(closed),
            expires_on=_expiry(closed),
        )
        db.session.add(invite)
        db.session.flush()
        if _role() == "core":
            _invite_to_relay(invite)
    elif not again or (
        db.session.scalar(
            sa.select(SatisfactionInvite.id).where(SatisfactionInvite.digest == digest)
        )
        is None
    ):
        return None
    return _serializer().dumps(nonce)


# --- satisfaction across the zones (consult.transfer) -------------------------------------------
# The question's page faces the internet, so it is the relay's. The core sends each invite
# there (`voice.invite`: the digest, channel, category, month and expiry, nothing of the ticket);
# the relay stores the answer as an item for the core (`voice.answer`), never as a row of its
# own, and the core records it as if answered here, using up its own invite. Item ids are the
# invite's and the answer's random ids: nothing kept links an answer to its invite.

INVITE_KIND = "voice.invite"
ANSWER_KIND = "voice.answer"


def _invite_to_relay(invite: SatisfactionInvite) -> None:
    from consult.transfer import services as transfer

    transfer.enqueue(
        INVITE_KIND,
        f"{INVITE_KIND}:{invite.id}",
        {
            "digest": invite.digest,
            "channel": invite.channel,
            "category_id": invite.category_id,
            "month": invite.month,
            "expires_on": invite.expires_on.isoformat(),
        },
    )


def apply_invite(payload: dict) -> None:
    """On the relay: the right to answer once (the category only if the relay knows it)."""
    category_id = payload.get("category_id")
    if category_id is not None and db.session.get(Category, category_id) is None:
        category_id = None
    upsert.insert_ignore(
        SatisfactionInvite.__table__,
        {
            "id": _random_id(),
            "digest": str(payload["digest"])[:64],
            "channel": str(payload["channel"])[:20],
            "category_id": category_id,
            "month": str(payload["month"])[:7],
            "expires_on": date.fromisoformat(payload["expires_on"]),
        },
        ["digest"],
    )


def apply_answer(payload: dict) -> None:
    """On the core: the relay's answer, recorded as `answer()` records one here: the core's
    invite of the same digest is used up, and gives the answer its channel, category, month."""
    taken = db.session.execute(
        sa.delete(SatisfactionInvite)
        .where(SatisfactionInvite.digest == str(payload["digest"]))
        .returning(
            SatisfactionInvite.channel, SatisfactionInvite.category_id, SatisfactionInvite.month
        )
    ).first()
    score = int(payload["score"])
    if score not in SCORE_LABELS:
        return
    values = {
        "id": str(payload["id"])[:32],
        "channel": taken.channel if taken else str(payload["channel"])[:20],
        "category_id": taken.category_id if taken else None,
        "month": taken.month if taken else str(payload["month"])[:7],
        "score": score,
        "comment": clean_text(payload.get("comment"), "ご意見", MAX_COMMENT) or None,
    }
    upsert.insert_ignore(SatisfactionAnswer.__table__, values, ["id"])


def was_asked(ticket: Ticket) -> bool:
    return db.session.get(SatisfactionAsk, ticket.id) is not None


def open_invite(token: str) -> SatisfactionInvite:
    """The invite of a token that may still answer, or AlreadyAnswered."""
    digest = _digest(_nonce_of(token))
    invite = db.session.scalar(
        sa.select(SatisfactionInvite).where(SatisfactionInvite.digest == digest)
    )
    if invite is None or invite.expires_on < tokyo_today():
        raise AlreadyAnswered()
    return invite


def answer(token: str, score: int | str, comment: str | None = None) -> None:
    """Store one answer and use up its invite, in one transaction: a conditional DELETE whose
    row count says whether this request, of two at once, is the one that answers."""
    try:
        score = int(score)
    except (TypeError, ValueError):
        score = 0
    if score not in SCORE_LABELS:
        raise ValidationFailed("満足度を1〜5から選んでください。")
    comment = clean_text(comment, "ご意見", MAX_COMMENT) or None
    digest = _digest(_nonce_of(token))
    taken = db.session.execute(
        sa.delete(SatisfactionInvite)
        .where(SatisfactionInvite.digest == digest, SatisfactionInvite.expires_on >= tokyo_today())
        .returning(
            SatisfactionInvite.channel, SatisfactionInvite.category_id, SatisfactionInvite.month
        )
    ).first()
    if taken is None:
        raise AlreadyAnswered()
    if _role() == "relay":
        # Kept only until the core has taken it, as an item to cross, never as a row here.
        from consult.transfer import services as transfer

        answer_id = _random_id()
        transfer.enqueue(
            ANSWER_KIND,
            f"{ANSWER_KIND}:{answer_id}",
            {
                "id": answer_id,
                "digest": digest,
                "channel": taken.channel,
                "month": taken.month,
                "score": score,
                "comment": comment,
            },
        )
        return
    db.session.add(
        SatisfactionAnswer(
            channel=taken.channel,
            category_id=taken.category_id,
            month=taken.month,
            score=score,
            comment=comment,
        )
    )
    db.session.flush()


def dispose_comments(before_month: str) -> int:
    """Empty the comments of months before `before_month` (scores stay: statistics)."""
    result = db.session.execute(
        sa.update(SatisfactionAnswer)
        .where(SatisfactionAnswer.month < before_month, SatisfactionAnswer.comment.is_not(None))
        .values(comment=None)
    )
    return result.rowcount or 0


# --- satisfaction: reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    label: str
    count: int
    average: float | None  # None: fewer than MIN_CELL answers, not shown
    distribution: dict[int, int]


def _months(period) -> list[str]:
    months: list[str] = []
    day = period.start.replace(day=1)
    while day <= period.end:
        months.append(month_of(day))
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


def _cell(label: str, scores: list[int]) -> Cell:
    shown = len(scores) >= MIN_CELL
    return Cell(
        label=label,
        count=len(scores),
        average=round(statistics.fmean(scores), 2) if shown else None,
        distribution={s: scores.count(s) for s in SCORE_LABELS} if shown else {},
    )


def satisfaction_figures(period) -> dict:
    months = _months(period)
    rows = db.session.execute(
        sa.select(
            SatisfactionAnswer.channel,
            SatisfactionAnswer.category_id,
            SatisfactionAnswer.month,
            SatisfactionAnswer.score,
        ).where(SatisfactionAnswer.month.in_(months))
    ).all()
    names = dict(db.session.execute(sa.select(Category.id, Category.name)).all())
    by_channel: dict[str, list[int]] = defaultdict(list)
    by_category: dict[int | None, list[int]] = defaultdict(list)
    by_month: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_channel[row.channel].append(row.score)
        by_category[row.category_id].append(row.score)
        by_month[row.month].append(row.score)
    channel_label = {c.value: c.label for c in Channel}
    return {
        "total": _cell("全体", [r.score for r in rows]),
        "channels": [_cell(channel_label.get(c, c), by_channel[c]) for c in sorted(by_channel)],
        "categories": sorted(
            (_cell(names.get(cid, "未分類"), scores) for cid, scores in by_category.items()),
            key=lambda cell: (-cell.count, cell.label),
        ),
        "months": [
            _cell(f"{int(m[:4])}年{int(m[5:])}月", by_month[m]) for m in months if m in by_month
        ],
    }


def satisfaction_section(period):
    figures = satisfaction_figures(period)
    return "consult/voice/_report_satisfaction.html", {
        "figures": figures,
        "score_labels": SCORE_LABELS,
        "min_cell": MIN_CELL,
    }


# --- requests to the city ------------------------------------------------------------------------


def answer_days_for(kind: RequestKind) -> int:
    settings = VoiceSettings.current()
    if kind == RequestKind.MAYOR_LETTER:
        return settings.mayor_letter_answer_days
    return settings.request_answer_days


def date_text(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


def request_for(ticket: Ticket) -> CitizenRequest | None:
    return db.session.scalar(sa.select(CitizenRequest).where(CitizenRequest.ticket_id == ticket.id))


def mark_request(actor: Actor, ticket: Ticket, kind: str) -> CitizenRequest:
    """Flag a ticket as a request to the city or a letter to the mayor: its deadline is the
    city's number of business days after the day it was received."""
    staff = actor.require(*DESK_ROLES)
    ticket.ensure_open()
    try:
        kind = RequestKind(kind)
    except ValueError as exc:
        raise ValidationFailed(
            "種別を「市への要望」か「市長への手紙」から選んでください。"
        ) from exc
    if request_for(ticket) is not None:
        raise ValidationFailed("この相談は既に要望・手紙として登録されています。")
    received = to_tokyo(ticket.created_at).date()
    days = answer_days_for(kind)
    due = calendar.add_business_days(received, days)
    item = CitizenRequest(
        ticket=ticket, kind=kind, received_on=received, answer_days=days, due_on=due
    )
    db.session.add(item)
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=staff,
        body=(f"{kind.label}として登録しました（回答期限 {date_text(due)}・受付から{days}開庁日）"),
    )
    db.session.flush()
    # The handoff package names the department here when the case was already handed on.
    signals.citizen_request_marked.send(item)
    announce(item, MARKED)
    return item


# The live channel's events of a request (kinds `citizen_request.<action>`): the ticket page's
# panel and the `/requests` lists refresh themselves (consult/static/js/voice.js).
MARKED, ASSIGNED, UNASSIGNED, ANSWERED = "marked", "assigned", "unassigned", "answered"


def announce(item: CitizenRequest, action: str, *, also_department: int | None = None) -> None:
    """Tell the desk and the responsible department's officers (and, when the department was
    just taken away, that one's: its list must drop the row) that a request changed.

    Ids and kinds only: the payload is kept a day, out of reach of disposal, so it never
    carries the subject, the citizen or the answer's text."""
    from consult.live import services as live

    departments = {d for d in (item.department_id, also_department) if d is not None}
    live.publish(
        f"citizen_request.{action}",
        ["desk", *(f"department:{d}" for d in sorted(departments))],
        {
            "request_id": item.id,
            "ticket_id": item.ticket_id,
            "department_id": item.department_id,
            "kind": RequestKind(item.kind).value,
            "action": action,
        },
    )


def set_department(item: CitizenRequest, department_id: int, handoff_id: int | None) -> bool:
    """The responsible department, named by the case's first handoff (handoff package)."""
    if item.department_id is not None:
        return False
    item.department_id = department_id
    item.handoff_id = handoff_id
    db.session.flush()
    announce(item, ASSIGNED)
    return True


def clear_department(item: CitizenRequest, handoff_id: int) -> bool:
    """The handoff that named the department was sent back or cancelled: no department again
    (the next handoff names one). Its officers' lists drop the request."""
    if item.handoff_id != handoff_id:
        return False
    old = item.department_id
    item.department_id = None
    item.handoff_id = None
    db.session.flush()
    announce(item, UNASSIGNED, also_department=old)
    return True


def record_answer(actor: Actor, ticket: Ticket, text: str) -> CitizenRequest:
    """The written answer, on the request and on the ticket's timeline. The desk, or an
    officer of the responsible department, records it (once; a correction is a note)."""
    item = request_for(ticket)
    if item is None:
        raise NotFound("この相談は要望・手紙として登録されていません。")
    allowed = actor.may(*DESK_ROLES) or (
        actor.may(Role.OFFICER)
        and actor.staff is not None
        and item.department_id is not None
        and actor.staff.department_id == item.department_id
    )
    if not allowed:
        raise PermissionDenied("この操作を行う権限がありません。")
    if item.answered_at is not None:
        raise ValidationFailed("回答は既に記録されています。訂正はメモで記録してください。")
    text = clean_text(text, "回答", MAX_ANSWER, required=True)
    now = utcnow()
    today = to_tokyo(now).date()
    # Conditional on "not answered yet": of two answers sent at once, one is kept.
    done = db.session.execute(
        sa.update(CitizenRequest)
        .where(CitizenRequest.id == item.id, CitizenRequest.answered_at.is_(None))
        .values(
            answer_text=text,
            answered_at=now,
            answered_on=today,
            answered_by_id=actor.staff_id,
            answer_business_days=calendar.business_days_between(item.received_on, today),
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise ValidationFailed("回答は既に記録されています。訂正はメモで記録してください。")
    db.session.refresh(item)
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=actor.staff,
        body=f"【文書回答】\n{text}",
        data={"voice_answer": item.id},
    )
    # The handoff package completes the 文書回答 handoff its department's officer answered.
    signals.citizen_request_answered.send(item, actor=actor)
    audit.record(actor, "update", "ticket", ticket.number, "citizen_request_answer")
    announce(item, ANSWERED)
    return item


def list_requests(actor: Actor, state: str = "open") -> list[CitizenRequest]:
    """The requests and letters, nearest deadline first: the desk sees all; an officer sees
    those of their own department."""
    query = sa.select(CitizenRequest).order_by(CitizenRequest.due_on, CitizenRequest.id)
    if actor.may(*DESK_ROLES, Role.ADMIN):
        pass
    elif actor.may(Role.OFFICER) and actor.staff is not None:
        query = query.where(CitizenRequest.department_id == actor.staff.department_id)
    else:
        raise PermissionDenied("この操作を行う権限がありません。")
    if state == "open":
        query = query.where(CitizenRequest.answered_at.is_(None))
    elif state == "answered":
        query = query.where(CitizenRequest.answered_at.is_not(None))
    return list(db.session.scalars(query.limit(500)))


@dataclass(frozen=True)
class DepartmentFigures:
    department: str
    received: int
    answered: int
    within: int
    late: int
    open_overdue: int
    median_days: float | None
    deadline_days: float | None


def request_figures(period, today: date | None = None) -> list[DepartmentFigures]:
    today = today or tokyo_today()
    rows = list(
        db.session.scalars(
            sa.select(CitizenRequest).where(
                CitizenRequest.received_on >= period.start, CitizenRequest.received_on <= period.end
            )
        )
    )
    names = dict(db.session.execute(sa.select(Department.id, Department.name)).all())
    groups: dict[int | None, list[CitizenRequest]] = defaultdict(list)
    for row in rows:
        groups[row.department_id].append(row)
    figures = []
    for department_id, items in groups.items():
        answered = [i for i in items if i.answered_on is not None]
        days = [i.answer_business_days for i in answered if i.answer_business_days is not None]
        figures.append(
            DepartmentFigures(
                department=names.get(department_id, "担当課未定"),
                received=len(items),
                answered=len(answered),
                within=sum(1 for i in answered if i.answered_on <= i.due_on),
                late=sum(1 for i in answered if i.answered_on > i.due_on),
                open_overdue=sum(1 for i in items if i.answered_on is None and today > i.due_on),
                median_days=float(statistics.median(days)) if days else None,
                deadline_days=statistics.fmean(i.answer_days for i in items) if items else None,
            )
        )
    return sorted(figures, key=lambda f: (-f.received, f.department))


def request_section(period):
    figures = request_figures(period)
    return "consult/voice/_report_requests.html", {
        "figures": figures,
        "total": sum(f.received for f in figures),
    }


def panel_state(ticket: Ticket) -> tuple[CitizenRequest | None, bool]:
    """The ticket panel's request (if any) and whether the citizen was asked the question."""
    # One query for the panel (the ticket page's count is pinned): the request's id and
    # whether the citizen was asked; the request itself only when there is one.
    row = db.session.execute(
        sa.select(
            sa.select(CitizenRequest.id)
            .where(CitizenRequest.ticket_id == ticket.id)
            .scalar_subquery()
            .label("request_id"),
            sa.exists().where(SatisfactionAsk.ticket_id == ticket.id).label("asked"),
        )
    ).one()
    item = db.session.get(CitizenRequest, row.request_id) if row.request_id else None
    return item, bool(row.asked)
