"""LINE intake and delivery: store the webhook first, process its events later, answer by outbox.

The webhook only verifies the signature and stores the raw body (one INSERT); the processor
expands each stored body into one row per event (unique on ``webhookEventId``), turns events
into tickets and timeline entries, one chat at a time in LINE's order, and retries what failed.
Replies leave through the outbox, whose LINE deliverer pushes with a fixed ``X-Line-Retry-Key``
per message (or uses a still-valid reply token).

LINE user ids are personal data: they live in ``line_contact`` and in the stored webhook bodies
only; logs, outbox recipients and URLs carry the contact's row id instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from channels.line import client
from channels.line.models import (
    EventStatus,
    LineContact,
    LineDelivery,
    LineEvent,
    LineLinkCode,
    LineMedia,
    LineTicket,
    MediaStatus,
)
from consult import signals, urls
from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, Status, Ticket
from consult.services import (
    audit,
    auto_answer,
    calendar,
    merge,
    outbox,
    queue,
    safe_files,
    sanitise,
    search,
    tickets,
)
from consult.services.actor import DESK_ROLES, SYSTEM, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import strip_controls
from consult.services.outbox import PermanentFailure, TemporaryFailure
from consult.timeline import Automatic
from consult.timeutil import WEEKDAYS_JA, to_tokyo, utcnow

log = logging.getLogger("madoguchi.line")

CHANNEL = "line"
MAX_TEXT = 4800  # LINE allows 5,000 characters per text message; room for the sender line
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)  # LINE: about a minute; keep a margin
MEDIA_KINDS = {"image": "画像", "video": "動画", "audio": "音声", "file": "ファイル"}
LINK_CODE_LIFETIME = timedelta(hours=24)
LINK_CODE_MAX_FAILURES = 5
LINK_PATTERN = re.compile(r"(\d{4}-\d{6})\D{1,10}(\d{6})")
# Linking is an explicit step: the citizen taps this (a quick reply, or the rich menu's postback
# ``action=link``), then sends the number and the code. Text alone never links.
LINK_STEP_LABEL = "相談番号と連携する"
LINK_STEP = [{"label": LINK_STEP_LABEL, "data": "action=link"}]
LINK_STEP_LIFETIME_MS = 30 * 60 * 1000


class InvalidSignature(Exception):
    """The X-Line-Signature is missing or does not match the body: nothing is stored."""


def settings() -> client.LineSettings:
    from channels.line.settings import LineSettings

    return client.settings_from(LineSettings.current())


def _public_url(path: str) -> str:
    return urls.base_url() + path


# --- intake ------------------------------------------------------------------------------------


def verify(body: str, signature: str | None, secret: str) -> None:
    """Raise InvalidSignature unless LINE signed this body (the SDK's constant-time check).

    Nothing else is read here: the body is stored as it came (channels.line.intake) and read
    by the processor (`expand_pending`), so the webhook answers LINE at once under any load.
    """
    # WebhookParser.parse is not used for the body: on an old-shape event of an unknown type it
    # raises instead of returning UnknownEvent.
    from linebot.v3.webhook import SignatureValidator

    if not signature or not SignatureValidator(secret).validate(body, signature):
        raise InvalidSignature()


def _events_of(body: str) -> list:
    """The events of a stored body; a signed body that is not a webhook body has none."""
    try:
        events = json.loads(body).get("events")
    except (ValueError, AttributeError):
        events = None
    if not isinstance(events, list):
        log.warning("line delivery without an events list: kept, nothing to process")
        return []
    return events


EXPAND_BATCH = 50


def expand_pending(limit: int = EXPAND_BATCH) -> int:
    """Write the event rows of stored deliveries not yet expanded; returns how many deliveries.

    Each delivery is claimed by a conditional UPDATE of ``expanded_at`` and its events are
    inserted in the same transaction, so two processes never expand one delivery twice, and a
    failure leaves it waiting (nothing is lost). Events already stored (LINE's redeliveries) are
    skipped by the unique ``webhook_event_id``.
    """
    table = LineDelivery.__table__
    ids = list(
        db.session.scalars(
            sa.select(table.c.id).where(table.c.expanded_at.is_(None)).order_by(table.c.id)
            .limit(limit)
        )
    )  # fmt: skip
    done = 0
    for delivery_id in ids:
        now = utcnow()
        body = db.session.scalar(sa.select(table.c.body).where(table.c.id == delivery_id))
        events = _events_of(body or "")
        claimed = db.session.execute(
            sa.update(table)
            .where(table.c.id == delivery_id, table.c.expanded_at.is_(None))
            .values(expanded_at=now, event_count=len(events))
        )
        if claimed.rowcount != 1:
            db.session.commit()
            continue  # another process expanded it
        _insert_events(delivery_id, events, now)
        db.session.commit()
        done += 1
    return done


def _insert_events(delivery_id: int, raw_events: list, now: datetime) -> int:
    """One row per event (duplicates ignored); events the SDK cannot read as a known type (a
    future type, or a known one missing a required field) are stored as ignored and logged."""
    from linebot.v3.webhooks import Event

    rows = []
    for event in raw_events:
        if not isinstance(event, dict):
            log.info("line event ignored: not an object")
            continue
        try:
            Event.from_dict(event)  # a known type with its required fields
            known = True
        except ValueError:  # pydantic's ValidationError is one too
            known = False
        source = event.get("source") or {}
        chat_key = source.get("userId") or source.get("groupId") or source.get("roomId") or "-"
        event_type = str(event.get("type") or "unknown")[:40]
        status = EventStatus.PENDING
        if not known or event.get("mode") == "standby" or source.get("type") != "user":
            status = EventStatus.IGNORED
            log.info("line event ignored: type=%s known=%s", event_type, known)
        rows.append(
            {
                "webhook_event_id": _event_key(event),
                "delivery_id": delivery_id,
                "chat_key": str(chat_key)[:64],
                "event_type": event_type,
                "timestamp_ms": _timestamp(event),
                "is_redelivery": bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                "payload": event,
                "status": status,
                "attempts": 0,
                "next_attempt_at": now,
                "received_at": now,
            }
        )
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = LineEvent.__table__
    # Counted by RETURNING, not rowcount: an executemany INSERT .. ON CONFLICT on PostgreSQL
    # (psycopg 3, SQLAlchemy's insertmanyvalues) reports rowcount -1.
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["webhook_event_id"])
        .returning(table.c.id)
    )
    return len(db.session.execute(statement, rows).all())


def warm_up() -> None:
    """Import the SDK's webhook modules now (about a second), not in the first webhook request.

    Called when the app is created with LINE configured; the Messaging API client
    (``linebot.v3.messaging``, slower still) is only needed where messages are sent.
    """
    from linebot.v3.webhook import SignatureValidator  # noqa: F401
    from linebot.v3.webhooks import Event  # noqa: F401


def _timestamp(event: dict) -> int:
    try:
        return int(event.get("timestamp") or 0)
    except (TypeError, ValueError):
        return 0  # an unreadable time must not stop the delivery; the event keeps arrival order


def _event_key(event: dict) -> str:
    """LINE's webhookEventId; older bodies without one are keyed by a hash of the event."""
    key = event.get("webhookEventId")
    if key:
        return str(key)[:80]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
    return f"sha256:{digest[:64]}"


# --- processing --------------------------------------------------------------------------------


def _describe_event(event: LineEvent) -> str:
    return f"LINEの{event.event_type}イベント"


def _describe_media(media: LineMedia) -> str:
    ticket = db.session.get(Ticket, media.ticket_id)
    kind = MEDIA_KINDS.get(media.kind, media.kind)
    return f"LINEで受け取った{kind}" + (f"（相談番号 {ticket.number}）" if ticket else "")


# The work queues of LINE (consult.services.queue): claimed, kept by heartbeats, retried.
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
MEDIA = queue.QueueSpec(
    name="line-media",
    label="LINEの画像・ファイルの取得",
    model=LineMedia,
    pending=MediaStatus.PENDING,
    claimed=MediaStatus.PENDING,
    failed=MediaStatus.FAILED,
    describe=_describe_media,
)


def _claim_next(limit: int) -> list[int]:
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


def process_pending(max_rounds: int = 1000, batch: int = 100) -> int:
    """Process every due event; returns how many were processed (or ignored) successfully."""
    config = current_app.config["MADOGUCHI"]
    max_attempts = int(config.get("LINE_MAX_EVENT_ATTEMPTS", 8))
    done = 0
    # The core (MADOGUCHI_ROLE=core) receives no webhook to step aside for: its bodies come
    # from the transfer, so it processes them at once (the pacer cost up to its 2 s deferral).
    pacer = _BurstPacer(config, idle=_role() == "core")
    for _ in range(max_rounds):
        _yield_to_intake()
        # Every stored body first, so that a chat's events are ordered among all that arrived.
        pacer.wait()
        while expand_pending():
            _yield_to_intake()
            pacer.wait()
        ids = _claim_next(batch)
        if not ids:
            break
        for event_id in ids:
            _yield_to_intake()
            pacer.wait()
            done += _process_chat(event_id, max_attempts)
    return done


class _BurstPacer:
    """Processing steps aside while LINE is delivering a burst, in any process.

    A small centre runs the web and the worker on the same few CPUs; the webhook must answer
    LINE at once, and a message reaching the desk a second later matters to no one. So while a
    body was stored less than LINE_BURST_QUIET_MS ago, processing waits, but never more than
    LINE_BURST_MAX_DEFER_MS in a row: then one chat is processed, and the waiting starts again.
    """

    PAUSE_SECONDS = 0.05

    def __init__(self, config: dict, idle: bool = False):
        quiet_ms = 0 if idle else int(config.get("LINE_BURST_QUIET_MS", 300))
        self.quiet = timedelta(milliseconds=quiet_ms)
        self.max_defer = int(config.get("LINE_BURST_MAX_DEFER_MS", 2000)) / 1000

    def wait(self) -> None:
        if not self.quiet:
            return
        started = time.monotonic()
        while time.monotonic() - started < self.max_defer and self._burst():
            time.sleep(self.PAUSE_SECONDS)

    def _burst(self) -> bool:
        table = LineDelivery.__table__
        latest = db.session.scalar(
            sa.select(table.c.received_at).order_by(table.c.id.desc()).limit(1)
        )
        db.session.commit()  # no snapshot held while waiting
        return latest is not None and utcnow() - latest < self.quiet


CHAT_BATCH = 20  # events of one chat processed in one short transaction


def _process_chat(event_id: int, max_attempts: int) -> int:
    """The claimed event and the due events that follow it in its chat, in LINE's order, in one
    transaction. When one fails, the chat is done again one event per transaction, so the events
    before the failing one are kept and the failing one waits for its retry (nothing after it is
    processed out of order). Only while the claim is still ours (`queue.hold`)."""
    if not queue.hold(EVENTS, event_id):
        db.session.commit()
        return 0
    ids = _chat_run(event_id)
    if not ids:
        db.session.commit()
        return 0
    try:
        for one in ids:
            _finish(db.session.get(LineEvent, one))
        db.session.commit()
        return len(ids)
    except Exception:
        db.session.rollback()
    done = 0
    for one in ids:
        # Each in its own transaction now: the ones after the first are claimed first, since
        # once the first is done another worker may claim them.
        if one != event_id and not queue.claim(EVENTS, 1, ids=[one]):
            break
        if not queue.hold(EVENTS, one):
            db.session.rollback()
            break
        event = db.session.get(LineEvent, one)
        if event is None or event.status != EventStatus.PROCESSING:
            db.session.rollback()
            break
        try:
            _finish(event)
            db.session.commit()
            done += 1
        except Exception as exc:
            db.session.rollback()
            _failed(one, exc, max_attempts)
            break
    return done


def _chat_run(event_id: int) -> list[int]:
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


def _finish(event: LineEvent) -> None:
    handled = _dispatch(event)
    event.status = EventStatus.DONE if handled else EventStatus.IGNORED
    event.processed_at = utcnow()
    queue.release(event)
    event.last_error = None


def _failed(event_id: int, exc: Exception, max_attempts: int) -> None:
    # The exception's type only: its text may quote the message.
    log.warning("line event %s failed: %s", event_id, type(exc).__name__, exc_info=False)
    if not queue.hold(EVENTS, event_id):
        db.session.rollback()
        return
    event = db.session.get(LineEvent, event_id)
    # Given up after max_attempts: listed for administrators (queue), no longer blocks its chat.
    queue.settle_failure(
        EVENTS, event, f"処理中にエラーが発生しました（{type(exc).__name__}）", max_attempts
    )
    db.session.commit()


def reprocess(event_id: int) -> None:
    """An administrator asks for a failed event to be tried again."""
    event = db.session.get(LineEvent, event_id)
    if event is None:
        raise NotFound("イベントが見つかりません。")
    event.status = EventStatus.PENDING
    event.next_attempt_at = utcnow()
    queue.release(event)


def _event_time(event: LineEvent) -> datetime:
    if event.timestamp_ms:
        return datetime.fromtimestamp(event.timestamp_ms / 1000, UTC)
    return event.received_at


def _dispatch(event: LineEvent) -> bool:
    data = event.payload
    kind = data.get("type")
    contact = _contact(event.chat_key)
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
        if _postback_action(data.get("postback") or {}) == SATISFACTION_ACTION:
            return _on_satisfaction(contact, event)
        return _on_postback(contact, data.get("postback") or {})
    if kind == "message":
        return _on_message(contact, data.get("message") or {}, at, event)
    log.info("line event type not handled: %s", str(kind)[:40])
    return False


def _contact(user_id: str) -> LineContact:
    contact = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == user_id))
    if contact is None:
        contact = LineContact(user_id=user_id, following=True, created_at=utcnow())
        db.session.add(contact)
        db.session.flush()
    return contact


