"""Retention and disposal (保存期間・廃棄): when a closed case's personal data goes, and its going.

**The rule.** Each category has a retention class (保存期間: 1, 3, 5, 10 or 30 years), set by
administrators. As a city's 文書管理規程 counts it, the period starts on 1 April of the fiscal
year after the one in which the case closed (its 完結日), so a case closed on 31 March 2026
(2025年度) starts counting on 2026-04-01, and one closed on 1 April 2026 (2026年度) on
2027-04-01; the days are Japanese days. A 5-year case of 2025年度 expires on 2031-03-31 and is a
candidate for disposal from 2031-04-01.

**The defaults** (`DEFAULT_YEARS`) follow the 保存期間基準表 of a typical city's 文書管理規程
(30年: 重要な権利義務・条例等; 10年: 訴訟・不服申立て、重要な事業の記録; 5年: 相談・苦情・要望の
記録、事業の実施の記録; 3年: 定型的な照会・案内の記録; 1年: 軽易なもの):
行政手続き (procedures: mostly 定型的な照会・手続き案内) 3 years; その他 3 years; 消費生活トラブル,
市への要望, 経営相談, 家計相談, 心配事 5 years (相談記録; 消費生活相談 and 生活困窮者の相談 records
are kept five years in most cities); a case without a category, or of a category the centre
added, 5 years. An administrator changes them on 保存期間の設定 (consult.views.records).

**The month's list.** A supervisor draws up the 廃棄予定一覧 (`prepare_list`): the candidates by
class and category, with counts; no names, no subjects. They approve it, or hold items back
first. A legal hold (訴訟・不服申立て等, `set_hold`) on a ticket or a citizen stops disposal of it
(of all the citizen's tickets) until it is lifted; both are audited.

**Disposal** (`dispose_batch`, run in batches by consult.tasks.dispose_approved, each batch its own
short transaction) removes the personal data of approved tickets everywhere it lives, and keeps
what statistics need. Found by going through every Text/String/JSON column of every model and
every folder under DATA_DIR:

kernel (this module):
- citizen: name, kana, name_key, kana_key, name_fold, kana_fold, address, birth_date → NULL,
  when no live (undisposed) ticket of theirs remains and no legal hold stands; also the records
  merged into them (同一人物の統合); citizen_phone.number, citizen_email.address → rows deleted;
- ticket: subject → "", resolution_summary → NULL, citizen_id → NULL; the row stays, with its
  number, channel, category, status, dates and durations (the reports and their rollups,
  consult.services.reports / report_rollup, read nothing else), and disposed_at set;
- timeline_entry: body → "" and data stripped to numbers and known codes (from/to states,
  channel, automatic kind), so counts and durations of events stay;
- ticket_search (the search index; on SQLite FTS5 follows by its trigger): rows deleted;
- outbox_message: recipient, subject, body, headers, last_error cleared (the row and its times
  stay);
- attachment: rows deleted and their files under DATA_DIR/attachments/ deleted after commit;
- callback, ticket_link: rows deleted (ids only, but they tie a case to people and other cases);
- merge_record.reason → "" for merges of these tickets or of the cleared citizens;
- incident.description → "", incident.citizen_id → NULL (the categories stay for the report);
- legal_hold.reason / lift_reason of the tickets' lifted holds → "";
- disposal_item / disposal_list hold ids and dates only; audit_event holds no personal data and
  has its own retention (`dispose_audit`).

packages (their Disposer, listed on plugins.Disposer):
- channels.email: email_inbound rows and their raw .eml files (DATA_DIR/email/raw), the
  attachments' rows and files (DATA_DIR/email/attachments), email_thread (address, sender
  name), email_thread_message;
- channels.line: line_event.payload and chat_key, the raw webhook body (line_delivery.body) of
  the deliveries that carried them, line_media rows and files (DATA_DIR/line), line_link_code,
  line_ticket, and line_contact (the LINE user id) of a person with no live ticket;
- channels.booking: booking name, kana, email, phone, content, video_url;
- handoff: summary, decline_reason, 対応記録 (record_action/outcome/follow_up/follow_up_by),
  accepted_by_name;
- faq: faq_source links to the tickets (entries themselves were redacted before publication);
- api: bodies of webhook deliveries still waiting that carry these tickets' numbers;
- the phone and counter channels hold no personal data (times, rooms, numbers); the live
  channel's events hold none and are pruned after a day; the FAQ's whoosh index (DATA_DIR) holds
  published, redacted entries only. The relay keeps a booking blanked once the core has it,
  deletes delivered messages at once, and deletes what the core has taken (consult.transfer).

**Records that belong to no case** (a booking never turned into one, ignored or quarantined mail,
LINE events and users without a case, messages sent to no case, copies that never crossed between
the zones, on the relay as on the core) have no ticket whose retention reaches them: they go by
their own date and `unlinked_years` (below), listed by kind, approved and recorded with the month's
list (`dispose_unlinked`; the packages' parts are their Disposer's `unlinked` kinds).

**The 廃棄簿** (DisposalRecord) gets one row per ticket: its number, class, category, channel,
dates, the counts by kind, who approved the list and when, who ran the disposal; never the data.

**The audit log** keeps its own, longer retention (`audit_years`, default 10 years, an
administrator's setting): `dispose_audit` deletes older rows in batches and records how many in
the 廃棄簿. It is the only code that may change audit or timeline rows, through the database's
append-only triggers, by holding a `disposal_permit` row inside its own transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from consult import plugins
from consult.extensions import db
from consult.models import (
    RETENTION_YEARS,
    Attachment,
    AuditEvent,
    Callback,
    Category,
    CentreSetting,
    Citizen,
    CitizenEmail,
    CitizenFlagEvent,
    CitizenPhone,
    CitizenRevision,
    DisposalItem,
    DisposalList,
    DisposalPermit,
    DisposalRecord,
    Incident,
    LegalHold,
    MergeRecord,
    OutboxMessage,
    Role,
    SafeFile,
    Status,
    Ticket,
    TicketLink,
    TicketSearch,
    TimelineEntry,
)
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.timeutil import TOKYO, fiscal_year, tokyo_today, utcnow

DEFAULT_YEARS = {
    "procedures": 3,
    "consumer": 5,
    "requests": 5,
    "business": 5,
    "household": 5,
    "worries": 5,
    "other": 3,
}
FALLBACK_YEARS = 5  # no category, or a category the centre added without choosing
AUDIT_SETTING = "retention.audit_years"
DEFAULT_AUDIT_YEARS = 10
AUDIT_YEARS_RANGE = (5, 100)
RETENTION_LABELS = {years: f"{years}年" for years in RETENTION_YEARS}

ADMIN_ROLES = (Role.ADMIN,)
APPROVER_ROLES = (Role.SUPERVISOR,)
# Who may read the lists and the 廃棄簿 (no personal data on them).
READER_ROLES = (Role.SUPERVISOR, Role.ADMIN)

KERNEL_LABELS = {
    "citizen": "相談者の氏名・かな・住所・生年月日",
    "citizen_phone": "相談者の電話番号",
    "citizen_email": "相談者のメールアドレス",
    "citizen_revision": "相談者の訂正の履歴（訂正前の値）",
    "citizen_flag_reason": "支援措置・利用停止の設定理由",
    "ticket_text": "相談の件名・解決内容",
    "timeline_text": "経過の本文",
    "search_document": "検索索引",
    "outbox": "送信メッセージの宛先・本文",
    "attachment": "添付ファイル",
    "safe_file": "無害化したファイル（変換後の画像・文字）",
    "file": "データフォルダのファイル",
    "callback": "折り返しの予定",
    "ticket_link": "関連する相談の結び付き",
    "merge_reason": "統合の理由",
    "incident_text": "カスハラ事案の記述",
    "legal_hold_reason": "訴訟ホールドの理由",
    "disclosure_file": "開示請求のために作成した書類",
}


# --- the rule -----------------------------------------------------------------------------------


def years_of(category: Category | None) -> int:
    if category is None:
        return FALLBACK_YEARS
    return category.retention_years or DEFAULT_YEARS.get(category.code, FALLBACK_YEARS)


def closed_on(closed_at: datetime) -> date:
    """The Japanese day the case closed (完結日)."""
    return closed_at.astimezone(TOKYO).date()


def counting_starts(closed_at: datetime) -> date:
    """1 April of the fiscal year after the one in which the case closed."""
    return date(fiscal_year(closed_on(closed_at)) + 1, 4, 1)


def expires_on(closed_at: datetime, years: int) -> date:
    """The last day it must be kept: the end of the `years`-th fiscal year of counting."""
    start = counting_starts(closed_at)
    return date(start.year + years, 3, 31)


def is_due(closed_at: datetime, years: int, today: date) -> bool:
    return today > expires_on(closed_at, years)


def cutoff(years: int, today: date) -> datetime:
    """Cases that closed before this instant (UTC) are due on `today`: those of fiscal years up
    to fiscal_year(today) - years - 1, i.e. closed before 1 April (Tokyo) of fy(today) - years."""
    day = date(fiscal_year(today) - years, 4, 1)
    return datetime.combine(day, time(0), tzinfo=TOKYO).astimezone(UTC)


def _years_by_category() -> dict[int, int]:
    return {c.id: years_of(c) for c in db.session.scalars(sa.select(Category))}


def _due_condition(today: date, years_by_category: dict[int, int] | None = None):
    """A WHERE clause for the tickets whose retention has run out on `today`."""
    years_by_category = _years_by_category() if years_by_category is None else years_by_category
    groups: dict[int, list[int]] = defaultdict(list)
    for category_id, years in years_by_category.items():
        groups[years].append(category_id)
    expired = [
        sa.and_(Ticket.category_id.in_(ids), Ticket.closed_at < cutoff(years, today))
        for years, ids in sorted(groups.items())
    ]
    expired.append(
        sa.and_(Ticket.category_id.is_(None), Ticket.closed_at < cutoff(FALLBACK_YEARS, today))
    )
    return sa.and_(
        Ticket.status == Status.CLOSED,
        Ticket.disposed_at.is_(None),
        Ticket.closed_at.is_not(None),
        # A ticket merged into another goes with its survivor (dispose_batch adds it).
        Ticket.merged_into_id.is_(None),
        sa.or_(*expired),
    )


def _held_condition():
    """Tickets under a legal hold, their own or their citizen's."""
    active = LegalHold.lifted_at.is_(None)
    return sa.or_(
        sa.exists().where(LegalHold.ticket_id == Ticket.id, active),
        sa.exists().where(
            LegalHold.citizen_id == Ticket.citizen_id,
            Ticket.citizen_id.is_not(None),
            active,
        ),
    )


