"""Disposal of bookings made for expired tickets (consult.services.retention).

A booking holds what the citizen typed on the public form: name, kana, email, phone, the
content of their question, a video link, and the answers to a specialist session's intake
questions. The row stays (its slot, times, mode, category and
status count in the reports), without those.
"""

from __future__ import annotations

from channels.booking.models import Booking
from consult.plugins import DisposalBatch, PersonalData

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