def _on_follow(contact: LineContact, at: datetime) -> bool:
    _profile_due(contact)
    contact.following = True
    contact.followed_at = at
    contact.unfollowed_at = None
    name = current_app.config["MADOGUCHI"]["CENTRE_NAME"]
    greeting = (
        f"{name}の公式アカウントです。友だち追加ありがとうございます。\n"
        "このトークでご相談をお受けしています。内容を送っていただければ、相談員がお返事します。\n"
        f"受付時間：{calendar.hours_summary(calendar.to_tokyo_date(at))}\n"
        f"センターで相談番号とLINE連携コードを受け取った方は、「{LINK_STEP_LABEL}」を押してから、"
        "相談番号とコードを送ってください。\n"
        "【個人情報の取扱い】お送りいただいた内容は、ご相談への対応のためにだけ利用し、"
        "市の個人情報保護の規定に従って管理します。マイナンバーや口座の暗証番号は送らないでください。\n"
        f"よくある質問：{_public_url('/faq')}"
    )
    _enqueue(contact, greeting, quick_reply=LINK_STEP)
    return True


POSTBACK_ACTIONS = {"consult", "booking", "faq", "link", "notices", "notice"}


def _postback_action(postback: dict) -> str:
    raw = str(postback.get("data") or "")
    return (parse_qs(raw).get("action") or [raw])[0]