# --- settings (administrators) ------------------------------------------------------------------


def set_category_years(actor: Actor, category: Category, years: int | str | None) -> None:
    actor.require(*ADMIN_ROLES)
    try:
        value = int(years) if years not in (None, "") else None
    except (TypeError, ValueError):
        value = -1
    if value is not None and value not in RETENTION_YEARS:
        raise ValidationFailed(
            "保存期間は " + "・".join(f"{y}年" for y in RETENTION_YEARS) + " から選んでください。"
        )
    if category.retention_years != value:
        category.retention_years = value
        audit.record(
            actor, "update", "category", category.id, detail=f"保存期間 {years_of(category)}年"
        )
    db.session.flush()


def audit_years() -> int:
    row = db.session.get(CentreSetting, AUDIT_SETTING)
    try:
        return int(row.value) if row else DEFAULT_AUDIT_YEARS
    except ValueError:
        return DEFAULT_AUDIT_YEARS


def set_audit_years(actor: Actor, years: int | str) -> None:
    actor.require(*ADMIN_ROLES)
    low, high = AUDIT_YEARS_RANGE
    try:
        value = int(years)
    except (TypeError, ValueError):
        value = 0
    if not low <= value <= high:
        raise ValidationFailed(f"監査ログの保存期間は{low}年から{high}年の間で入力してください。")
    longest = max([years_of(c) for c in db.session.scalars(sa.select(Category))] + [FALLBACK_YEARS])
    if value < longest:
        raise ValidationFailed(
            f"監査ログは相談の記録より長く保存します。最も長い保存期間（{longest}年）以上にしてください。"
        )
    row = db.session.get(CentreSetting, AUDIT_SETTING)
    if row is None:
        row = CentreSetting(key=AUDIT_SETTING, value=str(value))
        db.session.add(row)
    row.value = str(value)
    row.updated_by_id = actor.staff_id
    row.updated_at = utcnow()
    audit.record(actor, "update", "audit", None, detail=f"監査ログの保存期間 {value}年")
    db.session.flush()


# --- candidates and the month's list ------------------------------------------------------------


@dataclass
class SummaryRow:
    years: int
    category: str
    count: int = 0
    held: int = 0  # under a legal hold
    held_back: int = 0  # held back from this list by a supervisor
    disposed: int = 0

    def as_dict(self) -> dict:
        return {
            "retention_years": self.years,
            "category": self.category,
            "count": self.count,
            "legal_hold": self.held,
            "held_back": self.held_back,
            "disposed": self.disposed,
        }


def _category_names() -> dict[int | None, str]:
    names: dict[int | None, str] = {None: "（分類なし）"}
    names.update({c.id: c.name for c in db.session.scalars(sa.select(Category))})
    return names


def due_summary(actor: Actor, today: date | None = None) -> list[SummaryRow]:
    """The candidates on `today`, by class and category: counts only."""
    actor.require(*READER_ROLES)
    today = today or tokyo_today()
    years_by_category = _years_by_category()
    names = _category_names()
    held = sa.case((_held_condition(), 1), else_=0)
    rows: dict[tuple, SummaryRow] = {}
    for category_id, count, held_count in db.session.execute(
        sa.select(Ticket.category_id, sa.func.count(), sa.func.sum(held))
        .where(_due_condition(today, years_by_category))
        .group_by(Ticket.category_id)
    ):
        years = years_by_category.get(category_id, FALLBACK_YEARS)
        row = rows.setdefault(
            (years, names.get(category_id, "?")), SummaryRow(years, names.get(category_id, "?"))
        )
        row.count += count
        row.held += int(held_count or 0)
    return sorted(rows.values(), key=lambda r: (r.years, r.category))


def month_of(day: date) -> date:
    return day.replace(day=1)


def prepare_list(actor: Actor, today: date | None = None, chunk: int = 5000) -> DisposalList:
    """This month's 廃棄予定一覧, with every candidate of today not yet on it."""
    staff = actor.require(*APPROVER_ROLES)
    today = today or tokyo_today()
    month = month_of(today)
    found = db.session.scalar(sa.select(DisposalList).where(DisposalList.month == month))
    if found is None:
        found = DisposalList(month=month, created_by_id=staff.id if staff else None)
        db.session.add(found)
        db.session.flush()
    years_by_category = _years_by_category()
    on_list = sa.select(DisposalItem.ticket_id).where(DisposalItem.list_id == found.id)
    query = (
        sa.select(Ticket.id, Ticket.category_id, Ticket.closed_at)
        .where(_due_condition(today, years_by_category), Ticket.id.not_in(on_list))
        .order_by(Ticket.id)
    )
    added = 0
    rows = []
    for tid, category_id, closed_at in db.session.execute(query):
        years = years_by_category.get(category_id, FALLBACK_YEARS)
        rows.append(
            {
                "list_id": found.id,
                "ticket_id": tid,
                "retention_years": years,
                "expires_on": expires_on(closed_at, years),
            }
        )
        if len(rows) >= chunk:
            db.session.execute(sa.insert(DisposalItem), rows)
            added += len(rows)
            rows = []
    if rows:
        db.session.execute(sa.insert(DisposalItem), rows)
        added += len(rows)
    added += _prepare_unlinked(found, today)
    if added and found.approved_at is not None:
        # New items need a new approval: an approval covers what the supervisor saw.
        found.approved_at = None
        found.approved_by_id = None
        found.approved_by_name = None
    audit.record(actor, "create", "disposal_list", found.id, detail=f"{month:%Y-%m} 追加{added}件")
    db.session.flush()
    return found


