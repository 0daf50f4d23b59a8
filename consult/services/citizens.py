"""Citizens: recorded only as far as the case needs, found again by phone, email or name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Citizen, CitizenEmail, CitizenPhone, CitizenRevision, Ticket
from consult.services import audit, protection
from consult.services.actor import DESK_ROLES, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import (
    fold_name,
    like_prefix,
    name_key,
    nfkc,
    normalize_email,
    normalize_phone,
)
from consult.timeutil import tokyo_today

MAX_MATCHES = 10


@dataclass
class CitizenInput:
    """What a consultant typed; validated and folded by ``clean``."""

    name: str | None = None
    kana: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    # A date, or what was typed (2026-01-31, 昭和50年1月31日 is not parsed: the form gives ISO).
    birth_date: date | str | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    def clean(self) -> CitizenInput:
        out = CitizenInput(
            name=(self.name or "").strip() or None,
            kana=(self.kana or "").strip() or None,
            address=(self.address or "").strip() or None,
            birth_date=parse_birth_date(self.birth_date),
            # Already cleaned (clean() may run twice): the folded lists are kept.
            phones=list(self.phones),
            emails=list(self.emails),
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

    @classmethod
    def of(cls, citizen: Citizen) -> CitizenInput:
        """What is known of a registered citizen, to look for their duplicates."""
        return cls(
            name=citizen.name,
            kana=citizen.kana,
            birth_date=citizen.birth_date,
            phones=[p.number for p in citizen.phones],
            emails=[e.address for e in citizen.emails],
        )

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
        name_fold=fold_name(data.name),
        kana_fold=fold_name(data.kana),
        address=data.address,
        birth_date=data.birth_date,
    )
    citizen.phones = [CitizenPhone(number=n) for n in data.phones]
    citizen.emails = [CitizenEmail(address=a) for a in data.emails]
    db.session.add(citizen)
    db.session.flush()
    audit.record(actor, "create", "citizen", citizen.id)
    return citizen


def update_citizen(actor: Actor, citizen: Citizen, data: CitizenInput) -> Citizen:
    """Changes the name, kana and address; adds phone numbers and emails not yet known.

    訂正: each changed field keeps its previous value in CitizenRevision (shown under the
    field's own rule). A member of staff who may not see a protected person's whereabouts
    (支援措置) cannot change or erase them either: those fields of the input are ignored."""
    actor.require(*DESK_ROLES)
    data = data.clean()
    if not protection.may_see_whereabouts(actor, citizen):
        data.address, data.phones, data.emails = citizen.address, [], []
    changed = []

    def revise(field_name: str, old, new) -> None:
        db.session.add(
            CitizenRevision(
                citizen_id=citizen.id,
                field=field_name,
                old_value=None if old is None else str(old)[:254],
                new_value=None if new is None else str(new)[:254],
                staff_id=actor.staff_id,
            )
        )

    for attr in ("name", "kana", "address"):
        if getattr(citizen, attr) != getattr(data, attr):
            revise(attr, getattr(citizen, attr), getattr(data, attr))
            setattr(citizen, attr, getattr(data, attr))
            changed.append(attr)
    # A birth date is kept when the form leaves it empty: it is rarely asked twice.
    if data.birth_date and citizen.birth_date != data.birth_date:
        revise("birth_date", citizen.birth_date, data.birth_date)
        citizen.birth_date = data.birth_date
        changed.append("birth_date")
    citizen.name_key = name_key(citizen.name)
    citizen.kana_key = name_key(citizen.kana)
    citizen.name_fold = fold_name(citizen.name)
    citizen.kana_fold = fold_name(citizen.kana)
    known_phones = {p.number for p in citizen.phones}
    for number in data.phones:
        if number not in known_phones:
            revise("phone", None, number)
            citizen.phones.append(CitizenPhone(number=number))
            changed.append("phone")
    known_emails = {e.address for e in citizen.emails}
    for address in data.emails:
        if address not in known_emails:
            revise("email", None, address)
            citizen.emails.append(CitizenEmail(address=address))
            changed.append("email")
    if changed:
        audit.record(actor, "update", "citizen", citizen.id, ",".join(changed))
    return citizen


def parse_birth_date(value: date | str | None) -> date | None:
    """ISO 8601 (full-width digits and slashes accepted); not in the future, not before 1900."""
    if value is None or isinstance(value, date):
        parsed = value
    else:
        text = nfkc(value).strip().replace("/", "-")
        if not text:
            return None
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(
                "生年月日は西暦で「1975-01-31」のように入力してください。"
            ) from None
    if parsed is not None and not (date(1900, 1, 1) <= parsed <= tokyo_today()):
        raise ValidationFailed("生年月日が正しくありません。1900年以降、今日までの日付です。")
    return parsed


def resolve(citizen: Citizen | None) -> Citizen | None:
    """A merged record's survivor (following a chain of merges); itself otherwise."""
    seen = set()
    while citizen is not None and citizen.merged_into_id and citizen.id not in seen:
        seen.add(citizen.id)
        citizen = db.session.get(Citizen, citizen.merged_into_id)
    return citizen


def get_citizen(
    actor: Actor, citizen_id: int, *, audit_view: bool = True, follow: bool = True
) -> Citizen:
    """A citizen by id; a merged id gives its survivor unless ``follow`` is False."""
    actor.require(*DESK_ROLES)
    citizen = db.session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("相談者が見つかりません。")
    if follow:
        citizen = resolve(citizen)
    if audit_view:
        audit.record(actor, "view", "citizen", citizen.id)
    return citizen


# --- matching ------------------------------------------------------------------------------
# Points for each piece of evidence; a candidate's score is their sum, 0–100. The rules a
# consultant would use: the same phone or email is nearly always the same person (a family's
# landline is the exception, so a different name takes points off); the same name alone is
# only a "maybe" until a birth date or a phone agrees; a different birth date is another person.
PHONE_POINTS = 60
EMAIL_POINTS = 60
NAME_POINTS = 40
KANA_POINTS = 30
BOTH_NAMES_BONUS = 15
PREFIX_POINTS = 20
BIRTH_POINTS = 30
NAME_CONFLICT = -30
PHONE_CONFLICT = -25
EMAIL_CONFLICT = -10
STRONG = 60  # at or above: intake must choose between this person and a new one
SHOWN = 20  # at or above: listed as a candidate
CANDIDATE_ROWS = 50  # rows fetched per key before scoring
PREFIX_ROWS = 20  # a surname alone: all score alike, a few are enough to show


@dataclass
class Candidate:
    citizen: Citizen
    score: int
    reasons: list[str]
    tickets: list[Ticket] = field(default_factory=list)

    @property
    def strong(self) -> bool:
        return self.score >= STRONG

    @property
    def reason(self) -> str:
        return "・".join(self.reasons)


# The JSON of the desk's live lookup and older callers name it so.
CitizenMatch = Candidate


@dataclass
class _Facts:
    """What the score reads of a citizen: plain columns, not an ORM object (a common name
    brings up to a hundred rows, of which ten are shown)."""

    id: int
    name_fold: str | None
    kana_fold: str | None
    birth_date: date | None
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)


