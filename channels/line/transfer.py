"""LINE across the zones: the relay's raw webhook bodies go to the core; replies come back.

The relay stores each webhook body as it does on one server (channels.line.intake, one INSERT)
and processes nothing. The core takes the bodies (`pending`), stores each as its own delivery
(`apply`), which its worker expands and turns into tickets as usual; once the core has them the
relay deletes them (`acknowledge`). A reply on the core goes to the relay as the LINE user id
and the text (`relay_form`); the relay's outbox sends it to LINE.

Media: LINE keeps the bytes of an image, video, audio or file message at its content API, which
the core cannot reach (LGWAN). So the relay fetches them (`fetch_contents`, its worker, and right
after the webhook), and a body with media waits until its contents are fetched or given up;
then the body crosses with them (LineRelayContent). With MADOGUCHI_SANITISE_IN=relay the relay
converts each file first (無害化) and only the pages and the outcome cross. The core stages what
arrived (`apply`) and its media task takes it from there (channels.line.tasks); the core
never calls LINE's content endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import shutil
import threading
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from channels.line.models import LineContact, LineDelivery, LineRelayContent, MediaStatus
from consult import upsert
from consult.config import SanitiseSettings
from consult.extensions import db
from consult.models import OutboxMessage
from consult.services import queue, sanitise
from consult.services.outbox import PermanentFailure
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.line")

KIND = "line.delivery"
PREFIX = "line:"
USER_PREFIX = "line-user:"


def _item_id(row_id: int, body: str) -> str:
    return f"{PREFIX}{row_id}:{hashlib.sha256(body.encode()).hexdigest()[:32]}"


# A file larger than this is not carried across (LINE allows videos of 200 MB); the core
# records it as not fetched, with the reason.
MAX_CONTENT_BYTES = 50 * 1024 * 1024
# Contents in one batch: a body with media is sent alone when the batch already holds this much.
BATCH_CONTENT_BYTES = 8 * 1024 * 1024
MAX_ATTEMPTS = 6


def _describe(row: LineRelayContent) -> str:
    return f"中継サーバーのLINEメディア {row.id}（{row.kind}）"


CONTENTS = queue.QueueSpec(
    name="line-relay-content",
    label="LINEメディアの取得（中継サーバー）",
    model=LineRelayContent,
    pending=MediaStatus.PENDING,
    claimed=MediaStatus.PENDING,
    failed=MediaStatus.FAILED,
    describe=_describe,
)


def relay_dir() -> Path:
    """Where the relay keeps fetched media (and the pages it made) until the core took them."""
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "relay" / "line"


def media_messages(body: str) -> list[dict]:
    """The media messages of a webhook body whose content LINE keeps (not an external URL)."""
    from channels.line.services import MEDIA_KINDS

    try:
        events = json.loads(body).get("events") or []
    except (ValueError, AttributeError):
        return []
    found = []
    for event in events:
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, dict) or message.get("type") not in MEDIA_KINDS:
            continue
        if (message.get("contentProvider") or {}).get("type", "line") != "line":
            continue
        if message.get("id"):
            found.append(message)
    return found


def _scan(rows: list[tuple[int, str]]) -> dict[int, list[str]]:
    """The media message ids of each body, with a waiting LineRelayContent for each (once)."""
    wanted: dict[int, list[str]] = {}
    for row_id, body in rows:
        for message in media_messages(body):
            message_id = str(message["id"])[:64]
            wanted.setdefault(row_id, []).append(message_id)
            upsert.insert_ignore(
                LineRelayContent.__table__,
                {
                    "message_id": message_id,
                    "delivery_id": row_id,
                    "kind": str(message.get("type"))[:10],
                    "file_name": (
                        str(message["fileName"])[:255] if message.get("fileName") else None
                    ),
                    "status": MediaStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": utcnow(),
                    "created_at": utcnow(),
                },
                ["message_id"],
            )
    return wanted


def _encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _content_payload(row: LineRelayContent) -> tuple[dict, int]:
    """What crosses for one content: the bytes, or the pages and outcome, or why not."""
    item = {"message_id": row.message_id, "kind": row.kind, "content_type": row.content_type}
    if row.status == MediaStatus.FAILED:
        return {**item, "error": row.last_error or "取得できませんでした"}, 0
    if row.outcome is not None:
        folder = relay_dir() / f"{row.stored_name}.pages"
        pages = {
            name: _encoded(folder / name)
            for name in row.outcome.get("pages") or []
            if (folder / name).is_file()
        }
        size = sum(len(data) for data in pages.values())
        return {**item, "size": row.size, "outcome": row.outcome, "pages": pages}, size
    path = relay_dir() / (row.stored_name or "-")
    if not path.is_file():
        return {**item, "error": "中継サーバーでファイルが失われました"}, 0
    return {**item, "size": row.size, "data": _encoded(path)}, row.size or 0


def pending(limit: int) -> list[dict]:
    """On the relay: the stored bodies, oldest first; one with media only once its contents are
    fetched (or given up), and then with them."""
    rows = db.session.execute(
        sa.select(LineDelivery.id, LineDelivery.body, LineDelivery.received_at)
        .order_by(LineDelivery.id)
        .limit(limit)
    ).all()
    wanted = _scan([(row_id, body) for row_id, body, _at in rows])
    contents = {}
    if wanted:
        db.session.flush()
        ids = [message_id for found in wanted.values() for message_id in found]
        contents = {
            row.message_id: row
            for row in db.session.scalars(
                sa.select(LineRelayContent).where(LineRelayContent.message_id.in_(ids))
            )
        }
    items, carried = [], 0
    for row_id, body, received_at in rows:
        payload = {"body": body, "received_at": received_at.isoformat()}
        if row_id in wanted:
            mine = [contents.get(message_id) for message_id in wanted[row_id]]
            if any(row is None or row.status == MediaStatus.PENDING for row in mine):
                continue  # still being fetched: it goes in a later batch
            if items and carried >= BATCH_CONTENT_BYTES:
                break
            payload["contents"] = []
            for row in mine:
                content, size = _content_payload(row)
                payload["contents"].append(content)
                carried += size
        items.append({"id": _item_id(row_id, body), "kind": KIND, "payload": payload})
    return items


def acknowledge(ids: list[str]) -> None:
    """On the relay: the core has these bodies; delete them and their media (file and row)."""
    rows = []
    for item in ids:
        if item.startswith(PREFIX):
            head = item[len(PREFIX) :].split(":", 1)[0]
            if head.isdigit():
                rows.append(int(head))
    if rows:
        _forget(rows)


def _forget(rows: list[int]) -> None:
    db.session.execute(sa.delete(LineDelivery).where(LineDelivery.id.in_(rows)))
    _forget_contents(LineRelayContent.delivery_id.in_(rows))


def _forget_contents(where) -> int:
    taken = db.session.execute(
        sa.select(LineRelayContent.id, LineRelayContent.stored_name).where(where)
    ).all()
    if taken:
        db.session.execute(
            sa.delete(LineRelayContent).where(
                LineRelayContent.id.in_([row_id for row_id, _name in taken])
            )
        )
        for _row_id, name in taken:
            _remove_relay_files(name)
    return len(taken)


def expire(before) -> int:
    """On the relay: bodies the core has not taken since `before`, with their media (and any
    media left without a body), are forgotten; how many bodies."""
    rows = list(
        db.session.scalars(sa.select(LineDelivery.id).where(LineDelivery.received_at < before))
    )
    for start in range(0, len(rows), 500):
        _forget(rows[start : start + 500])
    _forget_contents(LineRelayContent.created_at < before)
    return len(rows)


def _remove_relay_files(name: str | None) -> None:
    if not name:
        return
    folder = relay_dir()
    (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / f"{name}.pages", ignore_errors=True)


# --- the relay's worker: fetch (and, with SANITISE_IN=relay, convert) --------------------------


def fetch_contents(limit: int = 10) -> int:
    """On the relay: fetch the waiting contents from LINE's content API; failures are retried
    with back-off, then given up (the body then crosses with the reason)."""
    from channels.line import client
    from channels.line.services import settings

    config = settings()
    if not config.configured:
        return 0
    if not db.session.scalar(sa.select(sa.exists().where(queue.due(CONTENTS)))):
        return 0
    sanitise_here = SanitiseSettings.current().in_ == "relay"
    done = 0
    for content_id in queue.claim(CONTENTS, limit):
        row = db.session.get(LineRelayContent, content_id)
        message_id, file_name = row.message_id, row.file_name
        db.session.commit()
        try:
            data, content_type = client.content(config, message_id)
            if len(data) > MAX_CONTENT_BYTES:
                raise _TooLarge
        except _TooLarge:
            _failed(content_id, "大きすぎるため庁内に送りませんでした", final=True)
            continue
        except (client.ApiError, OSError) as exc:
            status = getattr(exc, "status", None)
            # 404/410: LINE no longer keeps it (content lives a limited time); no retry helps.
            _failed(
                content_id,
                f"LINEから取得できませんでした（{status or type(exc).__name__}）",
                final=status in (404, 410),
            )
            continue
        except Exception as exc:
            if not type(exc).__module__.startswith("urllib3"):
                raise
            _failed(content_id, f"LINEから取得できませんでした（{type(exc).__name__}）")
            continue
        name = secrets.token_hex(16)
        folder = relay_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        content_type = (content_type or "application/octet-stream")[:100]
        outcome = None
        if sanitise_here:
            outcome = _convert(folder / name, folder / f"{name}.pages", file_name, content_type)
            (folder / name).unlink(missing_ok=True)  # only the converted form crosses
        if not queue.hold(CONTENTS, content_id):
            db.session.rollback()
            _remove_relay_files(name)
            continue
        row = db.session.get(LineRelayContent, content_id)
        queue.release(row)
        row.status = MediaStatus.FETCHED
        row.stored_name = name
        row.size = len(data)
        row.content_type = content_type
        row.outcome = outcome
        row.attempts = (row.attempts or 0) + 1
        row.last_error = None
        db.session.commit()
        done += 1
    return done


class _TooLarge(Exception):
    pass


def _convert(source: Path, out: Path, file_name: str | None, content_type: str) -> dict:
    return sanitise.convert_on_relay(
        source,
        out,
        filename=file_name,
        claimed_type=content_type,
        limits=SanitiseSettings.current().limits(),
    )


def _failed(content_id: int, reason: str, *, final: bool = False) -> None:
    if not queue.hold(CONTENTS, content_id):
        db.session.rollback()
        return
    row = db.session.get(LineRelayContent, content_id)
    queue.settle_failure(CONTENTS, row, reason, MAX_ATTEMPTS, final=final)
    db.session.commit()


_kick_lock = threading.Lock()


def kick_fetch(app, body: str) -> None:
    """On the relay, right after a webhook with media: scan it and fetch now (a speed-up only;
    the worker does the same)."""
    if not media_messages(body) or not _kick_lock.acquire(blocking=False):
        return

    def run():
        try:
            with app.app_context():
                try:
                    rows = db.session.execute(
                        sa.select(LineDelivery.id, LineDelivery.body)
                        .order_by(LineDelivery.id)
                        .limit(200)
                    ).all()
                    _scan(rows)
                    db.session.commit()
                    fetch_contents()
                except Exception:
                    log.exception("relay: fetching LINE media after the webhook failed")
                    db.session.rollback()
                finally:
                    db.session.remove()
        finally:
            _kick_lock.release()

    threading.Thread(target=run, name="line-relay-fetch", daemon=True).start()


def relay_task() -> int:
    """The relay's worker task: find the media of stored bodies, and fetch them."""
    rows = db.session.execute(
        sa.select(LineDelivery.id, LineDelivery.body).order_by(LineDelivery.id).limit(500)
    ).all()
    _scan(rows)
    db.session.commit()
    return fetch_contents()