def get_list(list_id: int) -> DisposalList:
    found = db.session.get(DisposalList, list_id)
    if found is None:
        raise NotFound("その廃棄予定一覧はありません。")
    return found


def lists(actor: Actor) -> list[DisposalList]:
    actor.require(*READER_ROLES)
    return list(db.session.scalars(sa.select(DisposalList).order_by(DisposalList.month.desc())))


def list_summary(actor: Actor, found: DisposalList) -> list[SummaryRow]:
    actor.require(*READER_ROLES)
    names = _category_names()
    held = sa.case((_held_condition(), 1), else_=0)
    rows: dict[tuple, SummaryRow] = {}
    for years, category_id, count, held_count, back, gone in db.session.execute(
        sa.select(
            DisposalItem.retention_years,
            Ticket.category_id,
            sa.func.count(),
            sa.func.sum(held),
            sa.func.count(DisposalItem.held_back_at),
            sa.func.count(DisposalItem.disposed_at),
        )
        .join(Ticket, Ticket.id == DisposalItem.ticket_id)
        .where(DisposalItem.list_id == found.id)
        .group_by(DisposalItem.retention_years, Ticket.category_id)
    ):
        name = names.get(category_id, "?")
        row = rows.setdefault((years, name), SummaryRow(years, name))
        row.count += count
        row.held += int(held_count or 0)
        row.held_back += back
        row.disposed += gone
    return sorted(rows.values(), key=lambda r: (r.years, r.category))


def list_items(actor: Actor, found: DisposalList, limit: int = 500) -> list[tuple]:
    """(item, ticket number, category name, closed day, under legal hold), by number: no names."""
    actor.require(*READER_ROLES)
    names = _category_names()
    held = sa.case((_held_condition(), True), else_=False)
    return [
        (item, number, names.get(category_id, "?"), closed_on(closed) if closed else None, bool(h))
        for item, number, category_id, closed, h in db.session.execute(
            sa.select(DisposalItem, Ticket.number, Ticket.category_id, Ticket.closed_at, held)
            .join(Ticket, Ticket.id == DisposalItem.ticket_id)
            .where(DisposalItem.list_id == found.id)
            .order_by(Ticket.number)
            .limit(limit)
        )
    ]


def approve(actor: Actor, found: DisposalList) -> None:
    staff = actor.require(*APPROVER_ROLES)
    if found.approved_at is not None:
        raise ValidationFailed("この廃棄予定一覧は既に承認されています。")
    from consult.models import DisposalUnlinked

    if not db.session.scalar(
        sa.select(sa.func.count()).where(DisposalItem.list_id == found.id)
    ) and not db.session.scalar(
        sa.select(sa.func.count()).where(DisposalUnlinked.list_id == found.id)
    ):
        raise ValidationFailed("廃棄予定の記録がないため、承認するものはありません。")
    found.approved_at = utcnow()
    found.approved_by_id = staff.id if staff else None
    found.approved_by_name = staff.full_name if staff else (actor.address or "system")[:80]
    audit.record(actor, "approve", "disposal_list", found.id, detail=f"{found.month:%Y-%m}")
    db.session.flush()


def _item_by_number(found: DisposalList, number: str) -> DisposalItem:
    item = db.session.scalar(
        sa.select(DisposalItem)
        .join(Ticket, Ticket.id == DisposalItem.ticket_id)
        .where(DisposalItem.list_id == found.id, Ticket.number == (number or "").strip())
    )
    if item is None:
        raise NotFound(f"相談番号「{(number or '').strip()[:20]}」はこの一覧にありません。")
    return item


def hold_back(actor: Actor, found: DisposalList, number: str, back: bool = True) -> DisposalItem:
    """Keep one item from this list's disposal (保留), or put it back."""
    staff = actor.require(*APPROVER_ROLES)
    item = _item_by_number(found, number)
    if item.disposed_at is not None:
        raise ValidationFailed("この相談は既に廃棄されています。")
    item.held_back_at = utcnow() if back else None
    item.held_back_by_id = (staff.id if staff else None) if back else None
    audit.record(
        actor,
        "hold_back" if back else "hold_back_undo",
        "ticket",
        item.ticket.number,
        detail="廃棄予定一覧",
    )
    db.session.flush()
    return item


# --- legal holds --------------------------------------------------------------------------------


def _reason(text: str | None, what: str) -> str:
    from consult.services.normalize import single_line

    cleaned = single_line(text or "").strip()
    if not cleaned:
        raise ValidationFailed(
            f"{what}を入力してください（氏名などの個人情報は書かないでください）。"
        )
    if len(cleaned) > 200:
        raise ValidationFailed(f"{what}は200文字以内で入力してください。")
    return cleaned


def set_hold(
    actor: Actor, *, ticket: Ticket | None = None, citizen: Citizen | None = None, reason: str
) -> LegalHold:
    staff = actor.require(*APPROVER_ROLES)
    if (ticket is None) == (citizen is None):
        raise ValidationFailed("相談番号か相談者番号のどちらか一つを指定してください。")
    reason = _reason(reason, "理由")
    if ticket is not None and ticket.disposed_at is not None:
        raise ValidationFailed("この相談は既に廃棄されています。")
    hold = LegalHold(
        ticket_id=ticket.id if ticket else None,
        citizen_id=citizen.id if citizen else None,
        reason=reason,
        set_by_id=staff.id if staff else None,
    )
    db.session.add(hold)
    db.session.flush()
    if ticket is not None:
        audit.record(actor, "legal_hold", "ticket", ticket.number, detail="訴訟ホールドの設定")
    else:
        audit.record(actor, "legal_hold", "citizen", citizen.id, detail="訴訟ホールドの設定")
    return hold


def lift_hold(actor: Actor, hold: LegalHold, reason: str) -> None:
    staff = actor.require(*APPROVER_ROLES)
    if hold.lifted_at is not None:
        raise ValidationFailed("この訴訟ホールドは既に解除されています。")
    hold.lift_reason = _reason(reason, "解除の理由")
    hold.lifted_at = utcnow()
    hold.lifted_by_id = staff.id if staff else None
    if hold.ticket_id is not None:
        audit.record(
            actor, "legal_hold_lift", "ticket", hold.ticket.number, detail="訴訟ホールドの解除"
        )
    else:
        audit.record(
            actor, "legal_hold_lift", "citizen", hold.citizen_id, detail="訴訟ホールドの解除"
        )
    db.session.flush()


def holds(actor: Actor, active_only: bool = False) -> list[tuple[LegalHold, str | None]]:
    """(hold, ticket number) newest first."""
    actor.require(*READER_ROLES)
    query = (
        sa.select(LegalHold, Ticket.number)
        .outerjoin(Ticket, Ticket.id == LegalHold.ticket_id)
        .order_by(LegalHold.id.desc())
        .limit(500)
    )
    if active_only:
        query = query.where(LegalHold.lifted_at.is_(None))
    return [(hold, number) for hold, number in db.session.execute(query)]


def get_hold(hold_id: int) -> LegalHold:
    found = db.session.get(LegalHold, hold_id)
    if found is None:
        raise NotFound("その訴訟ホールドはありません。")
    return found