def _on_postback(contact: LineContact, postback: dict) -> bool:
    action = _postback_action(postback)
    if action in ("notices", "notice"):
        # The citizen's own consent to notices, one tap each (channels.line.notices).
        from channels.line import notices

        answer = notices.on_postback(contact, str(postback.get("data") or ""))
        if answer is None:
            return False
        text, buttons = answer
        _enqueue(contact, text, quick_reply=buttons)
        return True
    if action == "link":
        text = (
            "センターでお渡しした相談番号と6桁のコードを、このトークに送ってください"
            "（例：2026-000123 123456）。30分以内にお送りください。"
        )
    elif action == "consult":
        text = (
            "ご相談の内容を、このトークにそのまま送ってください。相談員が順にお返事します。\n"
            f"受付時間：{calendar.hours_summary()}"
        )
    elif action == "booking":
        text = (
            "窓口・電話・オンラインでのご相談は、こちらから予約できます。\n"
            f"{_public_url('/booking/')}"
        )
    elif action == "faq":
        text = f"よくある質問はこちらです。\n{_public_url('/faq')}"
    else:
        log.info("line postback not handled")
        return False
    _enqueue(contact, text)
    return True


# --- satisfaction (満足度): one quick reply when a LINE case closes ----------------------------

SATISFACTION_ACTION = "satisfaction"
SATISFACTION_QUESTION = (
    "ご相談ありがとうございました。対応にご満足いただけましたか。"
    "（回答は任意です。お名前や相談内容とは結び付けずに集計します）"
)
SATISFACTION_CHOICES = (
    (5, "満足"),
    (4, "やや満足"),
    (3, "ふつう"),
    (2, "やや不満"),
    (1, "不満"),
)


