"""Files staff attach to a ticket: photos of documents and PDFs.

What is accepted is decided by the content (its magic bytes), never by the name or the type the
browser claimed; the name's extension must agree with the content, so that a file called
申請書.pdf that is really HTML is refused. The bytes are written under DATA_DIR/attachments by
a generated name (the sender's name is kept only as a label), and every download is audited.
The stored file is the original: staff only ever see its converted form (無害化,
consult.services.safe_files), page images and text, until an administrator releases it.
Personal data: disposal of a ticket must remove its rows and files (`path_of`), and the
disclosure bundle must include them.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from consult.extensions import db
from consult.models import Attachment, EntryKind, Ticket
from consult.services import audit, safe_files
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import ValidationFailed

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PER_TICKET = 50


@dataclass(frozen=True)
class Kind:
    content_type: str
    label: str
    extensions: tuple[str, ...]
    # Shown in the browser (images, PDF); anything else is only ever downloaded.
    inline: bool


JPEG = Kind("image/jpeg", "JPEG画像", (".jpg", ".jpeg"), True)
PNG = Kind("image/png", "PNG画像", (".png",), True)
WEBP = Kind("image/webp", "WebP画像", (".webp",), True)
HEIC = Kind("image/heic", "HEIC画像（iPhoneの写真）", (".heic", ".heif"), False)
PDF = Kind("application/pdf", "PDF", (".pdf",), True)
KINDS = (JPEG, PNG, WEBP, HEIC, PDF)
ALLOWED_TEXT = "JPEG・PNG・WebP・HEICの画像、PDF"


def sniff(head: bytes) -> Kind | None:
    """The kind the content really is, from its first bytes; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heif"):
        return HEIC
    # PDF readers accept the header anywhere in the first KiB; we want it first.
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def max_bytes() -> int:
    return int(current_app.config["MADOGUCHI"].get("ATTACHMENT_MAX_BYTES") or DEFAULT_MAX_BYTES)


def _folder() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "attachments"


def path_of(attachment: Attachment) -> Path:
    return _folder() / attachment.storage_name[:2] / attachment.storage_name


def _clean_name(filename: str | None) -> str:
    """A label for the download: no path, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) < 10 else name[:200]
    return name


def size_label(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def add(actor: Actor, ticket: Ticket, filename: str | None, data: bytes) -> Attachment:
    """Check and store one file, with its timeline entry, in the caller's transaction.

    The file is written before the row is flushed; a rollback leaves an orphan file with no row
    (never a row without its file), which disposal's sweep of the folder removes."""
    from consult.services import tickets

    staff = actor.require(*DESK_ROLES)
    ticket.ensure_open()
    name = _clean_name(filename)
    if not name:
        raise ValidationFailed("添付するファイルを選んでください。")
    if not data:
        raise ValidationFailed(
            f"「{name}」は空のファイルです。内容のあるファイルを選んでください。"
        )
    limit = max_bytes()
    if len(data) > limit:
        raise ValidationFailed(
            f"「{name}」は{size_label(len(data))}あり、添付できる大きさ（{size_label(limit)}まで）を"
            "超えています。写真は小さくしてから添付してください。"
        )
    kind = sniff(data[:32])
    if kind is None:
        raise ValidationFailed(
            f"「{name}」は添付できない種類のファイルです。添付できるのは{ALLOWED_TEXT}です。"
        )
    extension = os.path.splitext(name)[1].lower()
    if extension not in kind.extensions:
        raise ValidationFailed(
            f"「{name}」はファイル名の拡張子と中身（{kind.label}）が一致しません。"
            f"{kind.extensions[0]} のファイルとして保存し直してから添付してください。"
        )
    count = db.session.scalar(
        sa.select(sa.func.count(Attachment.id)).where(Attachment.ticket_id == ticket.id)
    )
    if count >= MAX_PER_TICKET:
        raise ValidationFailed(f"一つの相談に添付できるファイルは{MAX_PER_TICKET}件までです。")
    storage_name = uuid.uuid4().hex
    item = Attachment(
        ticket=ticket,
        uploaded_by=staff,
        filename=name,
        content_type=kind.content_type,
        size=len(data),
        storage_name=storage_name,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    write_file(path_of(item), data)
    db.session.add(item)
    db.session.flush()
    # Staff see it only in its harmless form, once the worker has converted it (無害化).
    safe_files.register(
        ticket,
        source="attachment",
        source_id=item.id,
        original=path_of(item),
        filename=name,
        claimed_type=kind.content_type,
        size=len(data),
    )
    tickets.add_entry(
        ticket,
        EntryKind.NOTE,
        author=staff,
        body=f"ファイルを添付しました：{name}（{kind.label}、{size_label(len(data))}）",
        data={"attachment_id": item.id},
    )
    audit.record(actor, "create", "attachment", str(item.id), f"ticket={ticket.number}")
    return item


def write_file(path: Path, data: bytes) -> None:
    """Atomically and durably, readable by the owner only: a crash leaves the whole file or
    none. Every stored file of a ticket is written so (staff attachments, mail and its files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def for_ticket(ticket: Ticket) -> list[Attachment]:
    return list(
        db.session.scalars(
            sa.select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
        )
    )


def by_ids(ids: list[int]) -> dict[int, Attachment]:
    """Attachments named by timeline entries, in one query (the ticket page)."""
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(Attachment).where(Attachment.id.in_(ids)))
    return {row.id: row for row in rows}