# --- disposal -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a disposal run removed, by kind, and what it left alone."""

    tickets: int = 0
    skipped_hold: int = 0
    skipped_not_due: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    seconds: float = 0.0
    # Records without a case, by the list's kind (consult.services.retention.dispose_unlinked).
    unlinked: dict[str, int] = field(default_factory=dict)

    def add(self, batch: plugins.DisposalBatch) -> None:
        for kind, number in batch.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + number
            self.labels.setdefault(kind, batch.labels.get(kind, kind))

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "tickets": self.tickets,
            "skipped_legal_hold": self.skipped_hold,
            "skipped_not_due": self.skipped_not_due,
            "removed": dict(sorted(self.counts.items())),
            "labels": {k: self.labels[k] for k in sorted(self.counts)},
            "unlinked": dict(sorted(self.unlinked.items())),
            "seconds": round(self.seconds, 3),
        }


def _permit(connection) -> str:
    token = uuid.uuid4().hex
    connection.execute(sa.insert(DisposalPermit).values(token=token))
    return token


def _end_permit(connection, token: str) -> None:
    connection.execute(sa.delete(DisposalPermit).where(DisposalPermit.token == token))


def next_items(after_id: int, limit: int) -> list[DisposalItem]:
    """Approved items not held back nor disposed of yet, in id order after `after_id`."""
    return list(
        db.session.scalars(
            sa.select(DisposalItem)
            .join(DisposalList, DisposalList.id == DisposalItem.list_id)
            .where(
                DisposalList.approved_at.is_not(None),
                DisposalItem.disposed_at.is_(None),
                DisposalItem.held_back_at.is_(None),
                DisposalItem.id > after_id,
            )
            .order_by(DisposalItem.id)
            .limit(limit)
        )
    )


def dispose_batch(
    actor: Actor, items: list[DisposalItem], today: date | None = None
) -> tuple[plugins.DisposalBatch, int, int]:
    """Dispose of the tickets of these approved items, in the caller's transaction.

    Checks each again (still closed, still expired under today's class, no legal hold). Returns
    the batch (counts, files to delete after commit), and how many were skipped for a hold and
    for no longer being due. The caller commits, then deletes `batch.files`."""
    actor.require(*APPROVER_ROLES)
    today = today or tokyo_today()
    now = utcnow()
    connection = db.session.connection()
    t = Ticket.__table__
    ids = [item.ticket_id for item in items]
    due_ids = set(
        db.session.scalars(sa.select(Ticket.id).where(Ticket.id.in_(ids), _due_condition(today)))
    )
    held_ids = set(
        db.session.scalars(sa.select(Ticket.id).where(Ticket.id.in_(ids), _held_condition()))
    )
    chosen = [
        item for item in items if item.ticket_id in due_ids and item.ticket_id not in held_ids
    ]
    skipped_hold = sum(1 for item in items if item.ticket_id in held_ids)
    skipped_due = len(items) - len(chosen) - skipped_hold
    batch = plugins.DisposalBatch(connection=connection, ticket_ids=[], citizen_ids=[], now=now)
    if not chosen:
        return batch, skipped_hold, skipped_due
    # Claim the items in one conditional UPDATE: a second run at the same time skips them.
    taken = set(
        connection.scalars(
            sa.update(DisposalItem)
            .where(
                DisposalItem.id.in_([item.id for item in chosen]),
                DisposalItem.disposed_at.is_(None),
            )
            .values(disposed_at=now)
            .returning(DisposalItem.id)
        )
    )
    claimed = [item for item in chosen if item.id in taken]
    main_ids = [item.ticket_id for item in claimed]
    # Tickets merged into these go with them (相談の統合: shown on the survivor's page), unless
    # a legal hold stands on one of them or on its citizen.
    merged = (
        list(
            db.session.scalars(
                sa.select(Ticket.id).where(
                    Ticket.merged_into_id.in_(main_ids),
                    Ticket.disposed_at.is_(None),
                    sa.not_(_held_condition()),
                )
            )
        )
        if main_ids
        else []
    )
    ticket_ids = sorted(set(main_ids) | set(merged))
    batch.ticket_ids = ticket_ids
    if not ticket_ids:
        return batch, skipped_hold, skipped_due
    token = _permit(connection)
    snapshot = {
        row.id: row
        for row in connection.execute(
            sa.select(
                t.c.id, t.c.number, t.c.channel, t.c.category_id, t.c.closed_at, t.c.citizen_id
            ).where(t.c.id.in_(ticket_ids))
        )
    }
    batch.citizen_ids = _citizens_to_clear(connection, ticket_ids, snapshot)
    for disposer in plugins.registry().disposers:
        disposer.dispose(batch)
    _dispose_kernel(batch, snapshot)
    # The 廃棄簿: one row per ticket, with the counts the disposers attributed to it.
    per_ticket = _per_ticket_counts(connection, batch)
    lists_by_item = {item.ticket_id: item for item in claimed}
    approvals = {
        row.id: row
        for row in connection.execute(
            sa.select(
                DisposalList.id, DisposalList.approved_at, DisposalList.approved_by_name
            ).where(DisposalList.id.in_({item.list_id for item in claimed}))
        )
    }
    names = _category_names()
    years_by_category = _years_by_category()
    by = (actor.staff.login if actor.staff else actor.address or "system")[:64]
    records = []
    for tid in ticket_ids:
        row = snapshot[tid]
        item = lists_by_item.get(tid)
        approval = approvals.get(item.list_id) if item else None
        years = (
            item.retention_years if item else years_by_category.get(row.category_id, FALLBACK_YEARS)
        )
        records.append(
            {
                "kind": "ticket",
                "ticket_number": row.number,
                "retention_years": years,
                "category_name": names.get(row.category_id, "?")[:80],
                "channel": str(row.channel),
                "closed_on": closed_on(row.closed_at) if row.closed_at else None,
                "expired_on": expires_on(row.closed_at, years) if row.closed_at else None,
                "list_id": item.list_id if item else None,
                "approved_at": approval.approved_at if approval else None,
                "approved_by_name": approval.approved_by_name if approval else None,
                "disposed_at": now,
                "disposed_by": by,
                "counts": per_ticket.get(tid, {}),
            }
        )
    connection.execute(sa.insert(DisposalRecord), records)
    _end_permit(connection, token)
    return batch, skipped_hold, skipped_due


def _citizens_to_clear(connection, ticket_ids: list[int], snapshot: dict) -> list[int]:
    """The batch's citizens that no live ticket needs and no legal hold keeps, with the records
    merged into them."""
    t = Ticket.__table__
    candidates = {row.citizen_id for row in snapshot.values() if row.citizen_id is not None}
    if not candidates:
        return []
    still_needed = set(
        connection.scalars(
            sa.select(t.c.citizen_id).where(
                t.c.citizen_id.in_(candidates),
                t.c.disposed_at.is_(None),
                t.c.id.not_in(ticket_ids),
            )
        )
    )
    held = set(
        connection.scalars(
            sa.select(LegalHold.citizen_id).where(
                LegalHold.citizen_id.in_(candidates), LegalHold.lifted_at.is_(None)
            )
        )
    )
    clear = candidates - still_needed - held
    if not clear:
        return []
    c = Citizen.__table__
    merged = set(connection.scalars(sa.select(c.c.id).where(c.c.merged_into_id.in_(clear))))
    # A merged-away record is cleared only when nothing live points at it either.
    if merged:
        merged -= set(
            connection.scalars(
                sa.select(t.c.citizen_id).where(
                    t.c.citizen_id.in_(merged),
                    t.c.disposed_at.is_(None),
                    t.c.id.not_in(ticket_ids),
                )
            )
        )
    return sorted(clear | merged)


