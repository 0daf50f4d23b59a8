"""The search index: whoosh behind a small interface of ours (sync, rebuild, search).

The index is derived data. The database is the source of truth and holds a revision counter
(`faq_change`, one row per change); each process's index remembers the last change it applied
(a file beside the index) and catches up before it answers, so several servers over one
database answer the same. A missing or unreadable index is rebuilt. Only published entries are
indexed; staff-only and public entries are told apart by a field, and the service checks the
database again before it shows a hit.

Writes (catching up, rebuilding) take a file lock, so one writer at a time across processes
that share a data folder; reads never wait for it.

Query design (measured in tests/faq/test_search_quality.py and bench/faq.py):
- two fields: morphological (Sudachi mode A, normalised, content words) and character bigrams of
  the folded text, each over question+keywords ("title") and answer, the title's tokens weighted
  3× in the postings; TF-IDF scoring (whoosh's BM25F reads every document's length and cost 50×
  more per posting in bench/faq.py);
- two more fields over the title's reading in hiragana, searched only by queries written all
  in kana (じゅうみんひょう, typed on a phone without conversion): its bigrams (r), and the
  reading of each sequence of whole words (w), which tells 児童手当 from 児童扶養手当 for
  じどうてあて where the bigrams cannot. Fields of their own rather than more bigrams in the
  second, because they leave every other query's terms and frequencies as they were, and the
  kana queries ranked better (MRR 0.98 against 0.94 on the test corpus);
- public search masks the few staff-only entries out rather than filtering to the many others;
- the query is analysed the same way; every term is OR'ed (a colloquial sentence never has all
  its words in the entry), and terms found in a large share of entries are dropped when rarer
  ones exist: they cost the most to read and say the least (「ですか」 in 613 garbage questions);
- administrators' synonyms are applied at query time, so editing them needs no reindex.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import shutil
import threading
import time
import unicodedata
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from whoosh import index as whoosh_index
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.query import And, Or, Term
from whoosh.scoring import TF_IDF

from faq.analysis import (
    TITLE_SEPARATOR,
    BigramAnalyzer,
    MorphAnalyzer,
    PhraseAnalyzer,
    ReadingAnalyzer,
    bigram_terms,
    fold,
    morph_terms,
)

log = logging.getLogger("madoguchi.faq.search")

INDEX_NAME = "faq-index"
REVISION_FILE = "applied_revision"
# A term found in more than this share of the entries is dropped when rarer terms exist.
COMMON_SHARE = 0.15
# Reading bigrams: three rarest ranked the test corpus's kana queries as well as five, and
# halved their cost at 10,000 entries (bench/faq.py).
MAX_TERMS = {"m": 4, "b": 5, "r": 3, "w": 3}
FIELD_SETS = {
    "both": ("m", "b", "r", "w"),
    "morph": ("m",),
    "bigram": ("b",),
}
# The morphological field's matches are surer than a bigram's; the title's weight is in the index.
# A reading's bigram counts a little more than a written one: it only ever comes from a title
# (kana queries on the test corpus: MRR 0.78 at 0.6, 0.96 at 1.0, 0.98 at 1.5 and 2.0); the
# reading of whole words is as sure as a morphological match.
BOOSTS = {"m": 2.0, "b": 1.0, "r": 1.5, "w": 2.0}
# Bumped whenever the schema or an analyser changes what the index holds: an index of another
# format is rebuilt (whoosh pickles the schema in the index, so old code's indexes lack fields).
INDEX_FORMAT = 2
FORMAT_FILE = "format"


def make_schema() -> Schema:
    text_m = {"analyzer": MorphAnalyzer(), "phrase": False, "multitoken_query": "and"}
    text_b = {"analyzer": BigramAnalyzer(), "phrase": False, "multitoken_query": "and"}
    text_r = {"analyzer": ReadingAnalyzer(), "phrase": False, "multitoken_query": "and"}
    text_w = {"analyzer": PhraseAnalyzer(), "phrase": False, "multitoken_query": "and"}
    return Schema(
        id=ID(stored=True, unique=True),
        public=ID,
        category=ID,
        department=ID,
        m=TEXT(**text_m),
        b=TEXT(**text_b),
        r=TEXT(**text_r),
        w=TEXT(**text_w),
        question=STORED,
    )


@dataclass(frozen=True)
class RawHit:
    entry_id: int
    score: float


def _entry_rows(conn, entry_ids: list[int] | None = None):
    """Published entries as plain rows, read on the index's own connection."""
    t = sa.table(
        "faq_entry",
        sa.column("id"),
        sa.column("question"),
        sa.column("answer"),
        sa.column("keywords"),
        sa.column("category_id"),
        sa.column("department_id"),
        sa.column("visibility"),
        sa.column("status"),
    )
    query = sa.select(t).where(t.c.status == "published").order_by(t.c.id)
    if entry_ids is not None:
        query = query.where(t.c.id.in_(entry_ids))
    return conn.execute(query)


