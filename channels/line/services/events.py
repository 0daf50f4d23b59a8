"""Stored LINE events turned into tickets, timeline entries and answers, one event at a time.

The processor (channels.line.tasks) claims events through the `EVENTS` queue and calls
`finish` for each, in LINE's order within a chat; everything here flushes, never commits.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import sqlalchemy as sa

from channels.line import notifications
from channels.line.models import (
    EventStatus,
    LineContact,
    LineEvent,
    LineMedia,
    LineTicket,
    MediaStatus,
)
from channels.line.services.common import MEDIA_KINDS, log
from channels.line.services.contacts import contact_for, open_ticket, profile_due
from channels.line.services.linking import LINK_PATTERN, LINK_STEP, LINK_STEP_LIFETIME_MS, self_link
from channels.line.services.outgoing import enqueue, record_message
from channels.line.services.satisfaction import SATISFACTION_ACTION, on_satisfaction
from consult import signals
from consult.extensions import db
from consult.models import Channel, EntryKind, Status, Ticket
from consult.services import auto_answer, calendar, queue, tickets
from consult.services.actor import SYSTEM
from consult.services.normalize import strip_controls
from consult.timeline import Automatic
from consult.timeutil import utcnow

REPLY_TOKEN_LIFETIME = timedelta(seconds=50)  # LINE: about a minute; keep a margin


def _describe_event(event: LineEvent) -> str:
    return f"LINEの{event.event_type}イベント"


# The work queues of LINE (consult.services.queue): claimed, kept by heartbeats, retried.
# A failed event is put back by the queue's own retry (pending, due now), from the
# administrators' page of failed work or `madoguchi queue retry line-event:<id>`.
EVENTS = queue.QueueSpec(
    name="line-event",
    label="LINE受信イベント",
    model=LineEvent,
    pending=EventStatus.PENDING,
    claimed=EventStatus.PROCESSING,
    failed=EventStatus.FAILED,
    describe=_describe_event,
    time_column="received_at",
)


def claim_next(limit: int) -> list[int]:
    """The first unfinished event of each chat that is due, claimed through the work queue.

    An event waits while an earlier one of its chat is still pending or being processed (even
    one waiting to be retried), so the timeline keeps LINE's order within a chat.
    """
    e = LineEvent.__table__
    p = e.alias("earlier")
    unfinished = (EventStatus.PENDING.value, EventStatus.PROCESSING.value)
    earlier_exists = (
        sa.select(p.c.id)
        .where(
            p.c.chat_key == e.c.chat_key,
            p.c.status.in_(unfinished),
            sa.or_(
                p.c.timestamp_ms < e.c.timestamp_ms,
                sa.and_(p.c.timestamp_ms == e.c.timestamp_ms, p.c.id < e.c.id),
            ),
        )
        .exists()
    )
    return queue.claim(EVENTS, limit, where=[~earlier_exists], order_by=(e.c.timestamp_ms, e.c.id))


CHAT_BATCH = 20  # events of one chat processed in one short transaction


def chat_run(event_id: int) -> list[int]:
    """The claimed event's id, then those of the due pending events right after it in its chat."""
    first = db.session.get(LineEvent, event_id)
    if first is None or first.status != EventStatus.PROCESSING:
        return []
    followers = db.session.execute(
        sa.select(LineEvent.id, LineEvent.status, LineEvent.next_attempt_at)
        .where(
            LineEvent.chat_key == first.chat_key,
            LineEvent.status.in_((EventStatus.PENDING, EventStatus.PROCESSING)),
            sa.or_(
                LineEvent.timestamp_ms > first.timestamp_ms,
                sa.and_(LineEvent.timestamp_ms == first.timestamp_ms, LineEvent.id > first.id),
            ),
        )
        .order_by(LineEvent.timestamp_ms, LineEvent.id)
        .limit(CHAT_BATCH - 1)
    ).all()
    now = utcnow()
    ids = [first.id]
    for row in followers:
        if row.status != EventStatus.PENDING or row.next_attempt_at > now:
            break  # claimed elsewhere, or waiting for its retry: it keeps its place
        ids.append(row.id)
    return ids