SAFE_KEYS = {"from", "to", "channel", "automatic", "status", "alert", "line_type", "state"}


def _strip_data(data) -> dict:
    """Numbers, flags and known codes only: what counts and durations need."""
    kept = {}
    for key, value in (data or {}).items():
        if (
            isinstance(value, bool | int | float)
            or value is None
            or (
                isinstance(value, str)
                and key in SAFE_KEYS
                and len(value) <= 30
                and value.replace("_", "").isascii()
                and value.replace("_", "").isalpha()
                and value.islower()
            )
        ):
            kept[key] = value
    return kept


def _dispose_kernel(batch: plugins.DisposalBatch, snapshot: dict) -> None:
    from consult.services import attachments

    connection = batch.connection
    ids = batch.ticket_ids
    labels = KERNEL_LABELS

    def count(kind: str, number: int, by_ticket: dict[int, int] | None = None) -> None:
        batch.count(kind, labels[kind], number, by_ticket)

    def delete_by_ticket(table, kind: str, condition=None) -> None:
        condition = batch.among(table.c.ticket_id) if condition is None else condition
        grouped = batch.grouped(table, condition)
        count(kind, connection.execute(table.delete().where(condition)).rowcount, grouped)

    # Attachments: rows now, files after commit.
    a = Attachment.__table__
    for storage_name in connection.scalars(
        sa.select(a.c.storage_name).where(batch.among(a.c.ticket_id))
    ):
        batch.files.append(attachments._folder() / storage_name[:2] / storage_name)
    delete_by_ticket(a, "attachment")
    # 無害化: the converted pages and extracted text (consult.services.safe_files). The originals
    # are the channels' own files, which their disposers remove.
    from consult.services import safe_files

    sf = SafeFile.__table__
    for stored_name in connection.scalars(
        sa.select(sf.c.stored_name).where(
            batch.among(sf.c.ticket_id), sf.c.stored_name.is_not(None)
        )
    ):
        batch.files.extend(safe_files.page_files(stored_name))
    delete_by_ticket(sf, "safe_file")
    # Timeline: text gone, numbers and codes kept.
    e = TimelineEntry.__table__
    # One UPDATE per distinct stripped shape (a handful: {} and a few state changes), not one
    # per entry.
    shapes: dict[str, tuple[dict, list[int]]] = {}
    by_ticket: dict[int, int] = defaultdict(int)
    changed = 0
    for row in connection.execute(
        sa.select(e.c.id, e.c.ticket_id, e.c.body, e.c.data).where(batch.among(e.c.ticket_id))
    ):
        stripped = _strip_data(row.data)
        if row.body or (row.data or {}) != stripped:
            key = json.dumps(stripped, sort_keys=True)
            shapes.setdefault(key, (stripped, []))[1].append(row.id)
            by_ticket[row.ticket_id] += 1
            changed += 1
    for stripped, entry_ids in shapes.values():
        connection.execute(
            e.update().where(batch.among(e.c.id, entry_ids)).values(body="", data=stripped)
        )
    count("timeline_text", changed, by_ticket)
    # Outbox copies: the row and its times stay.
    o = OutboxMessage.__table__
    condition = sa.and_(batch.among(o.c.ticket_id), sa.or_(o.c.body != "", o.c.recipient != ""))
    grouped = batch.grouped(o, condition)
    result = connection.execute(
        o.update()
        .where(condition)
        .values(recipient="", subject=None, body="", headers={}, last_error=None)
    )
    count("outbox", result.rowcount, grouped)
    delete_by_ticket(TicketSearch.__table__, "search_document")
    delete_by_ticket(Callback.__table__, "callback")
    link = TicketLink.__table__
    count(
        "ticket_link",
        connection.execute(
            link.delete().where(
                sa.or_(batch.among(link.c.ticket_id), batch.among(link.c.related_id))
            )
        ).rowcount,
    )
    m = MergeRecord.__table__
    merge_condition = sa.and_(
        m.c.kind == "ticket", sa.or_(batch.among(m.c.source_id), batch.among(m.c.target_id))
    )
    if batch.citizen_ids:
        cids = batch.citizen_ids
        merge_condition = sa.or_(
            merge_condition,
            sa.and_(
                m.c.kind == "citizen",
                sa.or_(batch.among(m.c.source_id, cids), batch.among(m.c.target_id, cids)),
            ),
        )
    count(
        "merge_reason",
        connection.execute(
            m.update().where(merge_condition, m.c.reason != "").values(reason="")
        ).rowcount,
    )
    i = Incident.__table__
    condition = batch.among(i.c.ticket_id)
    if batch.citizen_ids:
        condition = sa.or_(condition, batch.among(i.c.citizen_id, batch.citizen_ids))
    grouped = batch.grouped(i, condition)
    count(
        "incident_text",
        connection.execute(
            i.update().where(condition).values(description="", citizen_id=None)
        ).rowcount,
        grouped,
    )
    h = LegalHold.__table__
    condition = batch.among(h.c.ticket_id)
    if batch.citizen_ids:
        condition = sa.or_(condition, batch.among(h.c.citizen_id, batch.citizen_ids))
    count(
        "legal_hold_reason",
        connection.execute(
            h.update()
            .where(condition, h.c.lifted_at.is_not(None))
            .values(reason="", lift_reason="")
        ).rowcount,
    )
    # The ticket row stays for the statistics, without its words or its person.
    t = Ticket.__table__
    result = connection.execute(
        t.update()
        .where(batch.among(t.c.id))
        .values(subject="", resolution_summary=None, citizen_id=None, disposed_at=batch.now)
    )
    count("ticket_text", result.rowcount, dict.fromkeys(ids, 1))
    if not batch.citizen_ids:
        return
    cids = batch.citizen_ids
    # A citizen's counts go to the first of their tickets in the batch.
    first_ticket: dict[int, int] = {}
    for tid in ids:
        cid = snapshot[tid].citizen_id
        if cid is not None:
            first_ticket.setdefault(cid, tid)

    def by_citizen(grouped_by_citizen: dict[int, int]) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for cid, n in grouped_by_citizen.items():
            if cid in first_ticket:
                out[first_ticket[cid]] += n
        return dict(out)

    # Corrections (訂正) keep earlier values: they go with the citizen. A support measure's
    # events stay (that it was set and lifted, by whom, when), without their reasons.
    for model, kind in (
        (CitizenPhone, "citizen_phone"),
        (CitizenEmail, "citizen_email"),
        (CitizenRevision, "citizen_revision"),
    ):
        table = model.__table__
        grouped = dict(
            connection.execute(
                sa.select(table.c.citizen_id, sa.func.count())
                .where(batch.among(table.c.citizen_id, cids))
                .group_by(table.c.citizen_id)
            ).all()
        )
        count(
            kind,
            connection.execute(
                table.delete().where(batch.among(table.c.citizen_id, cids))
            ).rowcount,
            by_citizen(grouped),
        )
    # Disclosure bundles made for them (consult.services.disclosure_jobs): files and rows.
    from consult.models import DisclosureJob
    from consult.services import disclosure_jobs

    batch.files.extend(disclosure_jobs.files_of_citizens(connection, cids))
    dj = DisclosureJob.__table__
    count(
        "disclosure_file",
        connection.execute(dj.delete().where(batch.among(dj.c.citizen_id, cids))).rowcount,
    )
    fe = CitizenFlagEvent.__table__
    count(
        "citizen_flag_reason",
        connection.execute(
            fe.update()
            .where(batch.among(fe.c.citizen_id, cids), fe.c.reason != "")
            .values(reason="")
        ).rowcount,
    )
    c = Citizen.__table__
    result = connection.execute(
        c.update()
        .where(batch.among(c.c.id, cids))
        .values(
            name=None,
            kana=None,
            name_key=None,
            kana_key=None,
            address=None,
            birth_date=None,
            name_fold=None,
            kana_fold=None,
        )
    )
    count("citizen", result.rowcount, by_citizen(dict.fromkeys(cids, 1)))