def _facts(ids: set[int], with_emails: bool) -> list[_Facts]:
    """The candidates' columns with their phones (and emails, when the input has one) in one
    query; a citizen has one or two of each, so the joined rows stay few."""
    columns = [Citizen.id, Citizen.name_fold, Citizen.kana_fold, Citizen.birth_date]
    query = sa.select(*columns, CitizenPhone.number).outerjoin(
        CitizenPhone, CitizenPhone.citizen_id == Citizen.id
    )
    if with_emails:
        query = query.add_columns(CitizenEmail.address).outerjoin(
            CitizenEmail, CitizenEmail.citizen_id == Citizen.id
        )
    # Merged records are left out here, by primary key: as a condition of each key's lookup
    # the planner may take the (nearly all NULL) merged_into_id index instead.
    rows = db.session.execute(
        query.where(Citizen.id.in_(ids), Citizen.merged_into_id.is_(None))
    ).all()
    facts: dict[int, _Facts] = {}
    for row in rows:
        item = facts.get(row.id)
        if item is None:
            item = facts[row.id] = _Facts(row.id, row.name_fold, row.kana_fold, row.birth_date)
        if row.number:
            item.phones.add(row.number)
        if with_emails and row.address:
            item.emails.add(row.address)
    return list(facts.values())


