"""The test corpora: Takamatsu's garbage list as FAQ entries, and the municipal FAQ written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "faq"
SYNONYMS = [
    "個人番号カード=マイナンバーカード=マイナカード",
    "国保=国民健康保険",
    "ごみ=ゴミ",
    "引越し=引っ越し=転居",
    "保育園=保育所",
    "街灯=防犯灯",
    "学童=放課後児童クラブ",
    "オレオレ詐欺=特殊詐欺",
]


def garbage_entries() -> list[dict]:
    """Each named item: 「<item>は何ごみですか？」; rows with only an id are left out."""
    rows = []
    with (FIXTURES / "0074_garbage_separation_list.utf8.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = (row["name"] or "").strip()
            if not name:
                continue
            kind = (row["classification"] or "").strip()
            note = (row["note"] or "").strip()
            rows.append(
                {
                    "key": f"g{row['#property']}",
                    "question": f"{name}は何ごみですか？",
                    "answer": f"{kind}です。{note}".strip(),
                    "keywords": "",
                    "category": "ごみ分別",
                }
            )
    return rows


def municipal_entries() -> list[dict]:
    with (FIXTURES / "municipal_faq.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def queries() -> list[dict]:
    return json.loads((FIXTURES / "queries.json").read_text(encoding="utf-8"))
