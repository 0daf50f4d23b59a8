"""The multi-party corpus of tests/fixtures/disclosure/cases.json, built through the services."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from consult.extensions import db
from consult.models import Channel, Citizen, EntryKind, Staff, Ticket
from consult.services import attachments, citizens, merge, tickets
from consult.services.actor import SYSTEM, Actor

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "disclosure" / "cases.json"


def load() -> dict:
    return json.loads(CASES.read_text(encoding="utf-8"))


@dataclass
class Corpus:
    data: dict
    staff: dict[str, Staff] = field(default_factory=dict)
    citizens: dict[str, Citizen] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    bookings: dict[str, str] = field(default_factory=dict)  # ticket key → booking reference

    def person(self, key: str) -> dict:
        return next(c for c in self.data["citizens"] if c["key"] == key)

    def own(self, key: str) -> list[str]:
        return self.person(key)["own"]

    def numbers_of(self, key: str) -> list[str]:
        return [t.number for k, t in self.tickets.items() if k.startswith(key)]


def build(make_staff, *, with_handoffs: bool = True, with_bookings: bool = True) -> Corpus:
    data = load()
    corpus = Corpus(data)
    for item in data["staff"]:
        corpus.staff[item["key"]] = make_staff(
            item["role"], full_name=item["full_name"], display_name=item["display_name"]
        )
    for item in data["citizens"]:
        corpus.citizens[item["key"]] = citizens.create_citizen(
            SYSTEM,
            citizens.CitizenInput(
                name=item["name"],
                kana=item["kana"],
                phone=item["phone"],
                email=item["email"],
                address=item["address"],
                birth_date=item.get("birth_date"),
            ),
        )
    db.session.commit()
    for item in data["tickets"]:
        staff = corpus.staff[item["by"]]
        actor = Actor(staff, "127.0.0.1")
        ticket = tickets.create_ticket(
            actor,
            channel=Channel(item["channel"]),
            subject=item["subject"],
            citizen=corpus.citizens[item["citizen"]],
            assignee=staff,
        )
        for entry in item["entries"]:
            author = corpus.staff[entry["by"]] if "by" in entry else None
            tickets.add_entry(ticket, EntryKind(entry["kind"]), author=author, body=entry["body"])
        if "attachment" in item:
            attachments.add(
                actor, ticket, item["attachment"]["name"], item["attachment"]["data"].encode()
            )
        corpus.tickets[item["key"]] = ticket
        db.session.commit()
    for item in data["tickets"]:
        ticket = corpus.tickets[item["key"]]
        for other in item.get("related", []):
            if not merge.related(ticket) or all(
                t.id != corpus.tickets[other].id for _, t in merge.related(ticket)
            ):
                merge.link_tickets(SYSTEM, ticket, corpus.tickets[other])
        if with_handoffs and "handoff_record" in item:
            _handoff_record(ticket, item["handoff_record"])
        if with_bookings and "booking" in item:
            corpus.bookings[item["key"]] = _booking(
                ticket, corpus.person(item["citizen"]), item["booking"]
            )
        if "close" in item:
            tickets.close(Actor(corpus.staff[item["by"]], "127.0.0.1"), ticket, item["close"])
        db.session.commit()
    return corpus


def _handoff_record(ticket: Ticket, text: str) -> None:
    """A department's 対応記録 on the case (an external body answering in one go)."""
    from consult.models import Department
    from handoff import services as handoff_services
    from handoff.models import Response

    department = Department(code=f"dept{ticket.id}", name="人権・男女共同参画課")
    db.session.add(department)
    db.session.flush()
    [handoff] = handoff_services.create(
        SYSTEM, ticket, [handoff_services.Request(department.id, "支援措置の申出", Response.VISIT)]
    )
    handoff_services.finish_external(
        handoff, handoff_services.Record(action=text, outcome="対応済み"), "担当者"
    )


def _booking(ticket: Ticket, person: dict, booking: dict) -> str:
    """A booking made at the counter for the case, under the person's name and phone."""
    from datetime import timedelta

    from channels.booking.models import Booking, BookingSlot, BookingStatus, Mode
    from consult.timeutil import utcnow

    start = utcnow() + timedelta(days=3)
    slot = BookingSlot(mode=Mode.COUNTER, starts_at=start, booked=1)
    db.session.add(slot)
    db.session.flush()
    row = Booking(
        reference=booking["reference"],
        uid=f"{booking['reference']}@test",
        slot_id=slot.id,
        mode=Mode.COUNTER,
        starts_at=start,
        ends_at=start + timedelta(minutes=30),
        status=BookingStatus.BOOKED,
        name=person["name"],
        kana=person["kana"],
        phone=person["phone"].replace("-", ""),
        email=person["email"],
        content=booking["content"],
        ticket_id=ticket.id,
    )
    db.session.add(row)
    db.session.flush()
    return row.reference
