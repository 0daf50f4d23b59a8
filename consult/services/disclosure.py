"""The disclosure bundle (開示請求への対応): everything the centre holds about one citizen.

A supervisor (センター責任者) produces it for a citizen's request under the 個人情報保護法. It holds
every ticket of the person (their merged records' too), each timeline entry, attachment,
booking, message, 対応記録, callback, harassment record, correction and flag, as:

- a JSON file (machine-readable: `Bundle.to_json()`), and
- one A4-printable PDF (`render_pdf`), with reportlab and the standard Japanese CID font
  (HeiseiKakuGo-W5, which every PDF reader provides: no font file is needed or embedded).

Other persons are removed with the FAQ's redactor (offered to the kernel as the plugins'
`redactor`), fed with the known names of the other parties (the citizens of related and merged
cases, email senders, other bookings' names) and of staff; staff appear by their display name
only. The person's own name, reading, address, phones, emails and ticket numbers are kept.

Parts that may fall under the law's exemptions (不開示情報, 個人情報保護法 第78条) are not removed:
they are marked for the reviewer (`review`), who decides before anything is handed over.

Every production is audited (`disclose`, citizen id, the format), never with its content.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from consult import plugins
from consult.extensions import db
from consult.models import (
    Attachment,
    Callback,
    Citizen,
    CitizenFlagEvent,
    CitizenRevision,
    EntryKind,
    Incident,
    Role,
    Staff,
    Ticket,
    TicketLink,
    TimelineEntry,
)
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import NotFound
from consult.services.normalize import format_phone
from consult.timeutil import format_tokyo, utcnow

DISCLOSE_ROLES = (Role.SUPERVISOR,)

# What the reviewer is asked to decide (不開示情報の候補). The law's words, briefly.
THIRD_PARTY = "第三者の情報を含む可能性（第78条第1項第2号）：マスキング箇所を確認"
INTERNAL = "内部の検討・メモ（第78条第1項第7号 事務・事業情報）：開示の可否を判断"
OTHER_BODY = "他の機関・担当課の記録（第78条第1項第7号）：当該機関への照会を検討"
SAFETY = "安全確保に関わる記録（第78条第1項第1号・第7号）：開示の可否を判断"
PROTECTION = "支援措置に関わる記録（生命・身体の保護）：請求者本人の確認を厳格に"


@dataclass
class Item:
    """One thing held about the person, as it is disclosed."""

    kind: str  # ticket, entry, attachment, booking, record, callback, incident, revision, flag…
    label: str  # what a reader sees: 「経過（メッセージ受信）」
    ref: str  # the ticket number, or the item's own reference
    at: str | None  # Japan time, as shown
    text: str = ""
    fields: dict = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)  # kinds of data removed


@dataclass
class DisclosureSection:
    """What a plugin holds about a citizen: a title and its items (see Plugin.disclosure_source).

    `names` are other persons' names the plugin knows (an email sender who is not the person),
    added to what the redactor removes."""

    title: str
    items: list[Item]
    names: list[str] = field(default_factory=list)


@dataclass
class Bundle:
    citizen_id: int
    produced_at: str
    produced_by: str
    person: dict
    sections: list[DisclosureSection]

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    @property
    def review_count(self) -> int:
        return sum(1 for item in self.items if item.review)

    def to_dict(self) -> dict:
        return {
            "format": "madoguchi-disclosure/1",
            "citizen_id": self.citizen_id,
            "produced_at": self.produced_at,
            "produced_by": self.produced_by,
            "person": self.person,
            "review_required": self.review_count,
            "sections": [
                {"title": s.title, "items": [asdict(i) for i in s.items]} for s in self.sections
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


# --- collecting -------------------------------------------------------------------------------


def _all_ids(citizen: Citizen) -> list[int]:
    """The person and every record merged into them (a chain of merges too)."""
    ids = [citizen.id]
    frontier = [citizen.id]
    while frontier:
        found = list(
            db.session.scalars(sa.select(Citizen.id).where(Citizen.merged_into_id.in_(frontier)))
        )
        frontier = [i for i in found if i not in ids]
        ids += frontier
    return ids


def _staff_name(staff: Staff | None) -> str | None:
    return staff.display_name if staff is not None else None


class _Redactor:
    """The FAQ's redactor with this bundle's names: others removed, the person's own kept."""

    def __init__(self, citizen: Citizen, own_refs: list[str], others: list[str], staff: list):
        self.redact = plugins.registry().redactor
        own = [citizen.name, citizen.kana, citizen.address]
        own += [p.number for p in citizen.phones] + [e.address for e in citizen.emails]
        parts = []
        for name in (citizen.name, citizen.kana):
            if name:
                parts += [*name.replace("\u3000", " ").split(), name.replace(" ", "")]
        terms = [t for t in dict.fromkeys(own + parts + own_refs) if t]
        # Each text is given only the terms it holds: the redactor normalises every term it
        # gets, and a person with 200 cases has 200 ticket numbers.
        self.public_terms = [(t, unicodedata.normalize("NFKC", t)) for t in terms]
        self.public_phones = [p.number for p in citizen.phones]
        self.known = [n for n in dict.fromkeys(others + staff) if n and n not in parts]

    def __call__(self, text: str | None) -> tuple[str, list[str]]:
        if not text:
            return "", []
        if self.redact is None:  # no FAQ package installed: nothing to redact with
            return text, []
        folded = unicodedata.normalize("NFKC", text)
        return self.redact(
            text,
            known_names=self.known,
            public_phones=self.public_phones,
            public_terms=[t for t, f in self.public_terms if f in folded],
        )


