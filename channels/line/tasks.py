"""LINE worker jobs: they own their transactions (commit per event, chat, media or profile).

The services (channels.line.services) only flush; what calls LINE or must survive a failure of
the next step commits here: expanding stored webhook bodies, processing events chat by chat,
fetching media and profiles, delivering outbox rows, and the after-response kick that runs the
same jobs in the web process.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from channels.line import client
from channels.line.models import (
    EventStatus,
    LineContact,
    LineDelivery,
    LineEvent,
    LineMedia,
    MediaStatus,
)
from channels.line.services.common import log, role, settings
from channels.line.services.contacts import contact_ticket_ids
from channels.line.services.events import EVENTS, chat_run, claim_next, finish
from channels.line.services.media import MEDIA, STAGED_KEEP, media_dir, media_stored
from channels.line.services.webhook import events_of, insert_events
from consult.extensions import db
from consult.models import OutboxMessage
from consult.services import queue, safe_files, sanitise, search
from consult.services.normalize import strip_controls
from consult.services.outbox import PermanentFailure, TemporaryFailure
from consult.timeutil import utcnow

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
        events = events_of(body or "")
        claimed = db.session.execute(
            sa.update(table)
            .where(table.c.id == delivery_id, table.c.expanded_at.is_(None))
            .values(expanded_at=now, event_count=len(events))
        )
        if claimed.rowcount != 1:
            db.session.commit()
            continue  # another process expanded it
        insert_events(delivery_id, events, now)
        db.session.commit()
        done += 1
    return done


def process_pending(max_rounds: int = 1000, batch: int = 100) -> int:
    """Process every due event; returns how many were processed (or ignored) successfully."""
    config = current_app.config["MADOGUCHI"]
    max_attempts = int(config.get("LINE_MAX_EVENT_ATTEMPTS", 8))
    done = 0
    # The core (MADOGUCHI_ROLE=core) receives no webhook to step aside for: its bodies come
    # from the transfer, so it processes them at once (the pacer cost up to its 2 s deferral).
    pacer = _BurstPacer(config, idle=role() == "core")
    for _ in range(max_rounds):
        _yield_to_intake()
        # Every stored body first, so that a chat's events are ordered among all that arrived.
        pacer.wait()
        while expand_pending():
            _yield_to_intake()
            pacer.wait()
        ids = claim_next(batch)
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


def _process_chat(event_id: int, max_attempts: int) -> int:
    """The claimed event and the due events that follow it in its chat, in LINE's order, in one
    transaction. When one fails, the chat is done again one event per transaction, so the events
    before the failing one are kept and the failing one waits for its retry (nothing after it is
    processed out of order). Only while the claim is still ours (`queue.hold`)."""
    if not queue.hold(EVENTS, event_id):
        db.session.commit()
        return 0
    ids = chat_run(event_id)
    if not ids:
        db.session.commit()
        return 0
    try:
        for one in ids:
            finish(db.session.get(LineEvent, one))
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
            finish(event)
            db.session.commit()
            done += 1
        except Exception as exc:
            db.session.rollback()
            _failed(one, exc, max_attempts)
            break
    return done


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


def fetch_due_media(limit: int = 20) -> int:
    """Download what citizens sent, with the SDK's blob API; failures are retried.

    On the core (MADOGUCHI_ROLE=core) LINE is out of reach: the relay fetched the content and
    it came with the webhook body (channels.line.transfer), so it is taken from there."""
    config = settings()
    if not config.configured:
        return 0
    if role() == "core":
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
        if media_stored(media_id, name, len(data), content_type):
            fetched += 1
        db.session.commit()
    return fetched


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
        if media_stored(media_id, name, size, content_type, outcome):
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


def fetch_profiles(limit: int = 20) -> int:
    """Ask LINE for the display name of contacts due (new ones first of all). Each contact is
    taken with a conditional UPDATE, so two workers never ask twice; the network call is made
    outside any transaction. A failure leaves the name as it was, to be asked again later.

    Not on the core (MADOGUCHI_ROLE=core): LINE is out of its reach in LGWAN, and a call that
    the firewall drops would hold up the events processed after it by its timeout."""
    config = settings()
    if not config.configured or role() == "core":
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
        # Not a daemon: a process that ends (`madoguchi transfer pull`, a worker told to stop)
        # waits for the events it has claimed instead of leaving them claimed by a dead process.
        threading.Thread(target=_drain, args=(app,), name="line-kick").start()


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