def _per_ticket_counts(connection, batch: plugins.DisposalBatch) -> dict[int, dict[str, int]]:
    """Each ticket's counts for the 廃棄簿, as the disposers attributed them."""
    return {tid: dict(sorted(batch.by_ticket.get(tid, {}).items())) for tid in batch.ticket_ids}


def remove_files(paths) -> int:
    """Delete files after the commit that removed their rows; missing ones are fine."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


# --- the audit log's own retention ----------------------------------------------------------------


def audit_cutoff(today: date | None = None) -> datetime:
    today = today or tokyo_today()
    day = date(fiscal_year(today) - audit_years(), 4, 1)
    return datetime.combine(day, time(0), tzinfo=TOKYO).astimezone(UTC)


def dispose_audit_batch(actor: Actor, today: date | None = None, limit: int = 5000) -> int:
    """Delete up to `limit` audit rows older than the audit retention (counted by fiscal year
    as the tickets are), in the caller's transaction; the caller commits and repeats."""
    actor.require(*APPROVER_ROLES)
    connection = db.session.connection()
    a = AuditEvent.__table__
    ids = list(
        connection.scalars(
            sa.select(a.c.id).where(a.c.at < audit_cutoff(today)).order_by(a.c.id).limit(limit)
        )
    )
    if not ids:
        return 0
    token = _permit(connection)
    deleted = connection.execute(a.delete().where(a.c.id.in_(ids))).rowcount
    _end_permit(connection, token)
    return deleted


def record_audit_disposal(actor: Actor, deleted: int, today: date | None = None) -> None:
    if not deleted:
        return
    by = (actor.staff.login if actor.staff else actor.address or "system")[:64]
    db.session.add(
        DisposalRecord(
            kind="audit",
            retention_years=audit_years(),
            expired_on=(audit_cutoff(today).astimezone(TOKYO).date() - timedelta(days=1)),
            disposed_by=by,
            counts={"audit_event": deleted},
        )
    )
    db.session.flush()


def register_rows(actor: Actor, limit: int = 500) -> list[DisposalRecord]:
    actor.require(*READER_ROLES)
    return list(
        db.session.scalars(
            sa.select(DisposalRecord).order_by(DisposalRecord.id.desc()).limit(limit)
        )
    )


def count_old_audit(today: date | None = None) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.at < audit_cutoff(today))
    )


# --- 個人情報ファイル簿 ---------------------------------------------------------------------------

KERNEL_HOLDS = (
    plugins.PersonalData(
        "citizen",
        ("name", "kana", "address", "birth_date", "name_key", "kana_key", "name_fold", "kana_fold"),
        "相談者の氏名・かな・住所・生年月日",
        "相談者本人（窓口・電話・メール・LINE・予約）",
    ),
    plugins.PersonalData("citizen_phone", ("number",), "相談者の電話番号", "相談者本人"),
    plugins.PersonalData("citizen_email", ("address",), "相談者のメールアドレス", "相談者本人"),
    plugins.PersonalData(
        "ticket", ("subject", "resolution_summary"), "相談の件名・解決内容", "相談員の記録"
    ),
    plugins.PersonalData(
        "timeline_entry", ("body", "data"), "相談の経過（受信・送信・メモ）", "相談者本人・相談員"
    ),
    plugins.PersonalData(
        "outbox_message", ("recipient", "subject", "body"), "相談者への送信文", "相談員"
    ),
    plugins.PersonalData(
        "attachment", ("filename", "storage_name"), "添付ファイル（書類の写真等）", "相談者本人"
    ),
    plugins.PersonalData(
        "safe_file",
        ("filename", "text"),
        "受け取ったファイルの変換後の画像と文字（無害化）",
        "相談者本人（LINE・メール・添付）",
    ),
    plugins.PersonalData(
        "ticket_search", ("who", "what", "body", "reading"), "検索索引", "上記から自動作成"
    ),
    plugins.PersonalData("incident", ("description",), "カスハラ事案の記述", "職員の記録"),
    plugins.PersonalData("merge_record", ("reason",), "統合の理由", "相談員"),
    plugins.PersonalData(
        "citizen_revision", ("old_value", "new_value", "reason"), "訂正の履歴", "相談員・本人の請求"
    ),
    plugins.PersonalData(
        "citizen_flag_event", ("reason",), "支援措置・利用停止の設定理由", "責任者の記録"
    ),
)

PERSONS = (
    "市の総合相談窓口に相談した者（相談者）",
    "相談の予約をした者",
    "LINE公式アカウント・メールで市に連絡した者",
    "相談の中で言及された家族等の関係者",
    "引継ぎに応じた関係機関の担当者",
)

# What each role may see of the personal data: the register's 利用者の範囲, one line per Role in
# the enum's order, labelled with the role's own label. Keyed by Role: a role added to the enum
# without its line here fails test_register_names_every_role_and_every_api_scope.
PROTECTED_NOTE = "支援措置の対象者の住所・連絡先は見られない"
ROLE_MAY_SEE = {
    Role.CONSULTANT: "相談者の氏名・連絡先・相談内容・経過・添付ファイル・予約"
    f"（閲覧は監査ログに記録。{PROTECTED_NOTE}。ただし自分が担当の相談の相談者を除く）",
    Role.SUPERVISOR: "相談員と同じ範囲（支援措置の対象者を含む）、統計、開示請求への対応、"
    "支援措置・利用停止の設定とその理由、廃棄予定一覧の承認、訴訟ホールド",
    Role.OFFICER: "自課に引き継がれた相談の概要・対応記録"
    f"（連絡先は共有が指定された場合のみ。{PROTECTED_NOTE}）",
    Role.SUPPORT: "応援要請とカスハラ事案の記録",
    Role.ADMIN: "職員・設定・監査ログ・保存期間の設定、相談者の統合"
    f"（相談内容の個人データの出力は監査記録付き。{PROTECTED_NOTE}）",
    Role.BRANCH: "自支所で予約された「支所からのオンライン相談」の日時・種類・予約番号・"
    "相談者の氏名（相談内容・連絡先・他の支所の予約は見られない。一覧の表示は監査ログに記録）",
}


def access_lines() -> list[tuple[str, str]]:
    """(who, what they may see): every role, then whoever a package lets read personal data
    (an API token, by scope)."""
    lines = [(role.label, ROLE_MAY_SEE[role]) for role in Role]
    lines += [(a.name, a.may_see) for a in plugins.registry().accessors]
    return lines


def register_document(actor: Actor, today: date | None = None) -> dict:
    """The 個人情報ファイル簿 entry for the system, drafted from the schema and the settings."""
    actor.require(*READER_ROLES)
    today = today or tokyo_today()
    metadata = db.metadata
    items = []
    for hold in (*KERNEL_HOLDS, *(h for d in plugins.registry().disposers for h in d.holds)):
        table = metadata.tables.get(hold.table)
        columns = [c for c in hold.columns if table is not None and c in table.c]
        items.append(
            {"table": hold.table, "columns": columns, "label": hold.label, "source": hold.source}
        )
    live_citizens = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Citizen)
        .where(Citizen.merged_into_id.is_(None), Citizen.name.is_not(None))
    )
    live_tickets = db.session.scalar(
        sa.select(sa.func.count()).select_from(Ticket).where(Ticket.disposed_at.is_(None))
    )
    classes = [
        {"category": c.name, "code": c.code, "retention_years": years_of(c)}
        for c in db.session.scalars(sa.select(Category).order_by(Category.sort_order, Category.id))
    ]
    return {
        "name": "市民総合相談記録ファイル（madoguchi）",
        "purpose": "市民からの相談の受付・対応・担当課等への引継ぎ・回答、及び統計の作成",
        "drafted_on": today.isoformat(),
        "persons": list(PERSONS),
        "items": items,
        "sensitive": "含む（相談内容に病歴・犯罪被害・障害等の要配慮個人情報が含まれることがある）",
        "sources": sorted({item["source"] for item in items}),
        "retention": {
            "rule": "完結した日の属する年度の翌年度4月1日から起算",
            "default_years": FALLBACK_YEARS,
            "classes": classes,
            "audit_log_years": audit_years(),
        },
        "access": [{"role": who, "may_see": what} for who, what in access_lines()],
        "records": {"citizens": live_citizens, "tickets": live_tickets},
        "over_1000_persons": live_citizens > 1000,
    }


