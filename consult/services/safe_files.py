"""The harmless form (無害化) of every file on a ticket: registration, the worker, staff access.

Every place that stores a file from a citizen (LINE media, mail attachments) or from staff (the
ticket's 添付ファイル) calls `register()` in the same transaction, naming its own row and where
the bytes lie under DATA_DIR. Until the worker task `convert_due()` has run
(consult.services.sanitise, bounded child processes, never in a web request), staff see
「安全な形式に変換中」. Then:
- converted: staff see the page images (PNG/JPEG made anew) and the extracted text, nothing else;
  the text goes into the ticket's search document (consult.services.search: `texts_of`);
- quarantined: staff see the Japanese reason; only an administrator can release the file
  (`release()`, with a reason, audited), after which desk staff may download the original as an
  attachment (application/octet-stream, nosniff, sandboxed), itself audited.

The original stays where its channel put it (DATA_DIR/attachments/, DATA_DIR/line/), a folder
apart from the converted pages (DATA_DIR/safe/); no route serves it before a release. The old
download routes of each channel now lead to the viewer of the converted form.

Relay and core: the conversion is `sanitise.convert()`, a plain function. MADOGUCHI_SANITISE_IN
says which side runs it; the side that does not convert leaves the rows to the other (the relay
sends the converted form and the outcome with the intake, `apply_outcome()` records it).

Personal data: the row (file name, text, reason), the pages and the original. Disposal of a
ticket must delete the rows, `pages_dir()` and `original_of()`; the disclosure bundle includes
the original and the pages.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from consult.config import SanitiseSettings
from consult.extensions import db
from consult.models import Role, SafeFile, SafeFileStatus, Ticket
from consult.services import audit, queue, sanitise
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import single_line
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.sanitise")

SOURCES = {
    "attachment": "添付ファイル",
    "email_attachment": "メールの添付ファイル",
    "line_media": "LINEで受け取ったファイル",
}
# Per file, in the search document: enough for the words of a form, not a book.
INDEXED_CHARS = 20_000


def _describe(row: SafeFile) -> str:
    return f"{SOURCES.get(row.source, row.source)} {row.id}（相談ID {row.ticket_id}）"


QUEUE = queue.QueueSpec(
    name="sanitise",
    label="ファイルの無害化",
    model=SafeFile,
    pending=SafeFileStatus.PENDING,
    claimed=SafeFileStatus.PENDING,
    failed=SafeFileStatus.FAILED,
    describe=_describe,
)


def _data_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"])


def original_of(row: SafeFile) -> Path:
    return _data_dir() / row.original_path


def _pages_folder(stored_name: str) -> Path:
    return _data_dir() / "safe" / stored_name[:2] / stored_name


def pages_dir(row: SafeFile) -> Path | None:
    if not row.stored_name:
        return None
    return _pages_folder(row.stored_name)


def page_files(stored_name: str) -> list[Path]:
    """Every file of a converted file's folder (pages, text): for disposal to delete."""
    folder = _pages_folder(stored_name)
    return [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []


def register(
    ticket: Ticket,
    *,
    source: str,
    source_id: int,
    original: Path,
    filename: str | None,
    claimed_type: str | None,
    size: int,
) -> SafeFile:
    """Queue one stored file for conversion, in the caller's transaction (no commit)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    relative = original.resolve().relative_to(_data_dir().resolve())
    row = SafeFile(
        ticket_id=ticket.id,
        source=source,
        source_id=source_id,
        filename=(filename or None) and filename[:255],
        claimed_type=(claimed_type or None) and claimed_type[:127],
        size=size,
        original_path=str(relative),
        status=SafeFileStatus.PENDING,
        next_attempt_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    return row


# Where the original of a file converted on the relay would be: never written on the core
# (MADOGUCHI_SANITISE_IN=relay: only the pages and the outcome cross into LGWAN).
RELAYED = "relayed"


def pages_folder_for(stored_name: str) -> Path:
    """The folder of a converted file's pages (for the relay's pages arriving on the core)."""
    return _pages_folder(stored_name)


def register_converted(
    ticket: Ticket,
    *,
    source: str,
    source_id: int,
    filename: str | None,
    claimed_type: str | None,
    size: int,
    outcome: sanitise.Outcome,
    stored_name: str | None,
) -> SafeFile:
    """A file the relay converted before it crossed (SANITISE_IN=relay): its pages are already
    in `pages_folder_for(stored_name)`; the original never reached this side, so a quarantined
    one cannot be released for download here (the page says so)."""
    row = register(
        ticket,
        source=source,
        source_id=source_id,
        original=_data_dir() / RELAYED / secrets.token_hex(16),
        filename=filename,
        claimed_type=claimed_type,
        size=size,
    )
    if not outcome.converted:
        outcome.reason = (
            f"{outcome.reason}（インターネット側の中継サーバーで判定しました。原本は庁内に"
            "持ち込まれていません。）"
        )
    apply_outcome(row, outcome, stored_name if outcome.converted else None)
    return row


def for_source(source: str, ids: list[int]) -> dict[int, SafeFile]:
    """The safe files of some rows of one source, by source id (one query, for panels)."""
    if not ids:
        return {}
    rows = db.session.scalars(
        sa.select(SafeFile).where(SafeFile.source == source, SafeFile.source_id.in_(ids))
    )
    return {row.source_id: row for row in rows}


def of_source(source: str, source_id: int) -> SafeFile | None:
    return db.session.scalar(
        sa.select(SafeFile).where(SafeFile.source == source, SafeFile.source_id == source_id)
    )


# --- the worker --------------------------------------------------------------------------------


def convert_due(limit: int = 2) -> int:
    """Convert what waits, a couple of files a round (each may take up to its time limit).

    The claim is committed before the conversion, and the result written only if the claim is
    still ours (queue.hold); a crash of our own is retried with back-off, then held as FAILED.
    """
    config = SanitiseSettings.current()
    limits = config.limits()
    done = 0
    for file_id in queue.claim(QUEUE, limit):
        row = db.session.get(SafeFile, file_id)
        source = original_of(row)
        filename, claimed_type = row.filename, row.claimed_type
        db.session.commit()
        stored_name = secrets.token_hex(16)
        out = _data_dir() / "safe" / stored_name[:2] / stored_name
        try:
            if not source.exists():
                outcome = sanitise.Outcome(
                    False, sanitise.UNKNOWN, reason="原本のファイルが見つからないため隔離しました。"
                )
            else:
                outcome = sanitise.convert(
                    source, out, filename=filename, claimed_type=claimed_type, limits=limits
                )
        except Exception as exc:
            log.exception("conversion of safe file %s failed", file_id)
            shutil.rmtree(out, ignore_errors=True)
            if queue.hold(QUEUE, file_id):
                row = db.session.get(SafeFile, file_id)
                given_up = queue.settle_failure(
                    QUEUE, row, f"変換処理の失敗（{type(exc).__name__}）", config.max_attempts
                )
                if given_up:
                    row.reason = "変換処理が繰り返し失敗したため隔離しました。"
            db.session.commit()
            continue
        if not queue.hold(QUEUE, file_id):
            shutil.rmtree(out, ignore_errors=True)
            db.session.rollback()
            continue
        row = db.session.get(SafeFile, file_id)
        apply_outcome(row, outcome, stored_name if outcome.converted else None)
        if not outcome.converted:
            shutil.rmtree(out, ignore_errors=True)
        db.session.commit()
        done += 1
    return done


def apply_outcome(row: SafeFile, outcome: sanitise.Outcome, stored_name: str | None) -> None:
    """Record what the conversion made of the file (here, or on the relay)."""
    queue.release(row)
    row.attempts = (row.attempts or 0) + 1
    row.kind = outcome.kind.name
    row.converted_at = utcnow()
    row.last_error = None
    if outcome.converted:
        row.status = SafeFileStatus.READY
        row.stored_name = stored_name
        row.media_type = outcome.media_type
        row.pages = len(outcome.pages)
        row.total_pages = outcome.total_pages
        row.truncated = outcome.truncated
        row.text = outcome.text or None
        row.reason = outcome.note
    else:
        row.status = SafeFileStatus.QUARANTINED
        row.reason = outcome.reason[:500]
        row.pages = 0


# --- what staff may open ------------------------------------------------------------------------


def get_for_view(actor: Actor, file_id: int, *, action: str = "view", detail: str = "") -> SafeFile:
    """A file of a ticket the actor may see (else NotFound, the same for one that does not
    exist); audited with the ticket's number, never the file's name."""
    from consult.services import tickets

    actor.require(*DESK_ROLES)
    row = db.session.get(SafeFile, file_id) if 0 < file_id < 2**31 else None
    if row is None:
        raise NotFound("ファイルが見つかりません。")
    ticket = db.session.get(Ticket, row.ticket_id)
    tickets.get_ticket(actor, ticket.number, audit_view=False)  # may the actor see the ticket?
    audit.record(actor, action, "safe_file", str(row.id), f"ticket={ticket.number}{detail}".strip())
    return row


def page_path(row: SafeFile, page: int) -> Path:
    """The converted image of one page (1-based); NotFound unless the file is converted."""
    folder = pages_dir(row)
    if row.status != SafeFileStatus.READY or folder is None or not 1 <= page <= row.pages:
        raise NotFound("ページが見つかりません。")
    extension = "jpg" if row.media_type == "image/jpeg" else "png"
    path = folder / f"page-{page:04d}.{extension}"
    if not path.exists():
        raise NotFound("ページが見つかりません。")
    return path


def released_original(row: SafeFile) -> Path:
    if row.status != SafeFileStatus.RELEASED or not original_of(row).exists():
        raise NotFound("ファイルが見つかりません。")
    return original_of(row)


# --- quarantine, for administrators -------------------------------------------------------------


def held_files(limit: int = 200) -> list[SafeFile]:
    return list(
        db.session.scalars(
            sa.select(SafeFile)
            .where(
                SafeFile.status.in_(
                    (SafeFileStatus.QUARANTINED, SafeFileStatus.FAILED, SafeFileStatus.RELEASED)
                )
            )
            .order_by(SafeFile.id.desc())
            .limit(limit)
        )
    )


def get_held(actor: Actor, file_id: int) -> SafeFile:
    actor.require(Role.ADMIN)
    row = db.session.get(SafeFile, file_id) if 0 < file_id < 2**31 else None
    if row is None:
        raise NotFound("ファイルが見つかりません。")
    return row


def release(actor: Actor, file_id: int, reason: str) -> SafeFile:
    """An administrator releases a quarantined file, with the reason (audited, not undone)."""
    staff = actor.require(Role.ADMIN)
    row = get_held(actor, file_id)
    reason = single_line(reason or "").strip()
    if len(reason) < 4:
        raise ValidationFailed("隔離を解除する理由を入力してください（4文字以上）。")
    if len(reason) > 500:
        raise ValidationFailed("理由は500文字以内で入力してください。")
    if not row.held:
        raise ValidationFailed("このファイルは隔離されていません。")
    updated = db.session.execute(
        sa.update(SafeFile)
        .where(
            SafeFile.id == row.id,
            SafeFile.status.in_((SafeFileStatus.QUARANTINED, SafeFileStatus.FAILED)),
        )
        .values(
            status=SafeFileStatus.RELEASED,
            released_by_id=staff.id,
            released_at=utcnow(),
            release_reason=reason,
        )
    )
    if updated.rowcount != 1:
        raise ValidationFailed("このファイルは隔離されていません。")
    db.session.refresh(row)
    ticket = db.session.get(Ticket, row.ticket_id)
    audit.record(actor, "release", "safe_file", str(row.id), f"ticket={ticket.number}")
    return row


# --- the search ---------------------------------------------------------------------------------


def texts_of(connection, ticket_ids: list[int]) -> dict[int, list[str]]:
    """The extracted text of each ticket's converted files, for its search document."""
    table = SafeFile.__table__
    found: dict[int, list[str]] = {}
    for ticket_id, text in connection.execute(
        sa.select(table.c.ticket_id, table.c.text)
        .where(
            table.c.ticket_id.in_(ticket_ids),
            table.c.status == SafeFileStatus.READY.value,
            table.c.text.is_not(None),
        )
        .order_by(table.c.ticket_id, table.c.id)
    ):
        found.setdefault(ticket_id, []).append(text[:INDEXED_CHARS])
    return found