def ask_satisfaction(ticket: Ticket, **_kwargs) -> OutboxMessage | None:
    """The ticket-closed receiver: the question as a quick reply, through the outbox, to a
    LINE case's citizen who still follows the account. Asked once per ticket."""
    from consult.voice import services as voice

    link = _line_ticket(ticket)
    if link is None or not link.contact.following:
        return None
    token = voice.ask(ticket, CHANNEL)
    if token is None:
        return None
    quick_reply = [
        {"label": label, "data": f"action={SATISFACTION_ACTION}&s={score}&t={token}"}
        for score, label in SATISFACTION_CHOICES
    ]
    message, _entry = tickets.record_outgoing(
        ticket,
        channel=CHANNEL,
        recipient=_recipient(link.contact),
        body=SATISFACTION_QUESTION,
        entry_body="満足度のおたずね（クイックリプライ）を送りました",
        headers=_headers(link.contact, quick_reply=quick_reply),
    )
    return message


def _on_satisfaction(contact: LineContact, event: LineEvent) -> bool:
    """A tap on a satisfaction quick reply: store the answer (anonymous, single-use), thank
    the citizen, and take the score and the token out of the stored webhook body and event,
    which carry the LINE user id (so the kept raw input cannot tie the answer to the person)."""
    from consult.voice import services as voice

    raw = str((event.payload.get("postback") or {}).get("data") or "")
    values = parse_qs(raw)
    token = (values.get("t") or [""])[0]
    score = (values.get("s") or [""])[0]
    try:
        voice.answer(token, score)
        text = "ご回答ありがとうございました。今後の対応の改善に役立てます。"
    except voice.AlreadyAnswered:
        text = "このアンケートは回答済みか、回答期限が過ぎています。ご協力ありがとうございました。"
    except ValidationFailed:
        text = "回答を受け付けられませんでした。表示された選択肢から選んでください。"
    _scrub_postback(event, raw)
    _enqueue(contact, text)
    return True


def _scrub_postback(event: LineEvent, raw: str) -> None:
    payload = json.loads(json.dumps(event.payload))
    payload.setdefault("postback", {})["data"] = f"action={SATISFACTION_ACTION}"
    event.payload = payload
    delivery = db.session.get(LineDelivery, event.delivery_id)
    if delivery is not None and raw:
        body = delivery.body
        for form in {raw, json.dumps(raw)[1:-1], json.dumps(raw, ensure_ascii=True)[1:-1]}:
            body = body.replace(form, f"action={SATISFACTION_ACTION}")
        delivery.body = body