def _other_names(ticket_ids: list[int], own_ids: list[int]) -> list[str]:
    """Names of the other parties the centre knows on these cases: citizens of related cases."""
    if not ticket_ids:
        return []
    related = sa.union(
        sa.select(TicketLink.related_id).where(TicketLink.ticket_id.in_(ticket_ids)),
        sa.select(TicketLink.ticket_id).where(TicketLink.related_id.in_(ticket_ids)),
    )
    rows = db.session.execute(
        sa.select(Citizen.name, Citizen.kana)
        .join(Ticket, Ticket.citizen_id == Citizen.id)
        .where(Ticket.id.in_(related), Citizen.id.not_in(own_ids))
    ).all()
    return [n for row in rows for n in row if n]


def collect(actor: Actor, citizen_id: int) -> Bundle:
    """Gather the bundle (no audit: `produce` audits each production)."""
    actor.require(*DISCLOSE_ROLES)
    citizen = db.session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("相談者が見つかりません。")
    while citizen.merged_into_id:
        citizen = db.session.get(Citizen, citizen.merged_into_id)
    ids = _all_ids(citizen)
    tickets = list(
        db.session.scalars(
            sa.select(Ticket)
            .where(Ticket.citizen_id.in_(ids))
            .options(
                selectinload(Ticket.timeline).selectinload(TimelineEntry.author),
                selectinload(Ticket.assignee),
                selectinload(Ticket.category),
            )
            .order_by(Ticket.created_at, Ticket.id)
        )
    )
    ticket_ids = [t.id for t in tickets]
    sections_from_plugins = plugins.registry().disclosure_sections(citizen.id)
    staff_names = [
        name
        for s in db.session.scalars(sa.select(Staff))
        for name in (s.full_name, s.display_name.split("/")[0].strip())
        if name
    ]
    others = _other_names(ticket_ids, ids) + [
        n for section in sections_from_plugins for n in section.names
    ]
    redact = _Redactor(citizen, [t.number for t in tickets], others, staff_names)

    def item(kind, label, ref, at, text="", review=(), **fields) -> Item:
        clean, kinds = redact(text)
        marks = list(review)
        if kinds and THIRD_PARTY not in marks:
            marks.append(THIRD_PARTY)
        return Item(
            kind=kind,
            label=label,
            ref=ref,
            at=format_tokyo(at) if isinstance(at, datetime) else at,
            text=clean,
            fields=fields,
            review=marks,
            redacted=sorted(set(kinds)),
        )

    person = {
        "citizen_id": citizen.id,
        "merged_ids": ids[1:],
        "name": citizen.name,
        "kana": citizen.kana,
        "birth_date": citizen.birth_date.isoformat() if citizen.birth_date else None,
        "address": citizen.address,
        "phones": [p.number for p in citizen.phones],
        "emails": [e.address for e in citizen.emails],
        "registered_at": format_tokyo(citizen.created_at),
        "protected": citizen.protected,
        "use_stopped": citizen.use_stopped,
    }
    case_items: list[Item] = []
    record_items: list[Item] = []
    for ticket in tickets:
        case_items.append(
            item(
                "ticket",
                "相談",
                ticket.number,
                ticket.created_at,
                ticket.subject,
                channel=ticket.channel_label,
                status=ticket.status_label,
                category=ticket.category.name if ticket.category else None,
                assignee=_staff_name(ticket.assignee),
                closed_at=format_tokyo(ticket.closed_at) if ticket.closed_at else None,
            )
        )
        if ticket.resolution_summary:
            case_items.append(
                item(
                    "summary",
                    "対応の結果",
                    ticket.number,
                    ticket.closed_at,
                    ticket.resolution_summary,
                )
            )
        for entry in ticket.timeline:
            review = [INTERNAL] if entry.kind == EntryKind.NOTE else []
            case_items.append(
                item(
                    "entry",
                    f"経過（{entry.kind.label}）",
                    ticket.number,
                    entry.created_at,
                    entry.body,
                    review,
                    author=_staff_name(entry.author),
                )
            )
        for record in plugins.registry().case_records(ticket):
            record_items.append(
                item(
                    "record",
                    record.label or "対応記録",
                    ticket.number,
                    None,
                    record.text,
                    [OTHER_BODY],
                )
            )
    attachment_items = (
        [
            item(
                "attachment",
                "添付ファイル",
                a.ticket.number,
                a.uploaded_at,
                a.filename,
                content_type=a.content_type,
                size=a.size,
                file=f"attachments/{a.id}-{a.storage_name}",
                attachment_id=a.id,
            )
            for a in db.session.scalars(
                sa.select(Attachment)
                .where(Attachment.ticket_id.in_(ticket_ids))
                .options(selectinload(Attachment.ticket))
                .order_by(Attachment.id)
            )
        ]
        if ticket_ids
        else []
    )
    callback_items = (
        [
            item(
                "callback",
                "折り返し",
                c.ticket.number,
                c.due_at,
                "",
                done=c.done_at is not None,
            )
            for c in db.session.scalars(
                sa.select(Callback)
                .where(Callback.ticket_id.in_(ticket_ids))
                .options(selectinload(Callback.ticket))
                .order_by(Callback.id)
            )
        ]
        if ticket_ids
        else []
    )
    incident_items = [
        item(
            "incident",
            "対応上の事案記録",
            i.ticket.number if i.ticket else f"事案{i.id}",
            i.occurred_at,
            i.description,
            [SAFETY],
        )
        for i in db.session.scalars(
            sa.select(Incident)
            .where(
                sa.or_(
                    Incident.citizen_id.in_(ids),
                    Incident.ticket_id.in_(ticket_ids or [0]),
                )
            )
            .order_by(Incident.id)
        )
    ]
    revision_items = [
        Item(
            kind="revision",
            label="訂正の履歴",
            ref=f"相談者{citizen.id}",
            at=format_tokyo(r.at),
            fields={"field": r.field, "old": r.old_value, "new": r.new_value},
        )
        for r in db.session.scalars(
            sa.select(CitizenRevision)
            .where(CitizenRevision.citizen_id.in_(ids))
            .order_by(CitizenRevision.id)
        )
    ]
    flag_items = [
        Item(
            kind="flag",
            label=f"{e.flag.label}の{'設定' if e.is_set else '解除'}",
            ref=f"相談者{citizen.id}",
            at=format_tokyo(e.at),
            text=e.reason,
            review=[PROTECTION] if e.flag.value == "protected" else [INTERNAL],
        )
        for e in db.session.scalars(
            sa.select(CitizenFlagEvent)
            .where(CitizenFlagEvent.citizen_id.in_(ids))
            .order_by(CitizenFlagEvent.id)
        )
    ]
    # A plugin's items are redacted here too, with the same names.
    for section in sections_from_plugins:
        for entry in section.items:
            clean, kinds = redact(entry.text)
            entry.text, entry.redacted = clean, sorted(set(kinds))
            if kinds and THIRD_PARTY not in entry.review:
                entry.review.append(THIRD_PARTY)
    sections = [
        DisclosureSection("相談と経過", case_items),
        DisclosureSection("対応記録", record_items),
        DisclosureSection("添付ファイル", attachment_items),
        DisclosureSection("折り返し", callback_items),
        DisclosureSection("事案記録", incident_items),
        DisclosureSection("訂正の履歴", revision_items),
        DisclosureSection("支援措置・利用停止", flag_items),
        *sections_from_plugins,
    ]
    who = actor.staff.display_name if actor.staff is not None else (actor.address or "system")
    return Bundle(
        citizen_id=citizen.id,
        produced_at=format_tokyo(utcnow()),
        produced_by=who,
        person=person,
        sections=[s for s in sections if s.items],
    )


