"""The search's synonym list (語＝語), edited by supervisors and administrators."""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Role
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import ValidationFailed
from faq.models import FaqSynonym
from faq.services.common import changed


def synonym_text() -> str:
    return "\n".join(
        s.terms for s in db.session.scalars(sa.select(FaqSynonym).order_by(FaqSynonym.id))
    )


def save_synonyms(actor: Actor, text: str) -> int:
    """Replace the synonym list: one group per line, words joined by ＝ or =."""
    actor.require(Role.ADMIN, Role.SUPERVISOR)
    groups = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = unicodedata.normalize("NFKC", line).strip()
        if not line:
            continue
        terms = [t.strip() for t in line.split("=") if t.strip()]
        if len(terms) < 2:
            raise ValidationFailed(f"{number}行目：「語＝語」の形で2語以上を書いてください。")
        if len(line) > 500:
            raise ValidationFailed(f"{number}行目が長すぎます（500文字まで）。")
        groups.append("=".join(terms))
    db.session.execute(sa.delete(FaqSynonym))
    for group in groups:
        db.session.add(FaqSynonym(terms=group))
    changed(None)
    audit.record(actor, "update", "faq_synonym", None)
    return len(groups)