def _open_ticket(contact: LineContact) -> Ticket | None:
    """The ticket a message from this contact goes on: its open LINE ticket; else, when its
    latest LINE ticket was merged into another, that survivor while open; else, when the
    contact came to its citizen by a merge of citizens, that citizen's newest open ticket."""
    own = db.session.scalar(
        sa.select(Ticket)
        .join(LineTicket, LineTicket.ticket_id == Ticket.id)
        .where(LineTicket.contact_id == contact.id, Ticket.is_open.is_(True))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if own is not None:
        return own
    latest = db.session.scalar(
        sa.select(Ticket)
        .join(LineTicket, LineTicket.ticket_id == Ticket.id)
        .where(LineTicket.contact_id == contact.id)
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if latest is not None and latest.merged_into_id:
        survivor = merge.resolve_ticket(latest)
        if survivor.is_open:
            return survivor
    if contact.citizen_id and merge.moved_by_citizen_merge(
        "line_contact", contact.id, contact.citizen_id
    ):
        return db.session.scalar(
            sa.select(Ticket)
            .where(
                Ticket.citizen_id == contact.citizen_id,
                Ticket.is_open.is_(True),
                Ticket.merged_into_id.is_(None),
            )
            .order_by(Ticket.id.desc())
            .limit(1)
        )
    return None


def _subject(text: str) -> str:
    first = " ".join(text.split())[:40]
    return f"LINE：{first}" if first else "LINEでのご相談"


def _ticket_for(contact: LineContact, summary: str, at: datetime) -> tuple[Ticket, bool]:
    ticket = _open_ticket(contact)
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
    if _postback_action((previous.payload or {}).get("postback") or {}) != "link":
        return False
    return event.timestamp_ms - previous.timestamp_ms <= LINK_STEP_LIFETIME_MS


def _on_message(contact: LineContact, message: dict, at: datetime, event: LineEvent) -> bool:
    """Every message goes on the citizen's ticket first, whatever else it triggers (issue 14);
    a text right after the explicit link step is also tried as a number and a code."""
    _profile_due(contact)
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
        return _self_link(contact, link, at)
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


def _opening_text(opening: datetime) -> str:
    local = to_tokyo(opening)
    return f"{local.month}月{local.day}日({WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"


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
        text = (
            f"メッセージを受け付けました（相談番号 {ticket.number}）。\n"
            "相談員が内容を確認してお返事します。しばらくお待ちください。"
        )
    else:
        opening = auto_answer.spell_end(at)
        text = (
            f"メッセージを受け付けました（相談番号 {ticket.number}）。\n"
            "ただいま受付時間外です。"
            f"{_opening_text(opening)}以降に、相談員が順にお返事します。\n"
            f"受付時間：{calendar.hours_summary(calendar.to_tokyo_date(at))}"
        )
    _record(contact, ticket, text, automatic=kind, auto_until=opening)


def _record(
    contact: LineContact,
    ticket: Ticket,
    text: str,
    *,
    entry_body: str | None = None,
    author=None,
    sender: str | None = None,
    automatic: Automatic | None = None,
    faq_entry_id: int | None = None,
    auto_until: datetime | None = None,
) -> OutboxMessage:
    """A message to the contact about this ticket: outbox row and timeline entry together,
    through the kernel's tickets.record_outgoing, with LINE's headers (retry key, reply token)."""
    message, _entry = tickets.record_outgoing(
        ticket,
        channel=CHANNEL,
        recipient=_recipient(contact),
        body=text,
        entry_body=entry_body,
        headers=_headers(contact, sender=sender),
        author=author,
        automatic=automatic,
        faq_entry_id=faq_entry_id,
        auto_until=auto_until,
    )
    return message


def _recipient(contact: LineContact) -> str:
    return f"line-contact:{contact.id}"


def _headers(
    contact: LineContact, *, sender: str | None = None, quick_reply: list[dict] | None = None
) -> dict:
    """An outbox row's LINE headers, with its retry key fixed now (one per message), and the
    contact's reply token while it is fresh (used once: taken from the contact here).

    ``quick_reply``: postback buttons shown under the message (label, data), e.g. LINK_STEP."""
    headers: dict = {"retry_key": str(uuid.uuid4())}
    if sender:
        headers["sender"] = sender
    if quick_reply:
        headers["quick_reply"] = quick_reply
    now = utcnow()
    expires = contact.reply_token_expires_at
    if contact.reply_token and expires is not None and expires > now:
        headers["reply_token"] = contact.reply_token
        headers["reply_until"] = contact.reply_token_expires_at.isoformat()
        contact.reply_token = None  # a reply token is good for one reply only
        contact.reply_token_expires_at = None
    return headers


def _enqueue(
    contact: LineContact, text: str, *, quick_reply: list[dict] | None = None
) -> OutboxMessage:
    """A message to the contact that belongs to no ticket (greeting, menu answers, the link's
    outcome): an outbox row alone. Messages about a ticket go through `_record`."""
    return outbox.enqueue(
        channel=CHANNEL,
        recipient=_recipient(contact),
        body=text,
        headers=_headers(contact, quick_reply=quick_reply),
    )


# --- linking -----------------------------------------------------------------------------------


def _code_hash(ticket_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"line-link:{ticket_id}:{code}".encode(), hashlib.sha256).hexdigest()


def issue_link_code(actor: Actor, ticket: Ticket) -> str:
    """A six-digit code, valid 24 hours, that links a LINE account to this ticket's citizen.

    Only the code's keyed hash is stored; staff read the code out or hand it over once.
    """
    actor.require(*DESK_ROLES)
    if ticket.citizen_id is None:
        raise ValidationFailed("先に相談者を登録してから、LINE連携コードを発行してください。")
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    # An older code of the same ticket stops working: one code at a time.
    db.session.execute(
        sa.update(LineLinkCode)
        .where(LineLinkCode.ticket_id == ticket.id, LineLinkCode.used_at.is_(None))
        .values(expires_at=now)
    )
    db.session.add(
        LineLinkCode(
            ticket_id=ticket.id,
            code_hash=_code_hash(ticket.id, code),
            created_by_id=actor.staff_id,
            created_at=now,
            expires_at=now + LINK_CODE_LIFETIME,
        )
    )
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=actor.staff,
        body="LINE連携コードを発行しました（24時間有効）",
    )
    audit.record(actor, "create", "line_link_code", ticket.number)
    return code


def _self_link(contact: LineContact, match: re.Match, at: datetime) -> bool:
    """The number and code a citizen sent after the explicit step; the message itself is
    already on their ticket."""
    number, code = match.group(1), match.group(2)
    now = utcnow()
    target = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
    live = []
    if target is not None:
        live = list(
            db.session.scalars(
                sa.select(LineLinkCode).where(
                    LineLinkCode.ticket_id == target.id,
                    LineLinkCode.used_at.is_(None),
                    LineLinkCode.expires_at > now,
                    LineLinkCode.failures < LINK_CODE_MAX_FAILURES,
                )
            )
        )
    wanted = _code_hash(target.id, code) if target is not None else ""
    found = next((c for c in live if hmac.compare_digest(c.code_hash, wanted)), None)
    if found is None or target.citizen_id is None:
        for item in live:
            item.failures += 1
        log.info("line self-link refused: contact=%s", contact.id)
        _enqueue(
            contact,
            "相談番号またはコードが正しくないか、有効期限が切れています。"
            "お送りいただいた内容は、ご相談として記録しました。\n"
            f"連携する場合は、もう一度「{LINK_STEP_LABEL}」を押してから、相談番号とコードを"
            "お送りください。期限が切れた場合は、センターで新しいコードを受け取ってください。",
            quick_reply=LINK_STEP,
        )
        return True
    found.used_at = now
    contact.citizen_id = target.citizen_id
    search.touch(contact_ticket_ids(contact))  # the display name now finds the citizen's cases
    tickets.add_entry(
        target,
        EntryKind.CITIZEN_LINK,
        body="相談者がLINE連携コードでLINEアカウントを連携しました",
        data={"line_contact": contact.id},
        at=at,
    )
    current = _open_ticket(contact)
    if current is not None and current.citizen_id is None:
        current.citizen_id = target.citizen_id
        tickets.add_entry(
            current,
            EntryKind.CITIZEN_LINK,
            body=f"LINE連携コードで相談者を紐付けました（相談番号 {target.number}）",
            data={"citizen_id": target.citizen_id, "line_contact": contact.id},
            at=at,
        )
    _enqueue(
        contact,
        "LINEアカウントの連携が完了しました。このトークでのご相談は、"
        "センターでお伺いした内容と合わせて対応します。",
    )
    return True


def link_contact(actor: Actor, ticket: Ticket) -> None:
    """The consultant links the LINE contact of this ticket to the ticket's citizen."""
    actor.require(*DESK_ROLES)
    ticket.ensure_open()
    link = _line_ticket(ticket)
    if link is None:
        raise ValidationFailed("この相談はLINEの相談ではありません。")
    if ticket.citizen_id is None:
        raise ValidationFailed("先に相談者を登録してから、LINEの連絡先と紐付けてください。")
    if link.contact.citizen_id == ticket.citizen_id:
        return
    link.contact.citizen_id = ticket.citizen_id
    search.touch(contact_ticket_ids(link.contact))
    tickets.add_entry(
        ticket,
        EntryKind.CITIZEN_LINK,
        author=actor.staff,
        body="LINEの連絡先を相談者に紐付けました",
        data={"citizen_id": ticket.citizen_id, "line_contact": link.contact_id},
    )
    audit.record(actor, "update", "line_contact", str(link.contact_id), "citizen")


# --- replies and delivery ----------------------------------------------------------------------


def _line_ticket(ticket: Ticket) -> LineTicket | None:
    return db.session.scalar(sa.select(LineTicket).where(LineTicket.ticket_id == ticket.id))


def sender_line(display_name: str) -> str:
    """How a reply names its author to the citizen: the display name only, never the full name."""
    return f"［{display_name}］"


def send_reply(actor: Actor, ticket: Ticket, text: str) -> OutboxMessage:
    """The consultant's answer: a timeline entry and an outbox row in the same transaction."""
    staff = actor.require(*DESK_ROLES)
    ticket.ensure_open()
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("返信の本文を入力してください。")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"返信は{MAX_TEXT:,}文字以内で入力してください（現在{len(text):,}文字）。"
        )
    link = _line_ticket(ticket)
    if link is None:
        raise ValidationFailed("この相談はLINEの相談ではないため、LINEで返信できません。")
    if not link.contact.following:
        raise ValidationFailed(
            "相談者がこのアカウントをブロック（友だち解除）しているため、LINEで返信できません。"
        )
    display = staff.display_name if staff is not None else "市民相談センター"
    message = _record(
        link.contact,
        ticket,
        f"{sender_line(display)}\n{text}",
        entry_body=text,
        author=staff,
        sender=display,
    )
    tickets.take_if_unowned(actor, ticket)
    if ticket.status == Status.RECEIVED:
        tickets.change_status(actor, ticket, Status.IN_PROGRESS, internal=True)
    return message