def finish(event: LineEvent) -> None:
    handled = _dispatch(event)
    event.status = EventStatus.DONE if handled else EventStatus.IGNORED
    event.processed_at = utcnow()
    queue.release(event)
    event.last_error = None


def _event_time(event: LineEvent) -> datetime:
    if event.timestamp_ms:
        return datetime.fromtimestamp(event.timestamp_ms / 1000, UTC)
    return event.received_at


def _dispatch(event: LineEvent) -> bool:
    data = event.payload
    kind = data.get("type")
    contact = contact_for(event.chat_key)
    at = _event_time(event)
    token = data.get("replyToken")
    if token and utcnow() - at < REPLY_TOKEN_LIFETIME:
        contact.reply_token = token
        contact.reply_token_expires_at = at + REPLY_TOKEN_LIFETIME
    if kind == "follow":
        return _on_follow(contact, at)
    if kind == "unfollow":
        contact.following = False
        contact.unfollowed_at = at
        contact.reply_token = None
        return True
    if kind == "postback":
        if postback_action(data.get("postback") or {}) == SATISFACTION_ACTION:
            return on_satisfaction(contact, event)
        return _on_postback(contact, data.get("postback") or {})
    if kind == "message":
        return _on_message(contact, data.get("message") or {}, at, event)
    log.info("line event type not handled: %s", str(kind)[:40])
    return False


def _on_follow(contact: LineContact, at: datetime) -> bool:
    profile_due(contact)
    contact.following = True
    contact.followed_at = at
    contact.unfollowed_at = None
    enqueue(contact, notifications.greeting(at), quick_reply=LINK_STEP)
    return True


POSTBACK_ACTIONS = {"consult", "booking", "faq", "link", "notices", "notice"}


def postback_action(postback: dict) -> str:
    raw = str(postback.get("data") or "")
    return (parse_qs(raw).get("action") or [raw])[0]


def _on_postback(contact: LineContact, postback: dict) -> bool:
    action = postback_action(postback)
    if action in ("notices", "notice"):
        # The citizen's own consent to notices, one tap each (channels.line.notices).
        from channels.line import notices

        answer = notices.on_postback(contact, str(postback.get("data") or ""))
        if answer is None:
            return False
        text, buttons = answer
        enqueue(contact, text, quick_reply=buttons)
        return True
    if action not in notifications.MENU_ACTIONS:
        log.info("line postback not handled")
        return False
    enqueue(contact, notifications.menu_answer(action))
    return True


def _subject(text: str) -> str:
    first = " ".join(text.split())[:40]
    return f"LINE：{first}" if first else "LINEでのご相談"


def _ticket_for(contact: LineContact, summary: str, at: datetime) -> tuple[Ticket, bool]:
    ticket = open_ticket(contact)
    if ticket is not None:
        if ticket.status in (Status.AWAITING_REPLY, Status.RESOLVED):
            tickets.change_status(
                SYSTEM, ticket, Status.IN_PROGRESS, "LINEで返信がありました", internal=True
            )
        return ticket, False
    ticket = tickets.create_ticket(
        SYSTEM, channel=Channel.LINE, subject=_subject(summary), citizen=contact.citizen, at=at
    )
    db.session.add(LineTicket(ticket=ticket, contact=contact))
    return ticket, True


def _describe(message: dict) -> tuple[str, dict]:
    """The timeline text of a message that is not plain text, and what to keep of it."""
    kind = message.get("type")
    if kind == "sticker":
        words = "、".join((message.get("keywords") or [])[:5])
        text = message.get("text") or words
        return f"［スタンプ］{text}".rstrip(), {
            "package_id": message.get("packageId"),
            "sticker_id": message.get("stickerId"),
        }
    if kind == "location":
        parts = [message.get("title"), message.get("address")]
        where = " ".join(p for p in parts if p)
        lat, lon = message.get("latitude"), message.get("longitude")
        return f"［位置情報］{where}（緯度 {lat}、経度 {lon}）", {"latitude": lat, "longitude": lon}
    if kind in MEDIA_KINDS:
        name = message.get("fileName")
        label = MEDIA_KINDS[kind]
        return f"［{label}］{name or ''}".rstrip(), {"media": kind}
    return f"［{kind}］", {}


