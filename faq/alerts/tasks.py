"""The alerts' worker job: the departments' daily digest, through the outbox (mail)."""

from __future__ import annotations

import time

from consult.extensions import db
from faq.alerts import services

EVERY_SECONDS = 60.0  # the lane runs every few seconds; the digest is looked at once a minute
_last = {"at": float("-inf")}


def digest() -> int:
    """Queue the day's digest when it is due and something new was published; owns its
    transaction. Several workers may run it: the alerts are taken by a conditional update."""
    if time.monotonic() - _last["at"] < EVERY_SECONDS:
        return 0
    _last["at"] = time.monotonic()
    try:
        sent = services.send_digest()
        db.session.commit()
        return sent
    except Exception:
        db.session.rollback()
        raise