def produce(actor: Actor, citizen_id: int, fmt: str) -> Bundle:
    """Collect the bundle and audit its production (the format, never the content)."""
    bundle = collect(actor, citizen_id)
    audit.record(
        actor, "disclose", "citizen", bundle.citizen_id, f"format={fmt} items={len(bundle.items)}"
    )
    return bundle


# --- the PDF ---------------------------------------------------------------------------------

# The JSON keeps its keys; the printed bundle names them in Japanese.
FIELD_NAMES = {
    "channel": "経路",
    "status": "状態",
    "category": "分類",
    "assignee": "担当",
    "closed_at": "完了",
    "author": "記入",
    "content_type": "種類",
    "size": "大きさ（バイト）",
    "file": "ファイル",
    "attachment_id": "添付番号",
    "done": "済み",
    "mode": "方法",
    "name": "氏名",
    "made_at": "予約日時",
    "user_id": "LINEのユーザーID",
    "following": "友だち登録",
    "field": "項目",
    "old": "訂正前",
    "new": "訂正後",
}


def _shown(value) -> str:
    if value is True:
        return "はい"
    if value is False:
        return "いいえ"
    return str(value)


FONT = "HeiseiKakuGo-W5"


def render_pdf(bundle: Bundle) -> bytes:
    """One A4 document: the person, then each section's items, the reviewer's marks in red."""
    from io import BytesIO
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = ParagraphStyle("base", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22, spaceAfter=6)
    heading = ParagraphStyle("h2", parent=base, fontSize=12.5, leading=18, spaceBefore=10)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor=colors.grey)
    item_style = ParagraphStyle("item", parent=base, spaceAfter=2 * mm)

    def para(text: str, style=base) -> Paragraph:
        return Paragraph(escape(text or "").replace("\n", "<br/>"), style)

    story = [
        para("保有個人情報の開示（開示請求への対応）", title),
        para(
            f"相談者番号 {bundle.citizen_id}　作成 {bundle.produced_at}"
            f"　作成者 {bundle.produced_by}",
            small,
        ),
        para(
            f"審査が必要な箇所：{bundle.review_count}件（赤字の注記）。"
            "他の方の情報は［氏名］などに置き換えています。",
            small,
        ),
        Spacer(1, 4 * mm),
        para("ご本人の情報", heading),
    ]
    p = bundle.person
    rows = [
        ["氏名", p["name"] or "—"],
        ["ふりがな", p["kana"] or "—"],
        ["生年月日", p["birth_date"] or "—"],
        ["住所", p["address"] or "—"],
        ["電話番号", "、".join(format_phone(n) for n in p["phones"]) or "—"],
        ["メールアドレス", "、".join(p["emails"]) or "—"],
        ["登録日", p["registered_at"]],
    ]
    table = Table(
        [[para(a), para(b)] for a, b in rows], colWidths=[35 * mm, 135 * mm], hAlign="LEFT"
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0f0f0")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    for section in bundle.sections:
        story.append(para(f"{section.title}（{len(section.items)}件）", heading))
        for entry in section.items:
            # One paragraph per item (reportlab's cost is per flowable): a grey head line, the
            # text, the fields, and the reviewer's marks in red.
            head = f"{entry.ref}　{entry.label}" + (f"　{entry.at}" if entry.at else "")
            extra = "　".join(
                f"{FIELD_NAMES.get(k, k)}：{_shown(v)}"
                for k, v in entry.fields.items()
                if v not in (None, "", [])
            )
            lines = [f'<font size="8" color="grey">{escape(head)}</font>']
            if entry.text:
                lines.append(escape(entry.text).replace("\n", "<br/>"))
            if extra:
                lines.append(f'<font size="8" color="grey">{escape(extra)}</font>')
            lines += [
                f'<font color="#b00020">【審査】{escape(note)}</font>' for note in entry.review
            ]
            story.append(Paragraph("<br/>".join(lines), item_style))

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawRightString(
            A4[0] - 15 * mm, 10 * mm, f"相談者番号 {bundle.citizen_id}　{doc.page}ページ"
        )
        canvas.restoreState()

    out = BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"開示 相談者番号 {bundle.citizen_id}",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def write(bundle: Bundle, out_dir) -> list[str]:
    """The bundle as files in a folder: bundle.json, bundle.pdf and the attachments' files."""
    import shutil
    from pathlib import Path

    from consult.services import attachments as attachment_service

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    stem = f"disclosure-{bundle.citizen_id}"
    (out / f"{stem}.json").write_text(bundle.to_json(), encoding="utf-8")
    (out / f"{stem}.pdf").write_bytes(render_pdf(bundle))
    written += [f"{stem}.json", f"{stem}.pdf"]
    for entry in bundle.items:
        if entry.kind != "attachment":
            continue
        attachment = db.session.get(Attachment, entry.fields["attachment_id"])
        source = attachment_service.path_of(attachment) if attachment else None
        if source is not None and Path(source).exists():
            target = out / entry.fields["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(entry.fields["file"])
    return written
