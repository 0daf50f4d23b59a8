"""ご意見と回答: a published, redacted summary of an answered request or letter.

An entry is made from a `consult.voice.models.CitizenRequest` by the redactor and published
only when a supervisor other than its author approves it and the redactor finds nothing more.
It holds no name, no ticket number and no date finer than the month; the request link stays for
staff (which case it came from), never shown publicly.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.extensions import db
from consult.models import Category, Department, Staff
from consult.timeutil import UTCDateTime, utcnow
from faq.models import FaqStatus


class OpinionEntry(db.Model):
    __tablename__ = "opinion_entry"
    __table_args__ = (sa.Index("ix_opinion_entry_public", "status", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("citizen_request.id"), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    month: Mapped[str] = mapped_column(sa.String(7))  # the month of the answer
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    opinion: Mapped[str] = mapped_column(sa.Text)
    answer: Mapped[str] = mapped_column(sa.Text)
    # The English page's own texts (data never goes through gettext); empty: Japanese shown.
    opinion_en: Mapped[str | None] = mapped_column(sa.Text)
    answer_en: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[FaqStatus] = mapped_column(
        sa.Enum(
            FaqStatus,
            native_enum=False,
            length=20,
            values_callable=lambda members: [m.value for m in members],
            create_constraint=True,
            name="opinionstatus",
        ),
        default=FaqStatus.DRAFT,
    )
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category | None] = relationship()
    department: Mapped[Department | None] = relationship()
    author: Mapped[Staff | None] = relationship(foreign_keys=[author_id])
    approved_by: Mapped[Staff | None] = relationship(foreign_keys=[approved_by_id])

    @property
    def status_label(self) -> str:
        return FaqStatus(self.status).label

    @property
    def month_label(self) -> str:
        return f"{int(self.month[:4])}年{int(self.month[5:])}月"

    def __repr__(self) -> str:
        return f"<OpinionEntry {self.id} {self.status}>"
