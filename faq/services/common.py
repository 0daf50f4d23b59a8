"""What the FAQ's services share: who may read, edit and approve, the limits of an entry, the
refusal to publish personal data, and the change counter of the search index."""

from __future__ import annotations

from consult.extensions import db
from consult.models import Role
from consult.services.errors import DomainError
from faq.models import FaqChange, FaqEntry

READ_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.SUPPORT, Role.ADMIN)
EDIT_ROLES = (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.ADMIN)
APPROVE_ROLES = (Role.SUPERVISOR, Role.ADMIN)
MAX_QUESTION = 500
MAX_ANSWER = 20_000
MAX_KEYWORDS = 500


class PublishBlocked(DomainError):
    """The redactor still finds personal data: the spans say where, for the reviewer."""

    def __init__(self, spans: list):
        kinds = "、".join(dict.fromkeys(s.label for s in spans))
        super().__init__(
            f"個人情報の可能性がある箇所が{len(spans)}件残っているため公開できません（{kinds}）。"
            "該当箇所を修正してから承認してください。"
        )
        self.spans = spans


def changed(entry: FaqEntry | None) -> None:
    """Count a change (the search index's revision counter); after the commit, the request's
    teardown brings this process's index up (faq._setup)."""
    db.session.add(FaqChange(entry_id=entry.id if entry else None))
    db.session.info["faq_changed"] = True