def _score(citizen: _Facts, data: CitizenInput, folds: set[str], prefix: str | None):
    points, reasons = 0, []
    phones, emails = citizen.phones, citizen.emails
    phone_hit = bool(phones & set(data.phones))
    email_hit = bool(emails & set(data.emails))
    if phone_hit:
        points += PHONE_POINTS
        reasons.append("電話番号が一致")
    elif data.phones and phones and not email_hit:
        points += PHONE_CONFLICT
    if email_hit:
        points += EMAIL_POINTS
        reasons.append("メールアドレスが一致")
    elif data.emails and emails and not phone_hit:
        points += EMAIL_CONFLICT
    name_hit = bool(citizen.name_fold and citizen.name_fold in folds)
    kana_hit = bool(citizen.kana_fold and citizen.kana_fold in folds)
    if name_hit and kana_hit:
        points += NAME_POINTS + BOTH_NAMES_BONUS
        reasons.append("氏名・ふりがなが一致")
    elif name_hit:
        points += NAME_POINTS
        reasons.append("氏名が一致")
    elif kana_hit:
        points += KANA_POINTS
        reasons.append("ふりがなが一致")
    elif prefix and any(
        (f or "").startswith(prefix) for f in (citizen.name_fold, citizen.kana_fold)
    ):
        points += PREFIX_POINTS
        reasons.append("氏名の一部が一致")
    elif folds and (citizen.name_fold or citizen.kana_fold):
        points += NAME_CONFLICT
    if data.birth_date and citizen.birth_date:
        if data.birth_date != citizen.birth_date:
            return None  # another person, whatever else agrees
        points += BIRTH_POINTS
        reasons.append("生年月日が一致")
    return max(0, min(100, points)), reasons


def _tagged(via: str, query, rows: int = CANDIDATE_ROWS):
    """One key's lookup as a limited subquery of (via, id), to be joined by UNION ALL."""
    column = query.selected_columns[0]
    inner = query.with_only_columns(column.label("citizen_id")).limit(rows).subquery()
    return sa.select(sa.literal(via).label("via"), inner.c.citizen_id)


def _union(selects):
    return selects[0] if len(selects) == 1 else sa.union_all(*selects)


def _starts_with(column, prefix: str):
    """An index range on both databases: PostgreSQL's LIKE 'x%' uses the text_pattern_ops
    index; SQLite's LIKE is case-insensitive and never uses an index, a BINARY range does."""
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.and_(column >= prefix, column < prefix + "\U0010ffff")
    return column.like(like_prefix(prefix), escape="\\")


