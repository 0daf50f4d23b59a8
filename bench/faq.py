"""FAQ search benchmark: whoosh with the Japanese analysers against a plain SQL LIKE scan.

    .venv/bin/python bench/faq.py --sizes 10000 100000 --rounds 5

Builds N published entries from the test corpora (Takamatsu's garbage list and the municipal
FAQ written for the tests) with variations (city, district, department, wording), into a
temporary SQLite file holding the FAQ tables; indexes them with `faq.search.SearchIndex` (the
same code the app runs), and times a fixed set of realistic queries, one- and two-character
ones included (税, 国保), and kana typed without conversion (じゅうみんひょう), through the
index and through a LIKE scan of the same rows (every word must appear in the question,
keywords or answer; first 10 rows).
Prints indexing time, index size, and p50/p95 per engine.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult.timeutil import utcnow  # noqa: E402
from faq.models import FaqChange, FaqEntry, FaqSynonym  # noqa: E402
from faq.search import SearchIndex  # noqa: E402
from tests.faq.corpus import SYNONYMS, garbage_entries, municipal_entries  # noqa: E402

QUERIES = [
    "税",
    "国保",
    "ごみ",
    "住民票 取りたい",
    "転勤で引っ越してきた",
    "ゴミはいつ出せばいい",
    "子どもが病院にかかったときの費用",
    "ﾍﾟｯﾄﾎﾞﾄﾙ",
    "すぷれーかん",
    "マイナンバーカード 申請",
    "まいなんばー",
    "粗大ごみ 申し込み",
    "児童手当 いつ振り込まれる",
    "保育園に入りたい",
    "還付金があると電話",
    "冷蔵庫 捨てたい",
    "国民健康保険税 払えない",
    "印鑑証明",
    "期日前投票",
    "借金で生活が苦しい",
    "じゅうみんひょう",
    "こくみんけんこうほけん",
    "じどうてあて",
    "ソダイゴミ",
]
CITIES = ["高松市", "丸亀市", "坂出市", "善通寺市", "観音寺市", "さぬき市", "東かがわ市", "三豊市"]
DISTRICTS = ["中央地区", "東部地区", "西部地区", "南部地区", "北部地区", "山間部", "島しょ部"]
ENDINGS = ["", "詳しくは担当課へお問い合わせください。", "受付時間は平日8時30分から17時15分です。"]


def build_rows(count: int, seed: int = 7) -> list[dict]:
    base = municipal_entries() + garbage_entries()
    rng = random.Random(seed)
    rows = []
    now = utcnow()
    for number in range(1, count + 1):
        item = base[(number - 1) % len(base)]
        city = CITIES[((number - 1) // len(base)) % len(CITIES)]
        district = rng.choice(DISTRICTS)
        rows.append(
            {
                "id": number,
                "question": f"{item['question']}（{city}{district}）",
                "answer": f"{item['answer']} {city}{district}の場合です。{rng.choice(ENDINGS)}",
                "keywords": item["keywords"],
                "visibility": "public" if number % 10 else "staff",
                "status": "published",
                "redaction_notes": [],
                "revision": 1,
                "view_count": 0,
                "helpful_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def make_db(path: Path) -> tuple[sa.Engine, sa.MetaData]:
    engine = sa.create_engine(f"sqlite:///{path}")
    meta = sa.MetaData()
    for model in (FaqEntry, FaqChange, FaqSynonym):
        table = model.__table__.to_metadata(meta)
        table.constraints = {
            c for c in table.constraints if not isinstance(c, sa.ForeignKeyConstraint)
        }
        table.foreign_keys.clear()
    meta.create_all(engine)
    return engine, meta


def like_search(conn, text: str, limit: int = 10) -> list[int]:
    """The baseline: every word somewhere in the question, keywords or answer."""
    clauses = []
    params = {}
    for i, word in enumerate(text.split()):
        params[f"w{i}"] = f"%{word}%"
        clauses.append(f"(question LIKE :w{i} OR keywords LIKE :w{i} OR answer LIKE :w{i})")
    sql = (
        "SELECT id FROM faq_entry WHERE status = 'published' AND visibility = 'public' AND "
        + " AND ".join(clauses)
        + f" LIMIT {limit}"
    )
    return [row[0] for row in conn.execute(sa.text(sql), params)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(count: int, rounds: int, workdir: Path) -> dict:
    engine, meta = make_db(workdir / f"faq-{count}.db")
    rows = build_rows(count)
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(meta.tables["faq_entry"].insert(), rows[start : start + 5000])
        for terms in SYNONYMS:
            conn.execute(
                meta.tables["faq_synonym"].insert(), {"terms": terms, "created_at": utcnow()}
            )
        conn.execute(meta.tables["faq_change"].insert(), {"entry_id": None, "at": utcnow()})
    index = SearchIndex(workdir / f"data-{count}", engine)
    started = time.perf_counter()
    index.sync()  # no index yet: a full build
    build_seconds = time.perf_counter() - started
    index_bytes = size_of(index.path)

    whoosh_ms: list[float] = []
    like_ms: list[float] = []
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    index.search("住民票", public=True)  # open the index once, as a running server has
    with engine.connect() as conn:
        like_search(conn, "住民票")
        for _ in range(rounds):
            for query in QUERIES:
                t0 = time.perf_counter()
                index.search(query, public=True, limit=10)
                elapsed = (time.perf_counter() - t0) * 1000
                whoosh_ms.append(elapsed)
                per_query[query].append(elapsed)
                t0 = time.perf_counter()
                like_search(conn, query)
                like_ms.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return {
        "entries": count,
        "build_s": build_seconds,
        "index_mb": index_bytes / 1e6,
        "whoosh_p50": statistics.median(whoosh_ms),
        "whoosh_p95": percentile(whoosh_ms, 0.95),
        "like_p50": statistics.median(like_ms),
        "like_p95": percentile(like_ms, 0.95),
        "slowest": sorted(((statistics.median(v), q) for q, v in per_query.items()), reverse=True)[
            :3
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-faq-bench-"))
    try:
        print(f"{len(QUERIES)} queries × {args.rounds} rounds; figures in ms unless stated")
        print(
            "| entries | index build (s) | index size (MB) "
            "| whoosh p50 | whoosh p95 | LIKE p50 | LIKE p95 |"
        )
        print("|" + "---|" * 7)
        for count in args.sizes:
            r = run(count, args.rounds, workdir)
            print(
                f"| {r['entries']:,} | {r['build_s']:.1f} | {r['index_mb']:.1f} | "
                f"{r['whoosh_p50']:.1f} | {r['whoosh_p95']:.1f} | "
                f"{r['like_p50']:.1f} | {r['like_p95']:.1f} |",
                flush=True,
            )
            slow = ", ".join(f"{q} {ms:.1f}" for ms, q in r["slowest"])
            print(f"  slowest whoosh queries (median ms): {slow}", flush=True)
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