def send_automatic(
    ticket: Ticket, text: str, *, automatic: Automatic, faq_entry_id: int | None = None
) -> OutboxMessage | None:
    """An automatic message to the citizen (e.g. an FAQ link out of hours), marked as such.

    The caller asked the automatic-answer policy first (consult.plugins.Channel)."""
    link = _line_ticket(ticket)
    if link is None or not link.contact.following or not ticket.is_open:
        return None
    return _record(link.contact, ticket, text, automatic=automatic, faq_entry_id=faq_entry_id)


def deliver(message: OutboxMessage) -> None:
    """The outbox's LINE deliverer: reply while the token is fresh, else push with a retry key;
    a notice's batch goes by multicast (channels.line.notices)."""
    if message.recipient.startswith("line-notice:"):
        from channels.line import notices

        return notices.deliver(message)
    config = settings()
    if not config.configured:
        raise TemporaryFailure("LINEの接続設定（シークレット・アクセストークン）がありません")
    if message.recipient.startswith("line-user:"):
        # On the relay: the core checked the contact and sent the user id (channels.line.transfer)
        user_id = message.recipient.removeprefix("line-user:")
    else:
        contact_id = message.recipient.removeprefix("line-contact:")
        contact = db.session.get(LineContact, int(contact_id)) if contact_id.isdigit() else None
        if contact is None:
            raise PermanentFailure("送信先のLINEの連絡先が見つかりません")
        if not contact.following:
            raise PermanentFailure("相談者がブロック（友だち解除）しているため送信しませんでした")
        user_id = contact.user_id
    headers = message.headers or {}
    text, attempts = message.body, message.attempts
    quick_reply = headers.get("quick_reply") or None
    retry_key = headers.get("retry_key") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"o{message.id}"))
    db.session.commit()  # no transaction open while LINE answers
    try:
        token, until = headers.get("reply_token"), headers.get("reply_until")
        # `attempts` counts this attempt (recorded before sending): a reply on the first only.
        if token and until and attempts <= 1 and datetime.fromisoformat(until) > utcnow():
            try:
                client.reply(config, token, [text], quick_reply)
                return
            except client.ApiError as exc:
                if exc.status != 400:  # an expired or used token: fall back to push
                    raise
        client.push(config, user_id, [text], retry_key, quick_reply)
    except client.ApiError as exc:
        if exc.status == 409:
            return  # LINE already accepted a request with this retry key: delivered once
        if exc.status == 429 or exc.status >= 500 or exc.status == 0:
            raise TemporaryFailure(f"LINEが一時的に受け付けませんでした（{exc.status}）") from exc
        raise PermanentFailure(
            f"LINEが受け付けませんでした（{exc.status}）：{_line_message(exc.body)}"
        ) from exc
    except OSError as exc:
        raise TemporaryFailure(f"LINEに接続できませんでした（{type(exc).__name__}）") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("urllib3"):
            raise TemporaryFailure(f"LINEに接続できませんでした（{type(exc).__name__}）") from exc
        raise


def _line_message(body: str) -> str:
    """LINE's own answer, e.g. {"message":"Failed to send messages"}; shown on the timeline."""
    try:
        data = json.loads(body)
        text = str(data.get("message") or body)
        details = data.get("details") or []
        if details:
            text += " / " + "; ".join(str(d.get("message")) for d in details[:3])
        return text[:300]
    except (ValueError, AttributeError):
        return (body or "")[:300]


# --- media -------------------------------------------------------------------------------------


def media_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "line"


