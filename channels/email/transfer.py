"""Inbound mail across the zones: the relay stores what the MTA pipe or IMAP gave it, the core
takes the bytes and processes them as it would its own.

On the relay, `madoguchi mail ingest` and `mail fetch` only store (channels.email.tasks
`ingest`, `ingest_many`). The core takes each pending mail's bytes (`pending`), stores them as
its own pending mail (`apply`; the same mail twice is one row, by its dedupe key), and its
worker processes them into tickets; once the core has them the relay deletes row and file.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from channels.email.models import InboundMail, InboundStatus
from consult.config import SanitiseSettings
from consult.extensions import db
from consult.services import sanitise

log = logging.getLogger("madoguchi.email")

KIND = "mail.inbound"
BATCH_BYTES = 8 * 1024 * 1024  # one pull carries at most this much mail (and at least one)
PREFIX = "mail:"


def _converting() -> bool:
    return SanitiseSettings.current().in_ == "relay"


def relay_dir() -> Path:
    """The relay's converted mails: the mail without its attachments' bytes, and their pages."""
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "relay" / "mail"


def _encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def pending(limit: int) -> list[dict]:
    from channels.email.services.storage import data_dir

    items = []
    size = 0
    converting = _converting()
    query = sa.select(InboundMail).where(InboundMail.status == InboundStatus.PENDING)
    if converting:
        query = query.where(InboundMail.relay_files.is_not(None))
    rows = db.session.scalars(query.order_by(InboundMail.id).limit(limit))
    for row in rows:
        if items and size + row.size > BATCH_BYTES:
            break
        size += row.size
        payload = {"source": row.source}
        try:
            if converting:
                raw = (relay_dir() / f"{row.id}.eml").read_bytes()
                payload["files"] = [_file_payload(row.id, entry) for entry in row.relay_files]
            else:
                raw = (data_dir() / "raw" / row.storage_name).read_bytes()
        except OSError:
            log.warning("inbound mail %s: its file is missing; left for an administrator", row.id)
            continue
        payload["raw"] = base64.b64encode(raw).decode("ascii")
        items.append(
            {"id": f"{PREFIX}{row.id}:{row.sha256[:32]}", "kind": KIND, "payload": payload}
        )
    return items


def _file_payload(mail_id: int, entry: dict) -> dict:
    folder = relay_dir() / f"{mail_id}-{entry['n']}.pages"
    pages = {
        name: _encoded(folder / name)
        for name in entry["outcome"].get("pages") or []
        if (folder / name).is_file()
    }
    return {**entry, "pages": pages}


def relay_convert(limit: int = 5) -> int:
    """On the relay, with MADOGUCHI_SANITISE_IN=relay: convert the attachments of the mails
    waiting there; each mail then crosses without its attachments' bytes (the relay's worker)."""
    from channels.email.parse import strip_attachments
    from channels.email.services.storage import data_dir

    if not _converting():
        return 0
    rows = list(
        db.session.scalars(
            sa.select(InboundMail)
            .where(InboundMail.status == InboundStatus.PENDING, InboundMail.relay_files.is_(None))
            .order_by(InboundMail.id)
            .limit(limit)
        )
    )
    limits = SanitiseSettings.current().limits()
    done = 0
    for row in rows:
        try:
            raw = (data_dir() / "raw" / row.storage_name).read_bytes()
        except OSError:
            continue
        stripped, attachments = strip_attachments(raw)
        folder = relay_dir()
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for item in attachments:
            out = folder / f"{row.id}-{item.relay_file}.pages"
            shutil.rmtree(out, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix="madoguchi-relay-mail-") as tmp:
                source = Path(tmp) / "original"
                source.write_bytes(item.data)
                outcome = sanitise.convert_on_relay(
                    source,
                    out,
                    filename=item.filename,
                    claimed_type=item.content_type,
                    limits=limits,
                )
            entries.append(
                {
                    "n": item.relay_file,
                    "filename": item.filename[:255],
                    "content_type": item.content_type[:127],
                    "size": len(item.data),
                    "outcome": outcome,
                }
            )
        (folder / f"{row.id}.eml").write_bytes(stripped)
        row.relay_files = entries
        db.session.commit()
        done += 1
    return done


def acknowledge(ids: list[str]) -> None:
    numbers = []
    for item in ids:
        if item.startswith(PREFIX):
            head = item[len(PREFIX) :].split(":", 1)[0]
            if head.isdigit():
                numbers.append(int(head))
    if numbers:
        _forget(sa.select(InboundMail).where(InboundMail.id.in_(numbers)))


def expire(before) -> int:
    """On the relay: mail the core has not taken since `before` is forgotten, row and files."""
    return _forget(sa.select(InboundMail).where(InboundMail.received_at < before))


def _forget(query) -> int:
    from channels.email.services.storage import data_dir

    rows = list(db.session.scalars(query))
    numbers = [row.id for row in rows]
    for row in rows:
        (data_dir() / "raw" / row.storage_name).unlink(missing_ok=True)
        (relay_dir() / f"{row.id}.eml").unlink(missing_ok=True)
        for entry in row.relay_files or []:
            shutil.rmtree(relay_dir() / f"{row.id}-{entry['n']}.pages", ignore_errors=True)
    if numbers:
        db.session.execute(sa.delete(InboundMail).where(InboundMail.id.in_(numbers)))
    return len(numbers)


def apply(payload: dict) -> None:
    from channels.email.services.storage import insert_ignore, stored_row

    raw = base64.b64decode(payload["raw"])
    row = stored_row(raw, str(payload.get("source") or "relay"))
    if payload.get("files") is not None:
        row["relay_files"] = [_stage(entry) for entry in payload["files"]]
    insert_ignore(row)


def _stage(entry: dict) -> dict:
    """On the core: one attachment the relay converted, its pages into the safe folder."""
    import secrets

    from consult.services import safe_files

    outcome = sanitise.outcome_from_dict(entry["outcome"])
    stored = None
    if outcome.converted:
        stored = secrets.token_hex(16)
        folder = safe_files.pages_folder_for(stored)
        folder.mkdir(parents=True, exist_ok=True)
        for page in outcome.pages:
            (folder / page).write_bytes(base64.b64decode(entry["pages"][page], validate=True))
    return {
        "n": int(entry["n"]),
        "filename": str(entry.get("filename") or "")[:255],
        "content_type": str(entry.get("content_type") or "application/octet-stream")[:127],
        "size": int(entry.get("size") or 0),
        "outcome": sanitise.outcome_to_dict(outcome),
        "stored_name": stored,
    }
