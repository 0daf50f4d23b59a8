"""Import of FAQ entries from CSV (the government's recommended open-data format and variants) or
JSON lines; every row is checked on its own."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Category, Department, Role
from consult.services.actor import Actor
from consult.services.errors import DomainError, ValidationFailed
from faq.services.workflow import approve, create_entry, submit

CSV_COLUMNS = {
    "question": ("質問", "質問内容", "question"),
    "answer": ("回答", "回答内容", "answer"),
    "department": ("所管部署", "担当部署", "所管課", "department"),
    "category": ("カテゴリ", "カテゴリー", "分類", "category"),
    "keywords": ("キーワード", "keywords"),
    "visibility": ("公開範囲", "visibility"),
}


@dataclass
class ImportReport:
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(
        "文字コードを判別できません（UTF-8 または Shift_JIS で保存してください）。"
    )


def _rows(path: Path) -> list[tuple[int, dict]]:
    text = _decode(path.read_bytes())
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                rows.append((number, {"_error": "JSONとして読めません"}))
                continue
            rows.append(
                (
                    number,
                    data if isinstance(data, dict) else {"_error": "オブジェクトではありません"},
                )
            )
        return rows
    reader = csv.DictReader(io.StringIO(text))
    header = {name.strip(): name for name in (reader.fieldnames or [])}
    mapping = {}
    for key, names in CSV_COLUMNS.items():
        for name in names:
            if name in header:
                mapping[key] = header[name]
                break
    if "question" not in mapping or "answer" not in mapping:
        raise ValidationFailed("CSVに「質問」と「回答」の列がありません。")
    return [
        (number, {key: (row.get(col) or "") for key, col in mapping.items()})
        for number, row in enumerate(reader, start=2)
    ]


def import_file(actor: Actor, path: Path, *, publish: bool = False) -> ImportReport:
    """Import entries (as drafts, or published at once by the trusted command line).

    Every row is checked on its own: a bad row is reported with its reason and the rest go in.
    """
    actor.require(Role.ADMIN)
    report = ImportReport()
    categories = {c.name: c.id for c in db.session.scalars(sa.select(Category))}
    departments = {d.name: d.id for d in db.session.scalars(sa.select(Department))}
    for number, row in _rows(path):
        if "_error" in row:
            report.rejected.append((number, row["_error"]))
            continue
        category = str(row.get("category") or "").strip()
        department = str(row.get("department") or "").strip()
        visibility = str(row.get("visibility") or "public").strip() or "public"
        visibility = {"公開": "public", "職員のみ": "staff"}.get(visibility, visibility)
        keywords = row.get("keywords") or ""
        if isinstance(keywords, list):
            keywords = ",".join(str(k) for k in keywords)
        if category and category not in categories:
            report.rejected.append((number, f"分類「{category}」が登録されていません"))
            continue
        try:
            with db.session.begin_nested():
                entry = create_entry(
                    actor,
                    question=str(row.get("question") or ""),
                    answer=str(row.get("answer") or ""),
                    category_id=categories.get(category),
                    department_id=departments.get(department),
                    keywords=str(keywords),
                    visibility=visibility,
                )
                if publish:
                    submit(actor, entry)
                    approve(actor, entry)
        except DomainError as error:
            report.rejected.append((number, error.message))
            continue
        report.imported += 1
    return report


def seed_demo(members: dict) -> None:
    """Demo FAQ entries (written for this project), published, so /faq answers at once."""
    from consult.services.actor import Actor as _Actor

    admin = _Actor(members["admin"], "seed", trusted=True)  # like the command line
    import_file(
        admin, Path(__file__).resolve().parent.parent / "data" / "demo_faq.jsonl", publish=True
    )
