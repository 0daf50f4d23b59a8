"""Search engines compared on the desk's words: our n-grams (FTS5, tsvector) against FTS5's
trigram tokenizer and pg_trgm, on the same documents.

    .venv/bin/python bench/search_engines.py --docs 100000

Each document is a subject and five notes of bench/desk.py. For each engine and word: the
milliseconds of `count of matches` (median of 5) and the count, so that a wrong answer (an
engine that cannot look up a one- or two-character word) shows as well as a slow one.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import postgres_base  # noqa: E402
from bench.desk import NOTES, SUBJECTS  # noqa: E402
from consult.services.search import Query, grams  # noqa: E402

WORDS = ["税", "国保", "介護保険", "住民票の写し"]


def documents(n: int) -> list[str]:
    rng = random.Random(16)
    return [
        rng.choice(SUBJECTS) + "\n" + "\n".join(rng.choice(NOTES) for _ in range(5))
        for _ in range(n)
    ]


def timed(run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(5):
        t0 = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def sqlite_engines(docs: list[str]) -> dict:
    path = Path(tempfile.mkdtemp()) / "engines.db"
    con = sqlite3.connect(path)
    con.execute("CREATE VIRTUAL TABLE ngram USING fts5(body, tokenize='ascii')")
    con.execute("CREATE VIRTUAL TABLE tri USING fts5(body, tokenize='trigram')")
    t0 = time.perf_counter()
    con.executemany("INSERT INTO ngram(body) VALUES (?)", ((grams([d]),) for d in docs))
    built = {"FTS5 n-grams (ours)": time.perf_counter() - t0}
    t0 = time.perf_counter()
    con.executemany("INSERT INTO tri(body) VALUES (?)", ((d,) for d in docs))
    built["FTS5 trigram"] = time.perf_counter() - t0
    con.commit()
    out = {}
    for word in WORDS:
        q = Query.parse(word).fts5()
        out[("FTS5 n-grams (ours)", word)] = timed(
            lambda q=q: con.execute(
                "SELECT count(*) FROM ngram WHERE ngram MATCH ?", (q,)
            ).fetchone()[0]
        )
        # The trigram tokenizer answers MATCH only for 3+ characters; shorter words fall back
        # to LIKE, which it serves by scanning.
        if len(word) >= 3:
            sql, arg = "SELECT count(*) FROM tri WHERE tri MATCH ?", f'"{word}"'
        else:
            sql, arg = "SELECT count(*) FROM tri WHERE body LIKE ?", f"%{word}%"
        out[("FTS5 trigram", word)] = timed(
            lambda sql=sql, arg=arg: con.execute(sql, (arg,)).fetchone()[0]
        )
    con.close()
    return {"built": built, "queries": out}


def postgres_engines(docs: list[str]) -> dict:
    from tests import pg

    base = postgres_base()
    url = pg.recreate_database(base, "madoguchi_engines")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.exec_driver_sql(
                "CREATE TABLE doc (id serial primary key, body text, g text, v tsvector)"
            )
            conn.execute(
                sa.text("INSERT INTO doc (body, g) VALUES (:b, :g)"),
                [{"b": d, "g": grams([d])} for d in docs],
            )
            # Stored, as ticket_search.document is: a phrase query rechecks every candidate
            # row's positions, and an expression index would parse the text again for each.
            t0 = time.perf_counter()
            conn.exec_driver_sql("UPDATE doc SET v = to_tsvector('simple'::regconfig, g)")
            conn.exec_driver_sql("CREATE INDEX doc_tsv ON doc USING gin (v)")
            built = {"tsvector n-grams (ours)": time.perf_counter() - t0}
            t0 = time.perf_counter()
            conn.exec_driver_sql("CREATE INDEX doc_trgm ON doc USING gin (body gin_trgm_ops)")
            built["pg_trgm"] = time.perf_counter() - t0
            conn.exec_driver_sql("ANALYZE doc")
        out = {}
        with engine.connect() as conn:
            for word in WORDS:
                q = Query.parse(word).tsquery()
                out[("tsvector n-grams (ours)", word)] = timed(
                    lambda q=q: conn.execute(
                        sa.text(
                            "SELECT count(*) FROM doc"
                            " WHERE v @@ to_tsquery('simple'::regconfig, :q)"
                        ),
                        {"q": q},
                    ).scalar()
                )
                out[("pg_trgm", word)] = timed(
                    lambda word=word: conn.execute(
                        sa.text("SELECT count(*) FROM doc WHERE body LIKE :p"), {"p": f"%{word}%"}
                    ).scalar()
                )
        return {"built": built, "queries": out}
    finally:
        engine.dispose()
        pg.drop_database(base, "madoguchi_engines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    args = parser.parse_args()
    docs = documents(args.docs)
    truth = {word: sum(word in d for d in docs) for word in WORDS}
    print(f"{args.docs:,} documents; true matches: {truth}")
    for result in (sqlite_engines(docs), postgres_engines(docs)):
        for name, seconds in result["built"].items():
            print(f"  built {name}: {seconds:.1f}s")
        for (name, word), (ms, count) in result["queries"].items():
            flag = "" if count == truth[word] else f"  (WRONG: {count})"
            print(f"  {name:26} {word:8} {ms:8.1f} ms  {count:>7}{flag}")


if __name__ == "__main__":
    main()
