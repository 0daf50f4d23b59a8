"""Consumer and fraud alerts (消費生活・特殊詐欺の注意喚起): made from a case, redacted, approved.

An alert holds no personal data: every field went through the FAQ's redactor when it was saved,
and approval is refused while the redactor still finds anything. The case it came from is kept
as a ticket id only (staff see the link, the public never does), so disposal of the ticket's
personal data has nothing to reach here and the disclosure bundle has nothing to add.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class AlertStatus(LabelledEnum):
    DRAFT = "draft", "下書き"
    REVIEW = "review", "承認待ち"
    PUBLISHED = "published", "公開中"
    ARCHIVED = "archived", "公開終了"


class ConsumerAlert(db.Model):
    """One 注意喚起: the method (手口), where, what the fraudster says, what to do."""

    __tablename__ = "consumer_alert"
    __table_args__ = (sa.Index("ix_consumer_alert_status_published", "status", "published_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    method: Mapped[str] = mapped_column(sa.Text)  # 手口
    area: Mapped[str] = mapped_column(sa.String(200), default="")  # 地域
    phrases: Mapped[str] = mapped_column(sa.Text, default="")  # 犯人がよく使う言葉 (one a line)
    advice: Mapped[str] = mapped_column(sa.Text)  # 対処法
    # The public English page shows these when given (data never goes through gettext); an
    # item without its English is shown in Japanese, marked as such.
    title_en: Mapped[str] = mapped_column(sa.String(200), default="")
    advice_en: Mapped[str] = mapped_column(sa.Text, default="")
    method_en: Mapped[str] = mapped_column(sa.Text, default="")
    area_en: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus), default=AlertStatus.DRAFT)
    # The case it came from: staff only; an id, no copy of anything personal.
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    # The redactor's findings when fields were saved (field, kind and label only, for review).
    redaction_notes: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the departments' daily digest carried it (taken by a conditional update).
    digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket | None] = relationship()
    author: Mapped[Staff | None] = relationship(foreign_keys=[author_id])
    approved_by: Mapped[Staff | None] = relationship(foreign_keys=[approved_by_id])

    TEXT_FIELDS = (
        *("title", "method", "area", "phrases", "advice"),
        *("title_en", "method_en", "area_en", "advice_en"),
    )

    @property
    def status_label(self) -> str:
        return AlertStatus(self.status).label

    @property
    def phrase_list(self) -> list[str]:
        return [line.strip() for line in (self.phrases or "").splitlines() if line.strip()]

    @property
    def is_public(self) -> bool:
        return self.status == AlertStatus.PUBLISHED

    def citizen_text(self) -> str:
        """The alert as a LINE message or a digest paragraph: the approved fields only."""
        parts = [f"【注意喚起】{self.title}"]
        if self.area:
            parts.append(f"地域：{self.area}")
        parts.append(f"手口：{self.method}")
        if self.phrase_list:
            parts.append("こんな言葉に注意：" + "／".join(f"「{p}」" for p in self.phrase_list))
        parts.append(f"対処法：{self.advice}")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<ConsumerAlert {self.id} {self.status}>"