def fetch_due_media(limit: int = 20) -> int:
    """Download what citizens sent, with the SDK's blob API; failures are retried.

    On the core (MADOGUCHI_ROLE=core) LINE is out of reach: the relay fetched the content and
    it came with the webhook body (channels.line.transfer), so it is taken from there."""
    config = settings()
    if not config.configured:
        return 0
    if _role() == "core":
        return _take_relayed_media(limit)
    ids = queue.claim(MEDIA, limit)
    fetched = 0
    for media_id in ids:
        media = db.session.get(LineMedia, media_id)
        message_id = media.message_id
        db.session.commit()
        try:
            data, content_type = client.content(config, message_id)
        except (client.ApiError, OSError) as exc:
            _media_failed(media_id, str(getattr(exc, "status", type(exc).__name__)))
            continue
        except Exception as exc:
            if not type(exc).__module__.startswith("urllib3"):
                raise
            _media_failed(media_id, type(exc).__name__)
            continue
        name = secrets.token_hex(16)
        folder = media_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        if _media_stored(media_id, name, len(data), content_type):
            fetched += 1
        db.session.commit()
    return fetched


def _role() -> str:
    from consult.config import CoreSettings
    from consult.settings import section

    return section(CoreSettings).role


def _media_stored(
    media_id: int,
    name: str | None,
    size: int,
    content_type: str | None,
    outcome: sanitise.Outcome | None = None,
) -> bool:
    """The media row is fetched (the file under media_dir() as `name`, or, converted on the
    relay, only its `outcome` with the pages in the safe folder `name`): its safe file and the
    timeline's note, if the row is still claimed by us. No commit."""
    content_type = (content_type or "application/octet-stream")[:100]
    result = db.session.execute(
        sa.update(LineMedia)
        .where(
            LineMedia.id == media_id,
            LineMedia.status == MediaStatus.PENDING,
            LineMedia.claimed_by == queue.worker_id(),
        )
        .values(
            claimed_by=None,
            claimed_at=None,
            status=MediaStatus.FETCHED,
            stored_name=name if outcome is None else None,
            size=size,
            content_type=content_type,
            attempts=LineMedia.attempts + 1,
            last_error=None,
        )
    )
    if result.rowcount != 1:
        return False
    media = db.session.get(LineMedia, media_id)
    ticket = db.session.get(Ticket, media.ticket_id)
    # Staff see it only once converted (無害化): consult.services.safe_files.
    if outcome is None:
        safe_files.register(
            ticket,
            source="line_media",
            source_id=media.id,
            original=media_dir() / name,
            filename=media.file_name,
            claimed_type=content_type,
            size=size,
        )
    else:
        safe_files.register_converted(
            ticket,
            source="line_media",
            source_id=media.id,
            filename=media.file_name,
            claimed_type=content_type,
            size=size,
            outcome=outcome,
            stored_name=name,
        )
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        body=f"LINEで受け取った{MEDIA_KINDS.get(media.kind, media.kind)}を保存しました"
        f"（{size:,}バイト）",
        data={"line_media": media.id},
    )
    return True


# Content staged on the core for a message that never became a media row (an event ignored:
# a group chat, a duplicate) is deleted after this long, with its file or pages.
STAGED_KEEP = timedelta(days=2)


def _forget_stale_contents() -> None:
    from channels.line.models import LineRelayContent

    stale = db.session.execute(
        sa.select(LineRelayContent.id, LineRelayContent.stored_name, LineRelayContent.outcome)
        .where(LineRelayContent.created_at < utcnow() - STAGED_KEEP)
        .limit(100)
    ).all()
    if not stale:
        return
    db.session.execute(
        sa.delete(LineRelayContent).where(LineRelayContent.id.in_([row.id for row in stale]))
    )
    db.session.commit()
    for row in stale:
        if not row.stored_name:
            continue
        if row.outcome is None:
            (media_dir() / row.stored_name).unlink(missing_ok=True)
        else:
            import shutil

            shutil.rmtree(safe_files.pages_folder_for(row.stored_name), ignore_errors=True)


def _take_relayed_media(limit: int) -> int:
    """On the core: each due media row takes the content staged for its message id (fetched by
    the relay), or fails with the relay's reason; the staged row is then deleted."""
    from channels.line.models import LineRelayContent

    _forget_stale_contents()
    taken = 0
    for media_id in queue.claim(MEDIA, limit):
        media = db.session.get(LineMedia, media_id)
        staged = db.session.scalar(
            sa.select(LineRelayContent).where(LineRelayContent.message_id == media.message_id)
        )
        if staged is None or staged.status != MediaStatus.FETCHED:
            reason = staged.last_error if staged is not None else "中継サーバーから届いていません"
            if staged is not None:
                db.session.delete(staged)
            if not queue.hold(MEDIA, media_id):
                db.session.rollback()
                continue
            media = db.session.get(LineMedia, media_id)
            queue.settle_failure(
                MEDIA, media, f"LINEから取得できませんでした（{reason}）", 8, final=True
            )
            db.session.commit()
            continue
        outcome = sanitise.outcome_from_dict(staged.outcome) if staged.outcome is not None else None
        name, size, content_type = staged.stored_name, staged.size or 0, staged.content_type
        db.session.delete(staged)
        if not queue.hold(MEDIA, media_id):
            db.session.rollback()
            continue
        if _media_stored(media_id, name, size, content_type, outcome):
            taken += 1
            db.session.commit()
        else:
            db.session.rollback()
    return taken


def _media_failed(media_id: int, reason: str) -> None:
    if not queue.hold(MEDIA, media_id):
        db.session.rollback()
        return
    media = db.session.get(LineMedia, media_id)
    queue.settle_failure(MEDIA, media, f"LINEから取得できませんでした（{reason}）", 8)
    db.session.commit()


# --- profiles (the display name) ----------------------------------------------------------------