def _link_step_taken(event: LineEvent) -> bool:
    """Whether the citizen's last step before this message, within 30 minutes, was the tap on
    「相談番号と連携する」. Read from the chat's stored events, which are processed in order."""
    e = LineEvent
    previous = db.session.scalar(
        sa.select(e)
        .where(
            e.chat_key == event.chat_key,
            e.id != event.id,
            e.event_type.in_(("message", "postback")),
            sa.or_(
                e.timestamp_ms < event.timestamp_ms,
                sa.and_(e.timestamp_ms == event.timestamp_ms, e.id < event.id),
            ),
        )
        .order_by(e.timestamp_ms.desc(), e.id.desc())
        .limit(1)
    )
    if previous is None or previous.event_type != "postback":
        return False
    if postback_action((previous.payload or {}).get("postback") or {}) != "link":
        return False
    return event.timestamp_ms - previous.timestamp_ms <= LINK_STEP_LIFETIME_MS


def _on_message(contact: LineContact, message: dict, at: datetime, event: LineEvent) -> bool:
    """Every message goes on the citizen's ticket first, whatever else it triggers (issue 14);
    a text right after the explicit link step is also tried as a number and a code."""
    profile_due(contact)
    kind = message.get("type")
    text = strip_controls(message.get("text"))  # PostgreSQL refuses NUL; none is meant
    link = None
    if kind == "text" and _link_step_taken(event):
        link = LINK_PATTERN.search(unicodedata.normalize("NFKC", text))
    if kind == "text":
        body, extra = text, {}
    else:
        body, extra = _describe(message)
        body = strip_controls(body)
    if link is not None:
        extra = {"link_attempt": True}
    # A link attempt's ticket is not named after the code it carries.
    ticket, _created = _ticket_for(contact, "相談番号との連携" if link else body, at)
    tickets.add_entry(
        ticket,
        EntryKind.MESSAGE_IN,
        body=body,
        at=at,
        data={"line_event": event.id, "line_type": kind, **extra},
    )
    if link is not None:
        # Its answer is the link's outcome: no acknowledgement, no FAQ search of the code.
        return self_link(contact, link, at)
    if kind in MEDIA_KINDS and (message.get("contentProvider") or {}).get("type", "line") == "line":
        db.session.add(
            LineMedia(
                ticket_id=ticket.id,
                message_id=str(message.get("id"))[:64],
                kind=kind,
                file_name=(strip_controls(message.get("fileName")) or None),
                status=MediaStatus.PENDING,
                next_attempt_at=utcnow(),
                created_at=utcnow(),
            )
        )
    first = contact.first_message_at is None
    if first:
        contact.first_message_at = at
    open_now = calendar.centre_is_open(at)
    if first or not open_now:
        _auto_answer(contact, ticket, at, open_now, first)
    if kind == "text":
        signals.message_received.send(ticket, text=text, at=at)
    return True


def _auto_answer(
    contact: LineContact, ticket: Ticket, at: datetime, open_now: bool, first: bool
) -> None:
    """In hours, the first message is acknowledged; out of hours, the first message of each
    closed spell is told when a consultant will answer (once: not again for every message).
    Whether to answer is the kernel's automatic-answer policy (consult.services.auto_answer)."""
    kind = Automatic.ACK if open_now else Automatic.OUT_OF_HOURS
    if not auto_answer.may_answer_automatically(ticket, kind, at, first_message=first):
        return
    opening = None
    if open_now:
        text = notifications.received(ticket)
    else:
        opening = auto_answer.spell_end(at)
        text = notifications.out_of_hours(ticket, at, opening)
    record_message(contact, ticket, text, automatic=kind, auto_until=opening)
