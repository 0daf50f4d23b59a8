"""Search quality on the two corpora: recall@5 and MRR for each analyser, printed and checked.

The index is exercised directly (a throwaway SQLite holding only the FAQ tables), so these
figures measure the analysis and the query design, not the database.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.timeutil import utcnow
from faq.analysis import bigram_terms, fold, morph_terms
from faq.models import FaqChange, FaqEntry, FaqSynonym
from faq.search import SearchIndex
from tests.faq.corpus import SYNONYMS, garbage_entries, municipal_entries, queries


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faq-quality")
    engine = sa.create_engine(f"sqlite:///{tmp / 'faq.db'}")
    tables = [FaqEntry.__table__, FaqChange.__table__, FaqSynonym.__table__]
    # Only the FAQ's own tables: the foreign keys to the kernel are not needed here.
    meta = sa.MetaData()
    for table in tables:
        table.to_metadata(meta)
    for table in meta.tables.values():
        table.foreign_keys.clear()
        table.constraints = {
            c for c in table.constraints if not isinstance(c, sa.ForeignKeyConstraint)
        }
    meta.create_all(engine)
    keys = {}
    with engine.begin() as conn:
        for number, row in enumerate(municipal_entries() + garbage_entries(), start=1):
            conn.execute(
                meta.tables["faq_entry"].insert(),
                {
                    "id": number,
                    "question": row["question"],
                    "answer": row["answer"],
                    "keywords": row["keywords"],
                    "visibility": "public",
                    "status": "published",
                    "redaction_notes": [],
                    "revision": 1,
                    "view_count": 0,
                    "helpful_count": 0,
                    "created_at": NOW,
                    "updated_at": NOW,
                },
            )
            keys[number] = row["key"]
        for terms in SYNONYMS:
            conn.execute(meta.tables["faq_synonym"].insert(), {"terms": terms, "created_at": NOW})
        conn.execute(meta.tables["faq_change"].insert(), {"entry_id": None, "at": NOW})
    index = SearchIndex(tmp / "data", engine)
    index.sync()
    yield index, keys
    engine.dispose()


NOW = utcnow()


def evaluate(index, keys, fields):
    found, reciprocal = 0, 0.0
    misses = []
    for item in queries():
        hits = index.search(item["query"], public=True, limit=10, fields=fields)
        ranked = [keys[h.entry_id] for h in hits]
        ranks = [i for i, key in enumerate(ranked, start=1) if key in item["expected"]]
        if ranks and ranks[0] <= 5:
            found += 1
        else:
            misses.append(item["query"])
        reciprocal += 1 / ranks[0] if ranks else 0.0
    total = len(queries())
    return found / total, reciprocal / total, misses


def test_corpora_are_big_enough():
    assert len(garbage_entries()) >= 600
    assert len(municipal_entries()) >= 100
    assert len(queries()) >= 80


def test_recall_and_mrr_per_analyser(corpus_index, capsys):
    index, keys = corpus_index
    figures = {}
    for fields in ("morph", "bigram", "both"):
        figures[fields] = evaluate(index, keys, fields)
    with capsys.disabled():
        print(f"\nFAQ search quality over {len(queries())} queries, {len(keys)} entries")
        for fields, (recall, mrr, misses) in figures.items():
            print(f"  {fields:7s} recall@5 {recall:.3f}  MRR {mrr:.3f}  misses: {misses[:12]}")
    recall, mrr, _ = figures["both"]
    assert recall >= 0.9
    assert recall >= max(figures["morph"][0], figures["bigram"][0])
    assert mrr >= 0.75


def test_scripts_fold_together():
    assert fold("ﾍﾟｯﾄﾎﾞﾄﾙ") == fold("ペットボトル") == "ぺっとぼとる"
    assert [t for t, _, _ in bigram_terms("税")] == ["税"]
    assert "引っ越す" in [t for t, _, _ in morph_terms("引っ越してきた")]
    assert "まいなんばー" in [t for t, _, _ in morph_terms("マイナンバーカードの申請")]


def test_public_filter_and_partial_words(corpus_index):
    index, keys = corpus_index
    top = [keys[h.entry_id] for h in index.search("マイナンバーカード 申請", public=True, limit=3)]
    assert top[0] == "mynumber-apply"
    top = [keys[h.entry_id] for h in index.search("まいなんばー", public=True, limit=5)]
    assert "mynumber-apply" in top