# A name is asked again when the user writes after this long (they may have changed it); a
# failed or empty answer is tried again sooner.
PROFILE_REFRESH = timedelta(days=7)
PROFILE_RETRY = timedelta(hours=1)


def _profile_due(contact: LineContact) -> None:
    """The user wrote or followed: ask LINE for the profile again if it is time to."""
    checked = contact.profile_checked_at
    if checked is None:
        return
    wait = PROFILE_RETRY if contact.display_name is None else PROFILE_REFRESH
    if utcnow() - checked >= wait:
        contact.profile_checked_at = None


def contact_ticket_ids(contact: LineContact) -> list[int]:
    """The tickets whose search documents hold this contact's display name: its LINE tickets
    and its citizen's cases."""
    ids = set(
        db.session.scalars(
            sa.select(LineTicket.ticket_id).where(LineTicket.contact_id == contact.id)
        )
    )
    if contact.citizen_id is not None:
        ids.update(
            db.session.scalars(sa.select(Ticket.id).where(Ticket.citizen_id == contact.citizen_id))
        )
    return sorted(ids)


def fetch_profiles(limit: int = 20) -> int:
    """Ask LINE for the display name of contacts due (new ones first of all). Each contact is
    taken with a conditional UPDATE, so two workers never ask twice; the network call is made
    outside any transaction. A failure leaves the name as it was, to be asked again later.

    Not on the core (MADOGUCHI_ROLE=core): LINE is out of its reach in LGWAN, and a call that
    the firewall drops would hold up the events processed after it by its timeout."""
    config = settings()
    if not config.configured or _role() == "core":
        return 0
    ids = list(
        db.session.scalars(
            sa.select(LineContact.id)
            .where(LineContact.profile_checked_at.is_(None))
            .order_by(LineContact.id)
            .limit(limit)
        )
    )
    db.session.commit()
    done = 0
    for contact_id in ids:
        taken = db.session.execute(
            sa.update(LineContact)
            .where(LineContact.id == contact_id, LineContact.profile_checked_at.is_(None))
            .values(profile_checked_at=utcnow())
        ).rowcount
        user_id = db.session.scalar(
            sa.select(LineContact.user_id).where(LineContact.id == contact_id)
        )
        db.session.commit()
        if taken != 1:
            continue
        try:
            name = client.profile(config, user_id)
        except (client.ApiError, OSError) as exc:
            log.info("line profile not fetched: %s", getattr(exc, "status", type(exc).__name__))
            continue
        except Exception as exc:
            if not type(exc).__module__.startswith("urllib3"):
                raise
            log.info("line profile not fetched: %s", type(exc).__name__)
            continue
        name = " ".join(strip_controls(name or "").split())[:100] or None
        contact = db.session.get(LineContact, contact_id)
        if contact.display_name != name:
            contact.display_name = name
            search.touch(contact_ticket_ids(contact))
        db.session.commit()
        done += 1
    return done


# --- the worker and the after-response kick ----------------------------------------------------


def worker_task() -> None:
    """Events, then media and profiles: what the after-response kick runs in the web process."""
    process_pending()
    fetch_due_media()
    fetch_profiles()


_kick_lock = threading.Lock()
_kick_wanted = threading.Event()
_intake_count = 0
_intake_idle = threading.Condition()
INTAKE_YIELD_SECONDS = 0.05


@contextmanager
def intake():
    """Marks a webhook storing its body: processing in this process waits for it (briefly).

    The webhook's own transaction must not queue behind processing transactions (SQLite has one
    write lock; the GIL is shared with the request threads), so processing steps aside while
    webhooks are being stored, for at most INTAKE_YIELD_SECONDS at a time.
    """
    global _intake_count
    with _intake_idle:
        _intake_count += 1
    try:
        yield
    finally:
        with _intake_idle:
            _intake_count -= 1
            if _intake_count == 0:
                _intake_idle.notify_all()


def _yield_to_intake() -> None:
    with _intake_idle:
        _intake_idle.wait_for(lambda: _intake_count == 0, timeout=INTAKE_YIELD_SECONDS)


def kick(app) -> None:
    """Process right after a webhook's response, in this process, if no one else is doing it.

    Only a speed-up: the worker processes the same rows when this does not run or fails.
    """
    _kick_wanted.set()
    if _kick_lock.acquire(blocking=False):
        threading.Thread(target=_drain, args=(app,), name="line-kick", daemon=True).start()


def _drain(app) -> None:
    while True:
        try:
            while _kick_wanted.is_set():
                _kick_wanted.clear()
                with app.app_context():
                    try:
                        worker_task()
                    except Exception:
                        log.exception("line processing after the response failed; worker retries")
                        db.session.rollback()
                    finally:
                        db.session.remove()
        finally:
            _kick_lock.release()
        if not _kick_wanted.is_set() or not _kick_lock.acquire(blocking=False):
            return


# --- the ticket page ---------------------------------------------------------------------------


@dataclass
class PanelData:
    configured: bool
    contact: LineContact | None
    media: list[LineMedia]
    deliveries: list[OutboxMessage]


def panel_data(ticket: Ticket) -> PanelData | None:
    link = _line_ticket(ticket) if ticket.channel == Channel.LINE else None
    if link is None and ticket.citizen_id is None:
        return None
    media, deliveries = [], []
    if link is not None:
        media = list(
            db.session.scalars(
                sa.select(LineMedia).where(LineMedia.ticket_id == ticket.id).order_by(LineMedia.id)
            )
        )
        deliveries = list(
            db.session.scalars(
                sa.select(OutboxMessage)
                .where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == CHANNEL)
                .order_by(OutboxMessage.id.desc())
                .limit(5)
            )
        )
    return PanelData(settings().configured, link.contact if link else None, media, deliveries)
