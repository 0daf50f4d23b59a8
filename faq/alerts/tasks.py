"""The alerts' worker job: the departments' daily digest, through the outbox (mail)."""

from __future__ import annotations

from consult.extensions import db
from faq.alerts import services


def digest() -> int:
    """Queue the digest when it is due and something new was published; owns its transaction."""
    try:
        sent = services.send_digest()
        db.session.commit()
        return sent
    except Exception:
        db.session.rollback()
        raise
