"""Images, videos and files citizens send: the work queue that fetches them and what is kept.

The downloads themselves (network, commits) are worker jobs in channels.line.tasks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from channels.line.models import LineMedia, MediaStatus
from channels.line.services.common import MEDIA_KINDS
from consult.extensions import db
from consult.models import EntryKind, Ticket
from consult.services import queue, safe_files, sanitise, tickets


def _describe_media(media: LineMedia) -> str:
    ticket = db.session.get(Ticket, media.ticket_id)
    kind = MEDIA_KINDS.get(media.kind, media.kind)
    return f"LINEで受け取った{kind}" + (f"（相談番号 {ticket.number}）" if ticket else "")


MEDIA = queue.QueueSpec(
    name="line-media",
    label="LINEの画像・ファイルの取得",
    model=LineMedia,
    pending=MediaStatus.PENDING,
    claimed=MediaStatus.PENDING,
    failed=MediaStatus.FAILED,
    describe=_describe_media,
)


def media_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "line"


def media_stored(
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
