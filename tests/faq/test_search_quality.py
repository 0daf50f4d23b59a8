"""Search quality on the two corpora: recall@5 and MRR for each analyser, printed and checked.

The index is exercised directly (a throwaway SQLite holding only the FAQ tables), so these
figures measure the analysis and the query design, not the database.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.timeutil import utcnow
from faq.analysis import bigram_terms, fold, morph_terms, reading
from faq.models import FaqChange, FaqEntry, FaqSynonym
from faq.search import SearchIndex, build_query
from tests.faq.corpus import SYNONYMS, garbage_entries, municipal_entries, queries

# Indexes and searches the whole corpus per analyser: seconds (make test-fast leaves it out).
pytestmark = pytest.mark.slow


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


# Queries typed without kana-kanji conversion, as on a phone; the keys the first hit must have
# (the first three), and whether the very first must be one of them.
KANA_QUERIES = [
    ("じゅうみんひょう", {"juminhyo-where", "juminhyo-fee", "juminhyo-proxy", "juminhyo-mail"}),
    ("こくみんけんこうほけん", {"kokuho-join", "kokuho-tax", "kokuho-pay", "kokuho-card"}),
    ("じどうてあて", {"jidoteate", "jidoteate-pay", "jidoteate-genkyo"}),
    ("ジドウテアテ", {"jidoteate", "jidoteate-pay", "jidoteate-genkyo"}),
    ("ｺｸﾐﾝｹﾝｺｳﾎｹﾝ", {"kokuho-join", "kokuho-tax", "kokuho-pay", "kokuho-card"}),
    ("そだいごみ", {"sodai"}),
    ("こせきとうほん", {"koseki-honseki"}),
    ("いんかんしょうめい", {"inkan-cert"}),
    ("きじつぜんとうひょう", {"senkyo-kijitsumae"}),
    ("じどうてあて いつ", {"jidoteate-pay"}),
    ("じどうふようてあて", {"jidofuyo"}),
]


def test_kana_typed_without_conversion_finds_entries_in_kanji(corpus_index):
    index, keys = corpus_index
    for query, expected in KANA_QUERIES:
        top = [keys[h.entry_id] for h in index.search(query, public=True, limit=3)]
        assert top and top[0] in expected, (query, top)
    # Every entry about the thing comes before the rest, not just one of them.
    top = [keys[h.entry_id] for h in index.search("じゅうみんひょう", public=True, limit=4)]
    assert set(top) == KANA_QUERIES[0][1]
    top = [keys[h.entry_id] for h in index.search("じどうてあて", public=True, limit=3)]
    assert set(top) == KANA_QUERIES[2][1]


def test_kana_written_in_an_entry_still_comes_first(corpus_index):
    """An entry that says ふとん itself ranks above those only read that way (座布団)."""
    index, keys = corpus_index
    top = [keys[h.entry_id] for h in index.search("ふとん", public=True, limit=3)]
    assert set(top) <= {"g491", "g492", "g493", "g494"}, top
    top = [keys[h.entry_id] for h in index.search("ぺっとぼとる", public=True, limit=1)]
    assert top == ["g515"]


def test_known_katakana_words_do_not_bring_in_readings(corpus_index):
    """ライター is found as written; its reading's bigrams (たー) must not add センター entries."""
    index, keys = corpus_index
    assert [keys[h.entry_id] for h in index.search("ライター", public=True)] == ["g594"]
    assert [keys[h.entry_id] for h in index.search("パワハラ", public=True)] == ["shokuba"]


def test_readings_are_asked_only_by_queries_all_in_kana(corpus_index):
    """A query with kanji keeps the terms it had: its kana are grammar, not a reading."""
    index, _keys = corpus_index
    searcher = index._searcher()
    for text in ("児童手当 いつ振り込まれる", "住民票 取りたい", "じゅうみんひょうの写し"):
        query = build_query(text, index.synonyms(), searcher)
        assert all(term.fieldname != "r" for term in query.leaves()), text
    query = build_query("じゅうみんひょう", index.synonyms(), searcher)
    assert any(term.fieldname == "r" for term in query.leaves())


def test_reading_of_content_words():
    """Adjacent words read as one run; particles, digits and Latin letters end a run."""
    runs = reading("国民健康保険税が払えないときは？")
    assert runs[0] == "こくみんけんこうほけんぜい" and not any("が" in r for r in runs)
    assert reading("住民票の写しはどこで取得できますか？")[:2] == ["じゅうみんひょう", "うつし"]
    assert reading("1通300円") == ["つう", "えん"]
    assert reading("ＤＶの相談") == ["そうだん"]
