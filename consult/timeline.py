"""The typed shape of a timeline entry's data, per kind, with one writer and one reader.

`TimelineEntry.data` stays JSON (no migration), but no code reads its keys by hand: a service
writes a `MessageOut` or a `Delivery` through `dump` (tickets.add_entry calls it), and pages,
the automatic-answer policy and tests read one back through `load` (`entry.details`). The
reader also understands the keys that rows written before these shapes carry (`auto`,
`auto_ack`, `auto_faq`, `auto_until`), so old tickets show and count as they did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consult.models import EntryKind


class Automatic(enum.StrEnum):
    """Why an outgoing message was sent without a consultant (the automatic-answer policy's
    kinds: consult.services.auto_answer)."""

    ACK = "ack"  # the first message is acknowledged
    OUT_OF_HOURS = "out_of_hours"  # once per closed spell: when a consultant will answer
    FAQ = "faq"  # out of hours, a clear match with a public FAQ entry, once per ticket

    @property
    def label(self) -> str:
        """The badge on the ticket's timeline."""
        return "FAQ自動回答" if self is Automatic.FAQ else "自動送信"


class DeliveryStatus(enum.StrEnum):
    FAILED = "failed"
    RESENDING = "resending"


@dataclass(frozen=True)
class MessageOut:
    """A message to the citizen, queued in the outbox with its entry (tickets.record_outgoing)."""

    channel: str
    outbox_id: int | None = None
    subject: str | None = None
    automatic: Automatic | None = None
    faq_entry_id: int | None = None  # Automatic.FAQ: the public entry that was sent
    auto_until: datetime | None = None  # Automatic.OUT_OF_HOURS: the opening it announced


@dataclass(frozen=True)
class Delivery:
    """What became of an outgoing message: failed for good, or sent again after a crash."""

    status: DeliveryStatus
    outbox_id: int | None = None
    inbound_id: int | None = None  # a bounce: the stored mail that reported it


Details = MessageOut | Delivery
KIND_OF: dict[type, EntryKind] = {MessageOut: EntryKind.MESSAGE_OUT, Delivery: EntryKind.DELIVERY}


def dump(details: Details) -> dict[str, Any]:
    """The JSON stored for typed details; None values are left out."""
    if isinstance(details, MessageOut):
        data: dict[str, Any] = {
            "channel": details.channel,
            "outbox_id": details.outbox_id,
            "subject": details.subject,
            "automatic": details.automatic.value if details.automatic else None,
            "faq_entry_id": details.faq_entry_id,
            "auto_until": details.auto_until.isoformat() if details.auto_until else None,
        }
    elif isinstance(details, Delivery):
        data = {
            "status": details.status.value,
            "outbox_id": details.outbox_id,
            "inbound_id": details.inbound_id,
        }
    else:
        raise TypeError(f"no timeline shape for {type(details).__name__}")
    return {key: value for key, value in data.items() if value is not None}


def load(kind: EntryKind, data: dict | None) -> Details | None:
    """The typed details of an entry of this kind, or None for kinds without a shape yet."""
    data = data or {}
    if kind == EntryKind.MESSAGE_OUT:
        return MessageOut(
            channel=str(data.get("channel") or ""),
            outbox_id=_int(data.get("outbox_id")),
            subject=data.get("subject"),
            automatic=_automatic(data),
            faq_entry_id=_int(data.get("faq_entry_id", data.get("auto_faq"))),
            auto_until=_when(data.get("auto_until")),
        )
    if kind == EntryKind.DELIVERY:
        try:
            status = DeliveryStatus(data.get("status"))
        except ValueError:
            status = DeliveryStatus.FAILED
        return Delivery(
            status=status,
            outbox_id=_int(data.get("outbox_id")),
            inbound_id=_int(data.get("inbound_id")),
        )
    return None


def _automatic(data: dict) -> Automatic | None:
    """The kind of an automatic answer; rows before the typed shape had flags instead."""
    if data.get("automatic"):
        try:
            return Automatic(data["automatic"])
        except ValueError:
            return None
    if data.get("auto_faq"):
        return Automatic.FAQ
    if data.get("auto_until"):
        return Automatic.OUT_OF_HOURS
    if data.get("auto_ack") or data.get("auto"):
        return Automatic.ACK  # email's acknowledgement; LINE's answer to a first message
    return None


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _when(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