# --- the core: what arrived ---------------------------------------------------------------------


def core_media_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "line"


def apply(payload: dict) -> None:
    """On the core: the body as its own delivery, and its media staged for the media task."""
    from datetime import datetime

    received = payload.get("received_at")
    db.session.add(
        LineDelivery(
            body=str(payload["body"]),
            event_count=0,
            received_at=datetime.fromisoformat(received) if received else None,
        )
    )
    for content in payload.get("contents") or []:
        _stage(content)


def _stage(content: dict) -> None:
    from consult.services import safe_files

    values = {
        "message_id": str(content["message_id"])[:64],
        "kind": str(content.get("kind") or "file")[:10],
        "content_type": (
            str(content["content_type"])[:100] if content.get("content_type") else None
        ),
        "size": int(content["size"]) if isinstance(content.get("size"), int) else None,
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "created_at": utcnow(),
    }
    if content.get("error"):
        values.update(status=MediaStatus.FAILED.value, last_error=str(content["error"])[:500])
    elif content.get("outcome") is not None:
        outcome = sanitise.outcome_from_dict(content["outcome"])
        name = secrets.token_hex(16)
        if outcome.converted:
            folder = safe_files.pages_folder_for(name)
            folder.mkdir(parents=True, exist_ok=True)
            pages = content.get("pages") or {}
            for page in outcome.pages:
                (folder / page).write_bytes(base64.b64decode(pages[page], validate=True))
        values.update(
            status=MediaStatus.FETCHED.value,
            stored_name=name,
            outcome=sanitise.outcome_to_dict(outcome),
        )
    else:
        data = base64.b64decode(content["data"], validate=True)
        name = secrets.token_hex(16)
        folder = core_media_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        values.update(status=MediaStatus.FETCHED.value, stored_name=name, size=len(data))
    upsert.insert_ignore(LineRelayContent.__table__, values, ["message_id"])


def after_apply(app) -> None:
    """On the core, right after the bodies were stored: process them now, in this process
    (the worker's), rather than at the LINE lane's next round (up to its interval later)."""
    from channels.line import tasks

    tasks.kick(app)


def relay_form(message: OutboxMessage) -> dict:
    contact_id = message.recipient.removeprefix("line-contact:")
    contact = db.session.get(LineContact, int(contact_id)) if contact_id.isdigit() else None
    if contact is None:
        raise PermanentFailure("送信先のLINEの連絡先が見つかりません")
    if not contact.following:
        raise PermanentFailure("相談者がブロック（友だち解除）しているため送信しませんでした")
    headers = dict(message.headers or {})
    headers.setdefault("retry_key", str(uuid.uuid5(uuid.NAMESPACE_URL, f"o{message.id}")))
    return {
        "recipient": f"{USER_PREFIX}{contact.user_id}",
        "subject": None,
        "body": message.body,
        "headers": headers,
    }
