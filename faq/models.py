"""The FAQ's data: entries, their revisions, source tickets, synonyms, votes, index changes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.enums import LabelledEnum
from consult.extensions import db
from consult.models import AppendOnlyError, Category, Department, Staff, Ticket, _enum
from consult.timeutil import UTCDateTime, utcnow


class FaqStatus(LabelledEnum):
    DRAFT = "draft", "下書き"
    REVIEW = "review", "承認待ち"
    PUBLISHED = "published", "公開中"
    ARCHIVED = "archived", "公開終了"


class FaqVisibility(LabelledEnum):
    STAFF = "staff", "職員のみ"
    PUBLIC = "public", "市民にも公開"


Visibility = FaqVisibility


class FaqEntry(db.Model):
    __tablename__ = "faq_entry"
    __table_args__ = (sa.Index("ix_faq_entry_status_visibility", "status", "visibility"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(sa.String(500))
    answer: Mapped[str] = mapped_column(sa.Text)
    keywords: Mapped[str] = mapped_column(sa.String(500), default="")
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("category.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"), index=True)
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.STAFF)
    status: Mapped[FaqStatus] = mapped_column(_enum(FaqStatus), default=FaqStatus.DRAFT)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    # The redactor's findings when the draft was made, for the reviewer (labels and kinds only).
    redaction_notes: Mapped[list] = mapped_column(sa.JSON, default=list)
    revision: Mapped[int] = mapped_column(default=1)
    view_count: Mapped[int] = mapped_column(default=0)
    helpful_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[Category | None] = relationship()
    department: Mapped[Department | None] = relationship()
    author: Mapped[Staff | None] = relationship(foreign_keys=[author_id])
    approved_by: Mapped[Staff | None] = relationship(foreign_keys=[approved_by_id])
    sources: Mapped[list[FaqSource]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="FaqSource.id"
    )

    @property
    def status_label(self) -> str:
        return FaqStatus(self.status).label

    @property
    def visibility_label(self) -> str:
        return Visibility(self.visibility).label

    @property
    def is_public(self) -> bool:
        return self.status == FaqStatus.PUBLISHED and self.visibility == Visibility.PUBLIC

    @property
    def keyword_list(self) -> list[str]:
        return [k for k in self.keywords.replace("、", ",").split(",") if k.strip()]

    def __repr__(self) -> str:
        return f"<FaqEntry {self.id} {self.status}>"


class FaqRevision(db.Model):
    """Every saved version of an entry, kept for good (append-only)."""

    __tablename__ = "faq_revision"
    __table_args__ = (sa.UniqueConstraint("entry_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("faq_entry.id"))
    number: Mapped[int]
    question: Mapped[str] = mapped_column(sa.String(500))
    answer: Mapped[str] = mapped_column(sa.Text)
    keywords: Mapped[str] = mapped_column(sa.String(500), default="")
    status: Mapped[FaqStatus] = mapped_column(_enum(FaqStatus))
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility))
    editor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    editor: Mapped[Staff | None] = relationship()

    def __repr__(self) -> str:
        return f"<FaqRevision {self.entry_id}#{self.number} {self.action}>"


class FaqSource(db.Model):
    """A closed ticket an entry came from: staff see the link, the public never does."""

    __tablename__ = "faq_source"
    __table_args__ = (sa.UniqueConstraint("entry_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("faq_entry.id"))
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("ticket.id"), index=True)

    entry: Mapped[FaqEntry] = relationship(back_populates="sources")
    ticket: Mapped[Ticket] = relationship()

    def __repr__(self) -> str:
        return f"<FaqSource {self.entry_id}<-{self.ticket_id}>"


class FaqSynonym(db.Model):
    """A group of words searched as one (個人番号カード = マイナンバーカード), edited by admins."""

    __tablename__ = "faq_synonym"

    id: Mapped[int] = mapped_column(primary_key=True)
    terms: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def term_list(self) -> list[str]:
        return [t.strip() for t in self.terms.split("=") if t.strip()]

    def __repr__(self) -> str:
        return f"<FaqSynonym {self.id}>"


class FaqVote(db.Model):
    """「役に立った」 once per browser: a hash of a random cookie, never an address or a person."""

    __tablename__ = "faq_vote"
    __table_args__ = (sa.UniqueConstraint("entry_id", "voter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("faq_entry.id"))
    voter: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<FaqVote {self.id}>"


class FaqChange(db.Model):
    """The index's revision counter: one row per change to an entry or to the synonyms.

    Each process remembers the last change id its local index has applied, and applies the
    newer ones before it answers a search, so every server answers the same.
    """

    __tablename__ = "faq_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int | None]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<FaqChange {self.id} {self.entry_id}>"


def _refuse_change(mapper, connection, target) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only")


event.listen(FaqRevision, "before_update", _refuse_change)
event.listen(FaqRevision, "before_delete", _refuse_change)
