"""Disposal of bookings made for expired tickets (consult.services.retention).

A booking holds what the citizen typed on the public form: name, kana, email, phone, the
content of their question, a video link, and the answers to a specialist session's intake
questions. The row stays (its slot, times, mode, category and
status count in the reports), without those.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.booking.models import Booking
from consult.plugins import DisposalBatch, PersonalData, UnlinkedKind

HOLDS = (
    PersonalData(
        "booking",
        ("name", "kana", "email", "phone", "content", "video_url", "intake"),
        "予約者の氏名・かな・連絡先・相談内容・専門相談の事前質問への回答",
        "予約フォーム（市民）・職員の代理入力",
    ),
)


def dispose(batch: DisposalBatch) -> None:
    table = Booking.__table__
    condition = batch.among(table.c.ticket_id)
    grouped = batch.grouped(table, condition)
    result = batch.connection.execute(
        table.update()
        .where(condition)
        .values(name="", kana="", email=None, phone=None, content="", video_url=None, intake=None)
    )
    batch.count("booking", "予約の氏名・連絡先・相談内容", result.rowcount, grouped)


# --- bookings that never became a case ----------------------------------------------------------
# A booking cancelled, or never turned into a case (nobody came, it was only a question), has no
# ticket whose retention would reach it: it goes by its own date, the session's day, counted as
# records without a case are (consult.services.retention.unlinked_years). The row stays, for
# the slot's and the reports' counts, without the person's words and details.

UNLINKED_LABEL = "相談にならなかった予約（取消・来所なし等）の氏名・連絡先・相談内容"


def _unlinked_condition(table, before):
    return sa.and_(
        table.c.ticket_id.is_(None),
        table.c.starts_at < before,
        sa.or_(
            table.c.name != "",
            table.c.kana != "",
            table.c.content != "",
            table.c.email.is_not(None),
            table.c.phone.is_not(None),
            table.c.video_url.is_not(None),
            table.c.intake.is_not(None),
        ),
    )


def count_unlinked(before) -> int:
    from consult.extensions import db

    table = Booking.__table__
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(table).where(_unlinked_condition(table, before))
    )


def dispose_unlinked(batch: DisposalBatch, before, after: int, limit: int) -> int | None:
    table = Booking.__table__
    ids = list(
        batch.connection.scalars(
            sa.select(table.c.id)
            .where(_unlinked_condition(table, before), table.c.id > after)
            .order_by(table.c.id)
            .limit(limit)
        )
    )
    if not ids:
        return None
    result = batch.connection.execute(
        table.update()
        .where(table.c.id.in_(ids))
        .values(name="", kana="", email=None, phone=None, content="", video_url=None, intake=None)
    )
    batch.count("booking", "予約の氏名・連絡先・相談内容", result.rowcount)
    return ids[-1]


UNLINKED = (UnlinkedKind("booking", UNLINKED_LABEL, count_unlinked, dispose_unlinked),)