def match(
    actor: Actor, data: CitizenInput, *, limit: int = MAX_MATCHES, with_tickets: bool = True
) -> list[Candidate]:
    """Citizens who may be the person described, scored, best first (audited as a search).

    Each key is an indexed equality (phone, email, folded name or reading) or a folded-name
    prefix, so the cost does not grow with the number of citizens. Merged records are left out:
    their survivor is found instead.
    """
    actor.require(*DESK_ROLES)
    data = data.clean()
    folds = {f for f in (fold_name(data.name), fold_name(data.kana)) if f}
    prefix = None
    if folds:
        # A surname alone ("池田") finds 池田 和子 as a weak candidate, never the other way.
        shortest = min(folds, key=len)
        prefix = shortest if len(shortest) >= 2 else None
    # Every key in one round trip (UNION ALL of indexed lookups, each limited): on a loaded
    # server the number of statements, not their plans, sets the time.
    lookups = []
    if data.phones:
        lookups.append(
            _tagged(
                "phone",
                sa.select(CitizenPhone.citizen_id).where(CitizenPhone.number.in_(data.phones)),
            )
        )
    if data.emails:
        lookups.append(
            _tagged(
                "email",
                sa.select(CitizenEmail.citizen_id).where(CitizenEmail.address.in_(data.emails)),
            )
        )
    if folds:
        lookups.append(_tagged("name", sa.select(Citizen.id).where(Citizen.name_fold.in_(folds))))
        lookups.append(_tagged("name", sa.select(Citizen.id).where(Citizen.kana_fold.in_(folds))))
    ids: set[int] = set()
    named: set[int] = set()
    if lookups:
        for via, citizen_id in db.session.execute(_union(lookups)):
            ids.add(citizen_id)
            if via == "name":
                named.add(citizen_id)
    if prefix and not named:
        # Only when no one has exactly this name: a surname alone, or a name begun.
        prefixed = [
            _tagged("prefix", sa.select(Citizen.id).where(_starts_with(c, prefix)), PREFIX_ROWS)
            for c in (Citizen.name_fold, Citizen.kana_fold)
        ]
        ids.update(citizen_id for _, citizen_id in db.session.execute(_union(prefixed)))
    scored_rows: list[tuple[int, int, list[str]]] = []
    for facts in _facts(ids, bool(data.emails)) if ids else []:
        scored = _score(facts, data, folds, prefix)
        if scored and scored[0] >= SHOWN:
            scored_rows.append((scored[0], facts.id, scored[1]))
    if scored_rows:
        # 支援措置 / 利用停止: a person this actor may not find is left out as if absent; a
        # search that reached a protected person is audited and reported to the supervisors.
        hidden, stopped = protection.split_visible(actor, [row[1] for row in scored_rows])
        if hidden or stopped:
            scored_rows = [row for row in scored_rows if row[1] not in hidden | stopped]
        if hidden:
            protection.report_search(actor, hidden, "citizens.match")
    scored_rows.sort(key=lambda row: (-row[0], -row[1]))
    scored_rows = scored_rows[:limit]
    found: list[Candidate] = []
    if scored_rows:
        loaded = {
            c.id: c
            for c in db.session.scalars(
                sa.select(Citizen)
                .where(Citizen.id.in_([row[1] for row in scored_rows]))
                .options(sa.orm.joinedload(Citizen.phones), sa.orm.joinedload(Citizen.emails))
            ).unique()
        }
        found = [Candidate(loaded[cid], score, why) for score, cid, why in scored_rows]
    if with_tickets and found:
        latest = recent_tickets_of([c.citizen.id for c in found], limit=5)
        for candidate in found:
            candidate.tickets = latest.get(candidate.citizen.id, [])
    if not data.empty or data.birth_date:
        audit.record(actor, "search", "citizen", None, f"matches={len(found)}")
    return found


def find_matches(
    actor: Actor,
    *,
    phone: str | None = None,
    name: str | None = None,
    email: str | None = None,
    kana: str | None = None,
    birth_date: date | str | None = None,
) -> list[Candidate]:
    """The desk's live lookup while the consultant types: ``match`` on what is there so far.

    Unlike intake, a half-typed phone or email is not an error here; it is left out."""
    return match(
        actor,
        CitizenInput(
            name=name,
            kana=kana,
            phone=phone if phone and normalize_phone(phone) else None,
            email=email if email and normalize_email(email) else None,
            birth_date=_birth_or_none(birth_date),
        ),
    )


def _birth_or_none(value):
    try:
        return parse_birth_date(value)
    except ValidationFailed:
        return None