def document(row) -> dict:
    title = f"{row.question}\n{(row.keywords or '').replace(',', ' ')}"
    value = f"{title}{TITLE_SEPARATOR}{row.answer}"
    return {
        "id": str(row.id),
        "public": "1" if row.visibility == "public" else "0",
        "category": str(row.category_id or ""),
        "department": str(row.department_id or ""),
        "m": value,
        "b": value,
        "r": title,
        "w": title,
        "question": row.question,
    }


class SearchIndex:
    """One process's copy of the index, kept in step with the database's change counter."""

    def __init__(self, data_dir: str | Path, engine: sa.Engine):
        self.root = Path(data_dir)
        self.path = self.root / INDEX_NAME
        self.engine = engine
        self._lock = threading.Lock()
        self._index = None
        self._applied = -1
        self._synonyms: list[list[str]] = []
        self._generation = 0
        self._local = threading.local()
        self._synonyms_at = -1

    # --- keeping in step -----------------------------------------------------------------------

    @contextmanager
    def _write_lock(self):
        """One writer at a time: a thread lock here, a file lock across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.root / f"{INDEX_NAME}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _latest(self, conn) -> int:
        return conn.execute(sa.text("SELECT max(id) FROM faq_change")).scalar() or 0

    def _latest_revision(self) -> int:
        with self.engine.connect() as conn:
            return self._latest(conn)

    def _read_applied(self) -> int:
        try:
            return int((self.path / REVISION_FILE).read_text())
        except (OSError, ValueError):
            return -1

    def _read_format(self) -> int:
        """The index's format; an index written before formats were recorded is format 1."""
        try:
            return int((self.path / FORMAT_FILE).read_text())
        except (OSError, ValueError):
            return 1

    def _write_applied(self, value: int) -> None:
        tmp = self.path / f"{REVISION_FILE}.{os.getpid()}.tmp"
        tmp.write_text(str(value))
        tmp.replace(self.path / REVISION_FILE)
        self._applied = value

    def _open(self):
        if self._index is None:
            self._index = whoosh_index.open_dir(str(self.path))
            self._generation += 1
        return self._index

    def _searcher(self):
        """This thread's searcher, reopened when the index changed (opening costs ~2 ms)."""
        ix = self._open()
        cached = getattr(self._local, "searcher", None)
        if cached is not None and self._local.generation == self._generation:
            return cached
        if cached is not None:
            cached.close()
        self._local.searcher = ix.searcher(weighting=TF_IDF())
        self._local.generation = self._generation
        return self._local.searcher

    def sync(self) -> int:
        """Apply the database's changes since this index's revision; rebuild when unusable."""
        with self.engine.connect() as conn:
            latest = self._latest(conn)
            if latest == self._applied and self._index is not None:
                return latest
            with self._write_lock():
                applied = self._read_applied()
                usable = (
                    applied >= 0
                    and applied <= latest
                    and self._read_format() == INDEX_FORMAT
                    and self._readable()
                )
                if not usable:
                    log.info(
                        "faq index missing, unreadable, of another format or ahead of the "
                        "database: rebuilding"
                    )
                    self._rebuild(conn, latest)
                    return latest
                if applied < latest:
                    self._apply(conn, applied, latest)
                self._applied = latest
                self._index = None  # reopen to see the latest segments
                return latest

    def _readable(self) -> bool:
        # whoosh leaves the handle of an unreadable file open; it is closed when the exception
        # is dropped, which warns (an error under -W error): expected here, so quiet.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                ix = whoosh_index.open_dir(str(self.path))
                with ix.searcher() as searcher:
                    searcher.doc_count()
                return True
            except Exception as error:  # any failure to read means: rebuild
                log.warning("faq index unreadable (%s): rebuilding", type(error).__name__)
            gc.collect()
        return False

    def _apply(self, conn, applied: int, latest: int) -> None:
        changed = conn.execute(
            sa.text(
                "SELECT DISTINCT entry_id FROM faq_change "
                "WHERE id > :a AND id <= :b AND entry_id IS NOT NULL"
            ),
            {"a": applied, "b": latest},
        ).scalars()
        ids = sorted(set(changed))
        if ids:
            writer = whoosh_index.open_dir(str(self.path)).writer(timeout=30)
            try:
                for entry_id in ids:
                    writer.delete_by_term("id", str(entry_id))
                for row in _entry_rows(conn, ids):
                    writer.add_document(**document(row))
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
        self._write_applied(latest)

    def rebuild(self) -> int:
        """Build a fresh index from the database (the `faq reindex` command)."""
        with self.engine.connect() as conn, self._write_lock():
            latest = self._latest(conn)
            return self._rebuild(conn, latest)

    def _rebuild(self, conn, latest: int) -> int:
        """Build beside the old one and swap, so readers never see a half-built index."""
        fresh = self.root / f"{INDEX_NAME}.new-{os.getpid()}"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        ix = whoosh_index.create_in(str(fresh), make_schema())
        writer = ix.writer(limitmb=256)
        count = 0
        for row in _entry_rows(conn):
            writer.add_document(**document(row))
            count += 1
        writer.commit()
        (fresh / REVISION_FILE).write_text(str(latest))
        (fresh / FORMAT_FILE).write_text(str(INDEX_FORMAT))
        old = self.root / f"{INDEX_NAME}.old-{os.getpid()}"
        if self.path.exists():
            self.path.replace(old)
        fresh.replace(self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._index = None
        self._applied = latest
        return count

    # --- searching -----------------------------------------------------------------------------

    def synonyms(self, conn=None) -> list[list[str]]:
        if self._synonyms_at != self._applied:
            with self.engine.connect() as own:
                rows = own.execute(sa.text("SELECT terms FROM faq_synonym ORDER BY id")).scalars()
                self._synonyms = [
                    [fold(t.strip()) for t in terms.split("=") if t.strip()] for terms in rows
                ]
            self._synonyms_at = self._applied
        return self._synonyms

    def search(
        self,
        text: str,
        *,
        public: bool,
        category_id: int | None = None,
        department_id: int | None = None,
        limit: int = 10,
        fields: str = "both",
    ) -> list[RawHit]:
        self.sync()
        searcher = self._searcher()
        query = build_query(text, self.synonyms(), searcher, fields)
        if query is None:
            return []
        # Staff-only entries are few: masking them out is cheaper than filtering to the rest.
        mask = Term("public", "0") if public else None
        filters = []
        if category_id:
            filters.append(Term("category", str(category_id)))
        if department_id:
            filters.append(Term("department", str(department_id)))
        flt = None if not filters else (filters[0] if len(filters) == 1 else And(filters))
        results = searcher.search(query, limit=limit, filter=flt, mask=mask)
        return [RawHit(int(hit["id"]), float(hit.score)) for hit in results]

    def doc_count(self) -> int:
        self.sync()
        with self._open().searcher() as searcher:
            return searcher.doc_count()


def expand(text: str, synonyms: list[list[str]]) -> list[str]:
    """The query, and the query with each synonym group's other words in place of the one found."""
    folded = fold(text)
    variants = []
    for group in synonyms:
        for term in group:
            if term and term in folded:
                variants.extend(folded.replace(term, other) for other in group if other != term)
                break
    return variants


def _hiragana_only(text: str) -> bool:
    return all("ぁ" <= ch <= "ゖ" or ch == "ー" for ch in text)


def _kana_only(text: str) -> bool:
    letters = "".join(fold(text).split())
    return bool(letters) and _hiragana_only(letters)


def _terms(text: str, kinds: tuple[str, ...], known=None) -> dict[str, set[str]]:
    """The query's terms per field.

    Bigrams are the fallback for what the dictionary does not split well, so a bigram lying
    inside a morphological term that the index knows (``known(term)``) adds only cost and is
    left out. Bigrams written in hiragana only (いつ, まれ, ばい) are mostly grammar: dropped when
    the query has others, kept when it is all hiragana (すぷれーかん, まいなんばー).

    A query all in kana (じゅうみんひょう, ジドウテアテ) was probably typed without kana-kanji
    conversion: its bigrams, and each of its words whole, are also looked for in the titles'
    readings. A query with any kanji is left as it was; its kana are mostly grammar, and their
    bigrams would meet every reading. A known word written in katakana is a loanword found as
    written (ライター, パワハラ): its reading bigrams would only bring in センター and the like.
    Hiragana keeps them: Sudachi splits unconverted hiragana badly (いんかんしょうめい → 鑑賞).
    """
    found: dict[str, set[str]] = {"m": set(), "b": set(), "r": set(), "w": set()}
    covered: list[tuple[int, int]] = []
    written = unicodedata.normalize("NFKC", text)
    if "m" in kinds:
        for term, start, end in morph_terms(text):
            found["m"].add(term)
            if known is not None and known(term):
                covered.append((start, end))
    if "b" in kinds:
        pairs = [
            (t, _hiragana_only(written[s:e]))
            for t, s, e in bigram_terms(text)
            if not any(cs <= s and e <= ce for cs, ce in covered)
        ]
        content = {t for t, grammar in pairs if not grammar}
        found["b"] = content or {t for t, _ in pairs}
    if "r" in kinds and _kana_only(text):
        loanwords = [(s, e) for s, e in covered if not _hiragana_only(written[s:e])]
        found["r"] = {
            t
            for t, s, e in bigram_terms(text)
            if not any(cs <= s and e <= ce for cs, ce in loanwords)
        }
    if "w" in kinds and _kana_only(text):
        found["w"] = {word for word in fold(text).split() if len(word) >= 3}
    return found


def build_query(text: str, synonyms: list[list[str]], searcher, fields: str = "both"):
    """An OR of the query's rarer terms over the two fields, with synonyms added.

    Cost grows with the postings read: terms in a large share of the entries are dropped when
    rarer ones exist, each field keeps its MAX_TERMS rarest terms, and a query made only of
    common terms (「ごみ」 over a garbage list) keeps its single rarest term in one field.
    """
    kinds = FIELD_SETS[fields]
    text = (text or "")[:200]
    total = max(searcher.doc_count(), 1)

    def known(term: str) -> bool:
        return 0 < searcher.doc_frequency("m", term) <= COMMON_SHARE * total

    main = _terms(text, kinds, known)
    extra: dict[str, set[str]] = {"m": set(), "b": set(), "r": set(), "w": set()}
    for variant in expand(text, synonyms):
        for kind, terms in _terms(variant, kinds, known).items():
            extra[kind] |= terms - main[kind]
    chosen: dict[str, list[tuple[str, float]]] = {}
    common: list[tuple[int, str, str, float]] = []
    for kind in kinds:
        picked: list[tuple[int, str, float]] = []
        for terms, weight in ((main[kind], 1.0), (extra[kind], 0.8)):
            for term in terms:
                frequency = searcher.doc_frequency(kind, term)
                if frequency == 0:
                    continue
                if total >= 50 and frequency > COMMON_SHARE * total:
                    common.append((frequency, kind, term, weight))
                    continue
                picked.append((frequency, term, weight))
        picked.sort()
        chosen[kind] = [(term, weight) for _f, term, weight in picked[: MAX_TERMS[kind]]]
    if not any(chosen.values()) and common:
        common.sort(key=lambda item: (item[0], item[1] != "m"))
        _f, kind, term, weight = common[0]
        chosen[kind] = [(term, weight)]
    clauses = [
        Term(kind, term, boost=BOOSTS[kind] * weight)
        for kind, terms in chosen.items()
        for term, weight in terms
    ]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else Or(clauses)


def timed_search(index: SearchIndex, text: str, **kwargs) -> tuple[list[RawHit], float]:
    started = time.perf_counter()
    hits = index.search(text, **kwargs)
    return hits, (time.perf_counter() - started) * 1000
