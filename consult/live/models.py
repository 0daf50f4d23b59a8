"""The live channel's one table: every event staff pages may receive, in commit order.

An event holds no personal data (ids, numbers, states, labels only), so the table needs no
place in disposal or disclosure; events are pruned after a day (`services.prune`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from consult.extensions import db
from consult.timeutil import UTCDateTime, utcnow


class LiveEvent(db.Model):
    """One event; its id is the cursor a page sends back when it reconnects."""

    __tablename__ = "live_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    # Who may receive it: tokens such as "role:support", "department:3", "staff:12", "desk",
    # "ticket:7" (checked against ticket access). Anyone matching one token receives it.
    audience: Mapped[list] = mapped_column(sa.JSON)
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    def __repr__(self) -> str:
        return f"<LiveEvent {self.id} {self.kind}>"
