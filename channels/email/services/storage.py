"""The raw mail on disk and its row: written durably before anything is parsed.

A mail's bytes are fsynced under DATA_DIR/email/raw before its row is stored (channels.email.tasks
stores and commits); a second delivery of the same mail finds the row by its dedupe key.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from channels.email import parse as mailparse
from channels.email.models import InboundMail, InboundStatus
from consult.extensions import db
from consult.services import queue
from consult.services.attachments import write_file
from consult.timeutil import utcnow


def data_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "email"


def write_files(items: list[tuple[Path, bytes]]) -> None:
    """`write_file` for a batch: each file still fsynced before it is renamed into place, but the
    fsyncs run side by side, so the file system commits them in a few journal flushes instead
    of one flush after another."""
    opened: list[tuple[int, Path, Path]] = []
    try:
        for path, data in items:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            opened.append((fd, tmp, path))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        if len(opened) == 1:
            os.fsync(opened[0][0])
        elif opened:
            with ThreadPoolExecutor(max_workers=min(16, len(opened))) as pool:
                list(pool.map(os.fsync, [fd for fd, _tmp, _path in opened]))
    except BaseException:
        for fd, tmp, _path in opened:
            os.close(fd)
            tmp.unlink(missing_ok=True)
        raise
    for fd, tmp, path in opened:
        os.close(fd)
        os.replace(tmp, path)


def raw_path(inbound: InboundMail) -> Path:
    return data_dir() / "raw" / inbound.storage_name


def read_raw(inbound: InboundMail) -> bytes:
    return raw_path(inbound).read_bytes()


def insert_ignore(values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on both databases; True when the row is new."""
    table = InboundMail.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT through SQLAlchemy.
    result = db.session.execute(
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )
    return result.first() is not None


def stored_row(raw: bytes, source: str, writes: list | None = None, claim: bool = False) -> dict:
    """Write the bytes durably (fsync) and describe the row that records them.

    With `writes`, the file is only listed there, for `write_files` to write before any row.
    With `claim`, the row is stored already claimed by this process (consult.services.queue), so
    a worker never processes the mail that `mail ingest` or `mail fetch` is about to process."""
    digest = hashlib.sha256(raw).hexdigest()
    key = mailparse.dedupe_key(raw)  # Message-ID + sender + content: see its docstring
    storage_name = f"{digest[:2]}/{digest}.eml"
    path = data_dir() / "raw" / storage_name
    if writes is not None:
        if not path.exists() and all(path != listed for listed, _data in writes):
            writes.append((path, raw))
    elif not path.exists():
        write_file(path, raw)
    return {
        "dedupe_key": key[:255],
        "sha256": digest,
        "storage_name": storage_name,
        "size": len(raw),
        "source": source[:20],
        "status": InboundStatus.PENDING.value,
        "warnings": [],
        "attempts": 0,
        "received_at": utcnow(),
        "claimed_by": queue.worker_id() if claim else None,
        "claimed_at": utcnow() if claim else None,
    }


def adopt_legacy_keys(pairs: list[tuple[bytes, dict]]) -> None:
    """Rows stored before issue 14 are keyed by the Message-ID alone (``mid:<id>``). When one of
    them holds the very mail arriving again (an IMAP fetch repeated after a restart across the
    upgrade), it takes the new key now, so that the INSERT below finds it and nothing doubles;
    another mail that merely reuses the Message-ID keeps its own new row."""
    legacy: dict[str, list[tuple[bytes, str]]] = {}
    for raw, row in pairs:
        message_id = mailparse.quick_message_id(raw)
        if message_id and row["dedupe_key"].startswith("msg:"):
            legacy.setdefault(f"mid:{message_id}"[:255], []).append((raw, row["dedupe_key"]))
    for chunk in chunks(sorted(legacy)):
        for found in db.session.execute(
            sa.select(InboundMail.id, InboundMail.dedupe_key, InboundMail.storage_name).where(
                InboundMail.dedupe_key.in_(chunk)
            )
        ):
            try:
                stored = (data_dir() / "raw" / found.storage_name).read_bytes()
            except OSError:
                continue  # unsure: the new mail gets a row (and a ticket) of its own
            key = mailparse.dedupe_key(stored)
            if any(key == new_key for _raw, new_key in legacy[found.dedupe_key]):
                db.session.execute(
                    sa.update(InboundMail)
                    .where(InboundMail.id == found.id, InboundMail.dedupe_key == found.dedupe_key)
                    .values(dedupe_key=key)
                )


def chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]