class ChoiceRequired(ValidationFailed):
    """Intake would create a citizen while a strong match exists: the consultant must choose."""

    def __init__(self, candidates: list[Candidate]):
        super().__init__(
            "登録済みの相談者と一致する可能性があります。"
            "「この方として受け付ける」か「新しい相談者として受け付ける」を選んでください。"
        )
        self.candidates = candidates


NEW_CITIZEN = "new"


def citizen_for_intake(
    actor: Actor, data: CitizenInput, *, choice: str | int | None = None
) -> Citizen | None:
    """The citizen of a new consultation: the one chosen, a new one, or a question back.

    ``choice`` is a citizen id (this person), ``NEW_CITIZEN`` (a new person, after seeing the
    candidates) or empty. Empty while a strong match exists raises ``ChoiceRequired`` with the
    candidates, so no path of intake creates a duplicate without a consultant's decision.
    """
    actor.require(*DESK_ROLES)
    if choice not in (None, "", NEW_CITIZEN):
        try:
            citizen_id = int(choice)
        except (TypeError, ValueError):
            raise ValidationFailed("相談者の選択が正しくありません。") from None
        return get_citizen(actor, citizen_id, audit_view=False)
    cleaned = data.clean()
    if cleaned.empty:
        return None
    if choice != NEW_CITIZEN:
        strong = [c for c in match(actor, cleaned) if c.strong]
        if strong:
            raise ChoiceRequired(strong)
    return create_citizen(actor, cleaned)


def _not_merged():
    """Tickets not merged into another, as an expression no index serves: a plain IS NULL
    lets the planner take ix_ticket_merged_into_id (nearly every row) over the citizen's."""
    return sa.func.coalesce(Ticket.merged_into_id, 0) == 0


def recent_tickets_of(citizen_ids: list[int], limit: int = 5) -> dict[int, list[Ticket]]:
    """The latest tickets of each of these citizens, in one query (a window per citizen)."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=Ticket.citizen_id,
            order_by=(Ticket.created_at.desc(), Ticket.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        sa.select(Ticket.id.label("ticket_id"), rank)
        .where(Ticket.citizen_id.in_(citizen_ids), _not_merged())
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(Ticket)
        .join(ranked, ranked.c.ticket_id == Ticket.id)
        .where(ranked.c.rank <= limit)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )
    out: dict[int, list[Ticket]] = {}
    for ticket in rows:
        out.setdefault(ticket.citizen_id, []).append(ticket)
    return out


def recent_tickets(citizen_id: int, limit: int = 20, exclude_id: int | None = None) -> list[Ticket]:
    query = (
        sa.select(Ticket)
        # A merged ticket is shown through its survivor (its number redirects there).
        .where(Ticket.citizen_id == citizen_id, _not_merged())
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    if exclude_id:
        query = query.where(Ticket.id != exclude_id)
    return list(db.session.scalars(query))


WHEREABOUTS_FIELDS = frozenset({"address", "phone", "email"})
FIELD_LABELS = {
    "name": "氏名",
    "kana": "ふりがな",
    "address": "住所",
    "birth_date": "生年月日",
    "phone": "電話番号",
    "email": "メールアドレス",
}


def revisions(actor: Actor, citizen: Citizen) -> list[CitizenRevision]:
    """訂正の履歴: earlier values, newest first, under each field's rule (a protected person's
    whereabouts only for those who may see them)."""
    actor.require(*DESK_ROLES)
    rows = list(
        db.session.scalars(
            sa.select(CitizenRevision)
            .where(CitizenRevision.citizen_id == citizen.id)
            .options(sa.orm.selectinload(CitizenRevision.staff))
            .order_by(CitizenRevision.id.desc())
        )
    )
    if not protection.may_see_whereabouts(actor, citizen):
        rows = [r for r in rows if r.field not in WHEREABOUTS_FIELDS]
    return rows
