"""Disposal of the email channel's copies of expired tickets (consult.services.retention).

Personal data here: the raw message (DATA_DIR/email/raw, email_inbound), its attachments
(DATA_DIR/email/attachments, email_attachment), the sender's address and name (email_thread),
the Message-IDs that thread the case (email_thread_message). All go with the ticket; a raw file
shared by another stored mail (the same bytes twice) stays until that one goes too.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.email.models import (
    EmailThread,
    InboundMail,
    InboundStatus,
    MailAttachment,
    ThreadMessage,
)
from consult.plugins import DisposalBatch, PersonalData, UnlinkedKind

HOLDS = (
    PersonalData(
        "email_inbound", ("storage_name",), "受信メールの原本（データフォルダ）", "市民からのメール"
    ),
    PersonalData(
        "email_attachment",
        ("filename", "storage_name"),
        "受信メールの添付ファイル",
        "市民からのメール",
    ),
    PersonalData(
        "email_thread", ("address", "sender_name"), "差出人の氏名・アドレス", "市民からのメール"
    ),
)


def _data_dir():
    from channels.email.services.storage import data_dir as folder

    return folder()


def dispose(batch: DisposalBatch) -> None:
    connection = batch.connection
    inbound = InboundMail.__table__
    rows = connection.execute(
        sa.select(inbound.c.id, inbound.c.storage_name, inbound.c.ticket_id).where(
            batch.among(inbound.c.ticket_id)
        )
    ).all()
    inbound_ids = [row.id for row in rows]
    attachment = MailAttachment.__table__
    condition = batch.among(attachment.c.ticket_id)
    if inbound_ids:
        condition = sa.or_(condition, attachment.c.inbound_id.in_(inbound_ids))
    for storage_name in connection.scalars(sa.select(attachment.c.storage_name).where(condition)):
        batch.files.append(_data_dir() / "attachments" / storage_name)
    grouped = batch.grouped(attachment, condition)
    batch.count(
        "mail_attachment",
        "受信メールの添付ファイル",
        connection.execute(attachment.delete().where(condition)).rowcount,
        grouped,
    )
    thread_message = ThreadMessage.__table__
    condition = batch.among(thread_message.c.ticket_id)
    if inbound_ids:
        condition = sa.or_(condition, thread_message.c.inbound_id.in_(inbound_ids))
    connection.execute(thread_message.delete().where(condition))
    thread = EmailThread.__table__
    grouped = batch.grouped(thread, batch.among(thread.c.ticket_id))
    batch.count(
        "mail_sender",
        "メールの差出人",
        connection.execute(thread.delete().where(batch.among(thread.c.ticket_id))).rowcount,
        grouped,
    )
    if not rows:
        return
    names = {row.storage_name for row in rows}
    shared = set(
        connection.scalars(
            sa.select(inbound.c.storage_name).where(
                inbound.c.storage_name.in_(names), inbound.c.id.not_in(inbound_ids)
            )
        )
    )
    for name in sorted(names - shared):
        batch.files.append(_data_dir() / "raw" / name)
    grouped = batch.grouped(inbound, inbound.c.id.in_(inbound_ids))
    batch.count(
        "mail_raw",
        "受信メールの原本",
        connection.execute(inbound.delete().where(inbound.c.id.in_(inbound_ids))).rowcount,
        grouped,
    )


def orphans(cutoff) -> list:
    """Raw mail and attachment files that no row names (written before a row that then rolled
    back; a mail stored again finds its file by its digest, so only old ones are listed)."""
    from consult.extensions import db
    from consult.services.retention import _old_files

    found = []
    raw = set(db.session.scalars(sa.select(InboundMail.storage_name)))
    for path in _old_files(_data_dir() / "raw", cutoff):
        if f"{path.parent.name}/{path.name}" not in raw:
            found.append(path)
    attached = set(db.session.scalars(sa.select(MailAttachment.storage_name)))
    for path in _old_files(_data_dir() / "attachments", cutoff):
        if f"{path.parent.name}/{path.name}" not in attached:
            found.append(path)
    return found


# --- mail that never became a case --------------------------------------------------------------
# An auto-reply or bounce that referred to nothing of ours (ignored), or a message whose
# processing failed and that an administrator left in quarantine: no ticket's retention reaches
# it. It goes by the day it was received (consult.services.retention.unlinked_years): row, raw
# file, attachments and threading ids. Pending mail is never touched (it is still to be read).

UNLINKED_LABEL = "相談にならなかった受信メール（対象外・隔離中）の原本"


def _unlinked_condition(table, before):
    return sa.and_(
        table.c.ticket_id.is_(None),
        table.c.status.in_([InboundStatus.IGNORED, InboundStatus.QUARANTINED]),
        table.c.received_at < before,
    )


def count_unlinked(before) -> int:
    from consult.extensions import db

    table = InboundMail.__table__
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(table).where(_unlinked_condition(table, before))
    )


def dispose_unlinked(batch: DisposalBatch, before, after: int, limit: int) -> int | None:
    connection = batch.connection
    inbound = InboundMail.__table__
    rows = connection.execute(
        sa.select(inbound.c.id, inbound.c.storage_name)
        .where(_unlinked_condition(inbound, before), inbound.c.id > after)
        .order_by(inbound.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    ids = [row.id for row in rows]
    attachment = MailAttachment.__table__
    condition = attachment.c.inbound_id.in_(ids)
    for storage_name in connection.scalars(sa.select(attachment.c.storage_name).where(condition)):
        batch.files.append(_data_dir() / "attachments" / storage_name)
    batch.count(
        "mail_attachment",
        "受信メールの添付ファイル",
        connection.execute(attachment.delete().where(condition)).rowcount,
    )
    thread_message = ThreadMessage.__table__
    connection.execute(thread_message.delete().where(thread_message.c.inbound_id.in_(ids)))
    names = {row.storage_name for row in rows}
    shared = set(
        connection.scalars(
            sa.select(inbound.c.storage_name).where(
                inbound.c.storage_name.in_(names), inbound.c.id.not_in(ids)
            )
        )
    )
    for name in sorted(names - shared):
        batch.files.append(_data_dir() / "raw" / name)
    batch.count(
        "mail_raw",
        "受信メールの原本",
        connection.execute(inbound.delete().where(inbound.c.id.in_(ids))).rowcount,
    )
    return ids[-1]


UNLINKED = (UnlinkedKind("mail", UNLINKED_LABEL, count_unlinked, dispose_unlinked),)
