"""Citizens: recorded only as far as the case needs, found again by phone, email or name."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Citizen, CitizenEmail, CitizenPhone, Ticket
from consult.services import audit
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import like_prefix, name_key, normalize_email, normalize_phone

MAX_MATCHES = 10


@dataclass
class CitizenInput:
    """What a consultant typed; validated and folded by ``clean``."""

    name: str | None = None
    kana: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    def clean(self) -> CitizenInput:
        out = CitizenInput(
            name=(self.name or "").strip() or None,
            kana=(self.kana or "").strip() or None,
            address=(self.address or "").strip() or None,
        )
        if out.name and len(out.name) > 80:
            raise ValidationFailed("氏名は80文字以内で入力してください。")
        if out.kana and len(out.kana) > 80:
            raise ValidationFailed("ふりがなは80文字以内で入力してください。")
        if out.address and len(out.address) > 200:
            raise ValidationFailed("住所は200文字以内で入力してください。")
        if self.phone and self.phone.strip():
            number = normalize_phone(self.phone)
            if number is None:
                raise ValidationFailed(
                    "電話番号の形式が正しくありません。市外局番から数字で入力してください（例：087-839-2111）。"
                )
            out.phones = [number]
        if self.email and self.email.strip():
            address = normalize_email(self.email)
            if address is None:
                raise ValidationFailed("メールアドレスの形式が正しくありません。")
            out.emails = [address]
        return out

    @property
    def empty(self) -> bool:
        return not (self.name or self.kana or self.phones or self.emails or self.address)


def create_citizen(actor: Actor, data: CitizenInput) -> Citizen:
    actor.require(*DESK_ROLES)
    data = data.clean()
    if data.empty:
        raise ValidationFailed(
            "相談者の氏名・電話番号・メールアドレスのいずれかを入力してください。"
        )
    citizen = Citizen(
        name=data.name,
        kana=data.kana,
        name_key=name_key(data.name),
        kana_key=name_key(data.kana),
        address=data.address,
    )
    citizen.phones = [CitizenPhone(number=n) for n in data.phones]
    citizen.emails = [CitizenEmail(address=a) for a in data.emails]
    db.session.add(citizen)
    db.session.flush()
    audit.record(actor, "create", "citizen", citizen.id)
    return citizen


def update_citizen(actor: Actor, citizen: Citizen, data: CitizenInput) -> Citizen:
    """Changes the name, kana and address; adds phone numbers and emails not yet known."""
    actor.require(*DESK_ROLES)
    data = data.clean()
    changed = []
    for attr in ("name", "kana", "address"):
        if getattr(citizen, attr) != getattr(data, attr):
            setattr(citizen, attr, getattr(data, attr))
            changed.append(attr)
    citizen.name_key = name_key(citizen.name)
    citizen.kana_key = name_key(citizen.kana)
    known_phones = {p.number for p in citizen.phones}
    for number in data.phones:
        if number not in known_phones:
            citizen.phones.append(CitizenPhone(number=number))
            changed.append("phone")
    known_emails = {e.address for e in citizen.emails}
    for address in data.emails:
        if address not in known_emails:
            citizen.emails.append(CitizenEmail(address=address))
            changed.append("email")
    if changed:
        audit.record(actor, "update", "citizen", citizen.id, ",".join(changed))
    return citizen


def get_citizen(actor: Actor, citizen_id: int, *, audit_view: bool = True) -> Citizen:
    actor.require(*DESK_ROLES)
    citizen = db.session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("相談者が見つかりません。")
    if audit_view:
        audit.record(actor, "view", "citizen", citizen.id)
    return citizen


@dataclass
class CitizenMatch:
    citizen: Citizen
    reason: str
    tickets: list[Ticket]


def find_matches(
    actor: Actor, *, phone: str | None = None, name: str | None = None, email: str | None = None
) -> list[CitizenMatch]:
    """Citizens who may be this caller, each with their latest tickets, for the consultant."""
    actor.require(*DESK_ROLES)
    found: dict[int, CitizenMatch] = {}

    def add(citizens, reason):
        for citizen in citizens:
            found.setdefault(citizen.id, CitizenMatch(citizen, reason, []))

    number = normalize_phone(phone) if phone else None
    if number:
        add(
            db.session.scalars(
                sa.select(Citizen)
                .join(CitizenPhone)
                .where(CitizenPhone.number == number)
                .limit(MAX_MATCHES)
            ),
            "電話番号が一致",
        )
    address = normalize_email(email) if email else None
    if address:
        add(
            db.session.scalars(
                sa.select(Citizen)
                .join(CitizenEmail)
                .where(CitizenEmail.address == address)
                .limit(MAX_MATCHES)
            ),
            "メールアドレスが一致",
        )
    key = name_key(name)
    if key and len(key) >= 2:
        pattern = like_prefix(key)
        add(
            db.session.scalars(
                sa.select(Citizen)
                .where(
                    sa.or_(
                        Citizen.name_key.like(pattern, escape="\\"),
                        Citizen.kana_key.like(pattern, escape="\\"),
                    )
                )
                .order_by(Citizen.id.desc())
                .limit(MAX_MATCHES)
            ),
            "氏名が一致",
        )
    matches = list(found.values())[:MAX_MATCHES]
    for match in matches:
        match.tickets = recent_tickets(match.citizen.id, limit=5)
    if number or address or key:
        audit.record(actor, "search", "citizen", None, f"matches={len(matches)}")
    return matches


def recent_tickets(citizen_id: int, limit: int = 20, exclude_id: int | None = None) -> list[Ticket]:
    query = (
        sa.select(Ticket)
        .where(Ticket.citizen_id == citizen_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    if exclude_id:
        query = query.where(Ticket.id != exclude_id)
    return list(db.session.scalars(query))