def register_markdown(document: dict) -> str:
    lines = [f"# 個人情報ファイル簿（案）: {document['name']}", ""]
    lines += [f"- 作成日: {document['drafted_on']}", f"- 利用目的: {document['purpose']}", ""]
    lines += ["## 記録範囲（本人の範囲）", ""] + [f"- {p}" for p in document["persons"]] + [""]
    lines += ["## 記録項目", "", "| 項目 | テーブル | 列 | 収集方法 |", "|---|---|---|---|"]
    for item in document["items"]:
        columns = "、".join(item["columns"])
        lines.append(f"| {item['label']} | {item['table']} | {columns} | {item['source']} |")
    lines += ["", f"- 要配慮個人情報: {document['sensitive']}", ""]
    retention = document["retention"]
    lines += ["## 保存期間", "", f"- 起算: {retention['rule']}"]
    lines += [
        f"- {c['category']}（{c['code']}）: {c['retention_years']}年" for c in retention["classes"]
    ]
    lines += [
        f"- 分類なし: {retention['default_years']}年",
        f"- 監査ログ: {retention['audit_log_years']}年",
        "",
    ]
    lines += [
        "## 利用者の範囲（役割・連携システムごと）",
        "",
        "| 利用者 | 閲覧できるもの |",
        "|---|---|",
    ]
    lines += [f"| {a['role']} | {a['may_see']} |" for a in document["access"]]
    records = document["records"]
    lines += [
        "",
        "## 記録件数",
        "",
        f"- 相談者: {records['citizens']}人",
        f"- 相談（廃棄前）: {records['tickets']}件",
        f"- 本人の数が1,000人以上: {'該当' if document['over_1000_persons'] else '非該当'}",
        "",
    ]
    return "\n".join(lines)


# --- files no row names -----------------------------------------------------------------------


def _old_files(folder, cutoff: datetime):
    if not folder.is_dir():
        return
    limit = cutoff.timestamp()
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < limit:
            yield path


def orphan_attachments(cutoff: datetime) -> list:
    """Files under DATA_DIR/attachments that no attachment row names: a rollback after
    attachments.add wrote the file (its docstring), or a crash between a disposal's commit and
    its deletion of the files."""
    from consult.services import attachments

    folder = attachments._folder()
    files = list(_old_files(folder, cutoff))
    if not files:
        return []
    known = set(db.session.scalars(sa.select(Attachment.storage_name)))
    return [path for path in files if path.name not in known]


def orphan_files(cutoff: datetime | None = None) -> list:
    """Every package's orphans, files at least a day old (an upload in flight is younger)."""
    cutoff = cutoff or (utcnow() - timedelta(days=1))
    found = orphan_attachments(cutoff)
    for disposer in plugins.registry().disposers:
        if disposer.orphans is not None:
            found.extend(disposer.orphans(cutoff))
    return found


# --- records that belong to no case -------------------------------------------------------------
# A booking never turned into a case, mail that was ignored or quarantined, LINE events and
# users without a case, messages sent to no case (a booking's confirmation, a notice), copies
# waiting to cross between the zones: no ticket's retention reaches them. Each goes by its own
# date (the session's day, the day it was received or written), counted like a case from the
# fiscal year after that date, for `unlinked_years` (default 1 year: 軽易なもの in the
# 保存期間基準表, as a record of contact that led to nothing), an administrator's setting. They
# are listed on the month's 廃棄予定一覧 by kind, with counts (DisposalUnlinked), approved with
# it, held back by kind, disposed of by `dispose_unlinked` and recorded in the 廃棄簿 by kind.

UNLINKED_SETTING = "retention.unlinked_years"
DEFAULT_UNLINKED_YEARS = 1
UNLINKED_BATCH = 500


def unlinked_years() -> int:
    row = db.session.get(CentreSetting, UNLINKED_SETTING)
    try:
        value = int(row.value) if row else DEFAULT_UNLINKED_YEARS
    except ValueError:
        return DEFAULT_UNLINKED_YEARS
    return value if value in RETENTION_YEARS else DEFAULT_UNLINKED_YEARS


def set_unlinked_years(actor: Actor, years: int | str) -> None:
    actor.require(*ADMIN_ROLES)
    try:
        value = int(years)
    except (TypeError, ValueError):
        value = 0
    if value not in RETENTION_YEARS:
        raise ValidationFailed(
            "保存期間は " + "・".join(f"{y}年" for y in RETENTION_YEARS) + " から選んでください。"
        )
    row = db.session.get(CentreSetting, UNLINKED_SETTING)
    if row is None:
        row = CentreSetting(key=UNLINKED_SETTING, value=str(value))
        db.session.add(row)
    row.value = str(value)
    row.updated_by_id = actor.staff_id
    row.updated_at = utcnow()
    audit.record(actor, "update", "retention", None, detail=f"相談に結び付かない記録 {value}年")
    db.session.flush()


def _outbox_condition(before):
    from consult.models import OutboxStatus

    o = OutboxMessage.__table__
    return sa.and_(
        o.c.ticket_id.is_(None),
        o.c.status.in_([OutboxStatus.DELIVERED, OutboxStatus.FAILED]),
        o.c.created_at < before,
        sa.or_(o.c.recipient != "", o.c.body != "", o.c.subject.is_not(None)),
    )


def _count_outbox(before) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage.__table__)
        .where(_outbox_condition(before))
    )


def _dispose_outbox(batch: plugins.DisposalBatch, before, after: int, limit: int) -> int | None:
    o = OutboxMessage.__table__
    ids = list(
        batch.connection.scalars(
            sa.select(o.c.id)
            .where(_outbox_condition(before), o.c.id > after)
            .order_by(o.c.id)
            .limit(limit)
        )
    )
    if not ids:
        return None
    result = batch.connection.execute(
        o.update()
        .where(o.c.id.in_(ids))
        .values(recipient="", subject=None, body="", headers={}, last_error=None)
    )
    batch.count("outbox", KERNEL_LABELS["outbox"], result.rowcount)
    return ids[-1]


def _count_transfer(before) -> int:
    from consult.transfer.models import TransferItem

    return db.session.scalar(
        sa.select(sa.func.count()).select_from(TransferItem).where(TransferItem.created_at < before)
    )


def _dispose_transfer(batch: plugins.DisposalBatch, before, after: int, limit: int) -> int | None:
    """Items that waited to cross between the relay and the core for longer than the period
    (the other side never took them): the relay's copy of what a citizen sent, or a message
    for the relay. Their ids are strings: `after` is unused, each round deletes what it found."""
    from consult.transfer.models import TransferItem

    t = TransferItem.__table__
    ids = list(
        batch.connection.scalars(
            sa.select(t.c.id).where(t.c.created_at < before).order_by(t.c.id).limit(limit)
        )
    )
    if not ids:
        return None
    batch.count(
        "transfer_item",
        KERNEL_LABELS["transfer_item"],
        batch.connection.execute(t.delete().where(t.c.id.in_(ids))).rowcount,
    )
    return 0


