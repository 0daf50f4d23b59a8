"""The transfer's own tables, the same on both sides (one codebase, one schema).

`TransferItem`: what waits to cross. On the relay, intake the core has not taken yet (a
booking, a move); on the core, what must go out (a message for the relay to deliver). Each item
has a stable id: sending it twice is harmless, since the receiving side keeps the ids it has
applied (`TransferReceived`) and skips one it has seen. `TransferNonce`: the nonces of signed
requests (and batch files) within the clock-skew window, so a replayed one is refused.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from consult.extensions import db
from consult.timeutil import UTCDateTime, utcnow


class TransferItem(db.Model):
    __tablename__ = "transfer_item"
    __table_args__ = (sa.Index("ix_transfer_item_order", "created_at", "id"),)

    id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<TransferItem {self.id} {self.kind}>"


class TransferReceived(db.Model):
    """An item this side has applied: the same id again changes nothing. No personal data."""

    __tablename__ = "transfer_received"

    id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TransferNonce(db.Model):
    """A signed request's (or a batch file's) nonce, kept while its time stamp is acceptable."""

    __tablename__ = "transfer_nonce"

    nonce: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RelayCopy(db.Model):
    """On the relay: one published thing the core pushed (a snapshot's row), as JSON, where the
    relay cannot hold the core's own row (its foreign keys lead to records that stay in LGWAN,
    e.g. an opinion's citizen request). Read-only: each snapshot replaces the kind's rows. Holds
    only what is published, hence no personal data."""

    __tablename__ = "relay_copy"

    kind: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    ref: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[dict] = mapped_column(sa.JSON)
