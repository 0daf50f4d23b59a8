"""The handoff's worker jobs: each runs in the worker's app context and owns its transaction."""

from __future__ import annotations

from consult.extensions import db
from handoff.services import escalation


def escalations() -> int:
    """Escalate the handoffs nobody accepted in time, and commit the round. Several workers may
    run it: each handoff is claimed by a conditional update, so nobody is alerted twice."""
    try:
        count = escalation.escalate_due()
        db.session.commit()
        return count
    except Exception:
        db.session.rollback()
        raise