KERNEL_LABELS["transfer_item"] = "ゾーン間で受け渡されなかった写し（中継サーバー等）"
KERNEL_UNLINKED = (
    plugins.UnlinkedKind(
        "outbox",
        "相談に結び付かない送信メッセージ（予約の確認・お知らせ等）の宛先・本文",
        _count_outbox,
        _dispose_outbox,
    ),
    plugins.UnlinkedKind(
        "transfer",
        "ゾーン間で受け渡されなかった写し（中継サーバー等）",
        _count_transfer,
        _dispose_transfer,
    ),
)


def unlinked_kinds() -> list[plugins.UnlinkedKind]:
    kinds = list(KERNEL_UNLINKED)
    for disposer in plugins.registry().disposers:
        kinds.extend(disposer.unlinked)
    return kinds


def unlinked_labels() -> dict[str, str]:
    return {kind.name: kind.label for kind in unlinked_kinds()}


def unlinked_before(today: date | None = None) -> tuple[int, date]:
    """(years, first day not covered): records dated before that day are due on `today`."""
    today = today or tokyo_today()
    years = unlinked_years()
    return years, date(fiscal_year(today) - years, 4, 1)


def _before_instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=TOKYO).astimezone(UTC)


@dataclass
class UnlinkedRow:
    kind: str
    label: str
    years: int
    before: date
    count: int
    held_back: bool = False
    disposed: int | None = None

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "label": self.label,
            "retention_years": self.years,
            "dated_before": self.before.isoformat(),
            "count": self.count,
            "held_back": self.held_back,
            "disposed": self.disposed,
        }


def unlinked_due(actor: Actor, today: date | None = None) -> list[UnlinkedRow]:
    """The records without a case due on `today`, by kind: counts only."""
    actor.require(*READER_ROLES)
    years, day = unlinked_before(today)
    before = _before_instant(day)
    rows = []
    for kind in unlinked_kinds():
        number = kind.count(before)
        if number:
            rows.append(UnlinkedRow(kind.name, kind.label, years, day, number))
    return rows


def _prepare_unlinked(found: DisposalList, today: date) -> int:
    """Add or refresh the list's rows of records without a case; returns how many records
    were added to what the list held (a change asks for a new approval)."""
    from consult.models import DisposalUnlinked

    years, day = unlinked_before(today)
    before = _before_instant(day)
    existing = {
        row.kind: row
        for row in db.session.scalars(
            sa.select(DisposalUnlinked).where(DisposalUnlinked.list_id == found.id)
        )
    }
    added = 0
    for kind in unlinked_kinds():
        number = kind.count(before)
        row = existing.get(kind.name)
        if row is None:
            if number:
                db.session.add(
                    DisposalUnlinked(
                        list_id=found.id,
                        kind=kind.name,
                        retention_years=years,
                        before=day,
                        count=number,
                        disposed_count=0,
                    )
                )
                added += number
        elif row.disposed_at is None and (number > row.count or row.before != day):
            added += max(number - row.count, 1)
            row.count, row.before, row.retention_years = number, day, years
        elif row.disposed_at is None:
            row.count = number  # fewer: some became part of a case since; no new approval
    db.session.flush()
    return added


def list_unlinked(actor: Actor, found: DisposalList) -> list[UnlinkedRow]:
    from consult.models import DisposalUnlinked

    actor.require(*READER_ROLES)
    labels = unlinked_labels()
    return [
        UnlinkedRow(
            row.kind,
            labels.get(row.kind, row.kind),
            row.retention_years,
            row.before,
            row.count,
            row.held_back_at is not None,
            row.disposed_count if row.disposed_at is not None else None,
        )
        for row in db.session.scalars(
            sa.select(DisposalUnlinked)
            .where(DisposalUnlinked.list_id == found.id)
            .order_by(DisposalUnlinked.id)
        )
    ]


def hold_back_unlinked(actor: Actor, found: DisposalList, kind: str, back: bool = True) -> None:
    """Keep one kind of records without a case from this list's disposal (保留), or put it back."""
    from consult.models import DisposalUnlinked

    staff = actor.require(*APPROVER_ROLES)
    row = db.session.scalar(
        sa.select(DisposalUnlinked).where(
            DisposalUnlinked.list_id == found.id, DisposalUnlinked.kind == (kind or "").strip()
        )
    )
    if row is None:
        raise NotFound("その種類の記録はこの一覧にありません。")
    if row.disposed_at is not None:
        raise ValidationFailed("この種類の記録は既に廃棄されています。")
    row.held_back_at = utcnow() if back else None
    row.held_back_by_id = (staff.id if staff else None) if back else None
    audit.record(
        actor,
        "hold_back" if back else "hold_back_undo",
        "disposal_list",
        found.id,
        detail=f"相談に結び付かない記録: {row.kind}",
    )
    db.session.flush()


def dispose_unlinked(
    actor: Actor, *, dry_run: bool = False, batch_size: int = UNLINKED_BATCH, outcome=None
) -> dict[str, int]:
    """Dispose of the records without a case of every approved list's rows not held back, kind
    by kind, in batches (each its own transaction), and record each kind in the 廃棄簿. With
    `dry_run` every batch is rolled back. Returns the records handled, by list kind."""
    from consult.models import DisposalUnlinked

    actor.require(*APPROVER_ROLES)
    kinds = {kind.name: kind for kind in unlinked_kinds()}
    rows = db.session.execute(
        sa.select(DisposalUnlinked.id, DisposalUnlinked.kind, DisposalList.id)
        .join(DisposalList, DisposalList.id == DisposalUnlinked.list_id)
        .where(
            DisposalList.approved_at.is_not(None),
            DisposalUnlinked.disposed_at.is_(None),
            DisposalUnlinked.held_back_at.is_(None),
        )
        .order_by(DisposalUnlinked.id)
    ).all()
    by = (actor.staff.login if actor.staff else actor.address or "system")[:64]
    handled: dict[str, int] = {}
    for row_id, name, _list_id in rows:
        kind = kinds.get(name)
        if kind is None:
            continue
        row = db.session.get(DisposalUnlinked, row_id)
        before = _before_instant(row.before)
        counts: dict[str, int] = {}
        after: int | None = 0
        while after is not None:
            connection = db.session.connection()
            batch = plugins.DisposalBatch(
                connection=connection, ticket_ids=[], citizen_ids=[], now=utcnow()
            )
            after = kind.dispose(batch, before, after, batch_size)
            if dry_run:
                db.session.rollback()
                files = sum(1 for path in batch.files if path.exists())
            else:
                db.session.commit()
                files = remove_files(batch.files)
            if files:
                batch.count("file", KERNEL_LABELS["file"], files)
            for key, number in batch.counts.items():
                counts[key] = counts.get(key, 0) + number
            if outcome is not None:
                outcome.add(batch)
            if dry_run and after == 0:
                break  # a kind keyed by strings deletes as it goes: one round tells enough
        total = sum(v for k, v in counts.items() if k != "file")
        handled[name] = total
        if dry_run:
            continue
        row = db.session.get(DisposalUnlinked, row_id)
        listing = db.session.get(DisposalList, row.list_id)
        row.disposed_at = utcnow()
        row.disposed_count = total
        db.session.add(
            DisposalRecord(
                kind="unlinked",
                retention_years=row.retention_years,
                category_name=kind.label[:80],
                channel=name[:20],
                expired_on=row.before - timedelta(days=1),
                list_id=row.list_id,
                approved_at=listing.approved_at,
                approved_by_name=listing.approved_by_name,
                disposed_by=by,
                counts=dict(sorted(counts.items())),
            )
        )
        audit.record(actor, "dispose", "disposal_list", row.list_id, detail=f"{name} {total}件")
        db.session.commit()
    return handled
