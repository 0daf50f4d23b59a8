"""Search across every case: one text index in the database, kept in the writing transaction.

Why this engine (measured, bench/README.md): our own character n-grams, indexed by the
database's own full-text index, SQLite FTS5 and PostgreSQL GIN over `to_tsvector('simple')`.
- Japanese has no spaces and consultants type one- and two-character words (税, 国保): FTS5's
  trigram tokenizer and pg_trgm cannot look up fewer than three characters through their index,
  and a dictionary tokenizer misses compounds and names it does not know. Unigrams and bigrams
  of the folded text find any substring: a word of one character is its unigram, a longer word
  the phrase of its bigrams (国民健康保険 → 国民 民健 健康 康保 保険, adjacent).
- The index is a table of the shared database written in the same transaction as the change,
  so every server sees the same index at once (no per-process index to keep in step).

Each ticket has one document (`TicketSearch`), in four fields weighted for ranking:
- who: the citizen's name, kana, phones, emails, the senders' names and addresses (plugins),
  the ticket's number;
- what: subject and resolution summary;
- body: notes, messages in and out, handoff entries (対応記録 included), and the text extracted
  from the ticket's converted files (PDF, Office; consult.services.safe_files);
- reading: the hiragana reading of what and body (plugins.text_reading), so that こくほ typed
  without conversion meets 国保.
Folding: NFKC (全角/半角), lower case, katakana → hiragana.

Writes are noticed at flush (tickets, searched timeline entries, citizens and their phones and
emails, plugins' models) and the documents rewritten before commit, or before a search in the
same transaction. `madoguchi ticket reindex` rebuilds every document.

Personal data: the documents hold the citizen's name and contacts and the words of the case.
A document is deleted with its ticket (ON DELETE CASCADE; on SQLite a trigger removes it from
FTS5 too) and rebuilt from the rows it came from, so disposal reaches it through the ticket and
its citizen; it adds nothing to a disclosure bundle that the ticket does not already hold.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from consult import plugins
from consult.extensions import db
from consult.models import (
    Citizen,
    CitizenEmail,
    CitizenPhone,
    EntryKind,
    SafeFile,
    Ticket,
    TicketSearch,
    TimelineEntry,
)

SEARCHED_ENTRIES = (EntryKind.NOTE, EntryKind.MESSAGE_IN, EntryKind.MESSAGE_OUT, EntryKind.HANDOFF)
FIELDS = ("who", "what", "body", "reading")
# FTS5 bm25 weights of the fields, and PostgreSQL's weights A–D in the same order.
FTS5_WEIGHTS = (10.0, 4.0, 1.0, 0.5)
PG_WEIGHT_LETTERS = ("A", "B", "C", "D")
PG_RANK_WEIGHTS = "{0.05, 0.1, 0.4, 1.0}"  # D, C, B, A
# A word found in many documents is ranked among its newest matches only, so that a search
# costs the same at a million tickets as at a thousand: PostgreSQL then walks the documents
# newest first and checks each (about 20 µs a document), so this bounds the work (measured:
# bench/README.md). Exact phone and email matches are not limited by it.
CANDIDATES = 200
# A number (or part of one) is looked up in two steps on PostgreSQL: the ids of the documents
# that hold all its 4-digit windows, newest first, at most NUMBER_IDS; then the phrase and the
# rank, read from the newest NUMBER_CANDIDATES of them that hold it (a page of results and
# some more): each document read for the rank is a random read of a large table
# (`_number_matches`).
NUMBER_IDS = 2000
NUMBER_CANDIDATES = 60
FTS_TABLE = "ticket_search_fts"
# PostgreSQL only: each document's 4-digit windows, one row each with its score (the weights of
# its positions), under a B-tree on (gram, ticket_id) that answers a part of a phone by an
# index-only scan
# (a GIN index reads every matched document's page; `_number_matches`). Rows follow their
# document (ON DELETE CASCADE) and are written by `write` from the document itself.
DIGITS_TABLE = "ticket_search_digits"
# Tables and triggers the engines own beside the models (the migration tests leave them out).
ENGINE_TABLES = frozenset(
    {
        DIGITS_TABLE,
        FTS_TABLE,
        f"{FTS_TABLE}_data",
        f"{FTS_TABLE}_idx",
        f"{FTS_TABLE}_docsize",
        f"{FTS_TABLE}_config",
        f"{FTS_TABLE}_content",
    }
)
MAX_QUERY = 100
# Set in `connection.info` while a migration rebuilds the documents with today's code over an
# older schema: every source of text then asks `schema_has` before it reads a later table/column.
MIGRATING = "madoguchi_search_migrating"
_RUN = re.compile(r"[^\W_]+")
_HIRAGANA = re.compile(r"[ぁ-ゖー]+")


# --- analysis --------------------------------------------------------------------------------


def _kata_to_hira(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def fold(text: str | None) -> str:
    """NFKC, lower case, katakana as hiragana, the middle dot gone (クーリング・オフ is one word
    however it is typed): the one form of documents and queries."""
    return _kata_to_hira(unicodedata.normalize("NFKC", text or "").lower()).replace("・", "")


def runs(text: str | None) -> list[str]:
    """The folded runs of letters and digits of a text (what lies between them is not searched)."""
    return _RUN.findall(fold(text))


def grams(texts: Iterable[str | None]) -> str:
    """The indexed form of some texts: each run's bigrams (a run of one character as itself),
    then every character once more as a unigram, then the 4-digit windows of digit runs,
    space separated. Bigrams of a run stay adjacent, so a longer word is found as the phrase of
    its bigrams; a number is found by its 4-digit windows, since a bigram of digits (00, 12)
    is in nearly every document and would make PostgreSQL check them all."""
    bigrams: list[str] = []
    unigrams: list[str] = []
    digits: list[str] = []
    for text in texts:
        for run in runs(text):
            if len(run) == 1:
                bigrams.append(run)
            else:
                bigrams.extend(run[i : i + 2] for i in range(len(run) - 1))
            unigrams.extend(run)
            if len(run) >= DIGIT_GRAM and run.isascii() and run.isdigit():
                digits.extend(_windows(run, DIGIT_GRAM))
    return " ".join(bigrams + unigrams + digits)


DIGIT_GRAM = 4


def _windows(run: str, size: int) -> list[str]:
    return [run[i : i + size] for i in range(len(run) - size + 1)]


@dataclass(frozen=True)
class Query:
    """What to look for: every word (AND); a word is its runs (AND), a run its bigram phrase."""

    words: tuple[tuple[str, ...], ...]  # per word, its folded runs

    @property
    def runs(self) -> list[str]:
        return [run for word in self.words for run in word]

    @property
    def is_number(self) -> bool:
        """Only numbers of 4+ digits (looked up by their 4-digit windows)."""
        return all(len(r) >= DIGIT_GRAM and r.isascii() and r.isdigit() for r in self.runs)

    @classmethod
    def parse(cls, text: str) -> Query | None:
        words = []
        for word in unicodedata.normalize("NFKC", text or "")[:MAX_QUERY].split():
            found = tuple(runs(word))
            if found:
                words.append(found)
        return cls(tuple(words)) if words else None

    @staticmethod
    def _phrase(run: str) -> list[str]:
        if len(run) >= DIGIT_GRAM and run.isascii() and run.isdigit():
            return _windows(run, DIGIT_GRAM)
        return [run] if len(run) == 1 else _windows(run, 2)

    def fts5(self) -> str:
        """FTS5 MATCH syntax: "ab bc" phrases, ANDed by juxtaposition."""
        return " ".join('"' + " ".join(self._phrase(run)) + '"' for run in self.runs)

    def tsquery(self, phrases: bool = True) -> str:
        """PostgreSQL tsquery text: 'ab' <-> 'bc' phrases joined by &. Runs hold letters and
        digits only, so no quoting is needed beyond the single quotes. Without `phrases`, every
        gram joined by &: what the GIN index answers alone, without reading a document."""
        if not phrases:
            grams = dict.fromkeys(gram for run in self.runs for gram in self._phrase(run))
            return " & ".join(f"'{gram}'" for gram in grams)
        return " & ".join(
            "(" + " <-> ".join(f"'{gram}'" for gram in self._phrase(run)) + ")" for run in self.runs
        )


# --- documents -------------------------------------------------------------------------------


@dataclass
class Document:
    who: list[str] = field(default_factory=list)
    what: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)

    def fields(self, reading) -> dict[str, str]:
        spoken = []
        if reading is not None:
            for text in (*self.what, *self.body):
                spoken.extend(_reading_of(reading, text))
        return {
            "who": grams(self.who),
            "what": grams(self.what),
            "body": grams(self.body),
            "reading": grams(spoken),
        }


_READINGS: dict[str, list[str]] = {}


def _reading_of(reading, text: str) -> list[str]:
    """The reading of a text, remembered for texts seen before (set phrases of the centre)."""
    if not text:
        return []
    if text in _READINGS:
        return _READINGS[text]
    said = [run for run in reading(text) if _HIRAGANA.fullmatch(run)]
    if len(text) <= 200:
        if len(_READINGS) > 20_000:
            _READINGS.clear()
        _READINGS[text] = said
    return said


def schema_has(connection, table: str, column: str | None = None) -> bool:
    """Whether the schema has this table (and column). Always, except while a migration
    rebuilds the documents over an older schema (`MIGRATING`, the search migration 0020, before
    the tables and columns of later revisions exist): then the database is asked."""
    if not connection.info.get(MIGRATING):
        return True
    inspector = sa.inspect(connection)
    if not inspector.has_table(table):
        return False
    return column is None or column in {c["name"] for c in inspector.get_columns(table)}


def _documents(connection, ticket_ids: Sequence[int]) -> dict[int, Document]:
    """Each ticket's document, read in a few statements for any number of tickets."""
    docs: dict[int, Document] = {}
    ticket = Ticket.__table__
    citizen_of: dict[int, list[int]] = defaultdict(list)
    for row in connection.execute(
        sa.select(
            ticket.c.id,
            ticket.c.number,
            ticket.c.subject,
            ticket.c.resolution_summary,
            ticket.c.citizen_id,
        ).where(ticket.c.id.in_(ticket_ids))
    ):
        docs[row.id] = Document(who=[row.number], what=[row.subject, row.resolution_summary])
        if row.citizen_id is not None:
            citizen_of[row.citizen_id].append(row.id)
    if not docs:
        return docs
    if citizen_of:
        citizen_ids = sorted(citizen_of)
        person = Citizen.__table__
        for cid, *names in connection.execute(
            sa.select(
                person.c.id, person.c.name, person.c.kana, person.c.name_key, person.c.kana_key
            ).where(person.c.id.in_(citizen_ids))
        ):
            # The keys are the names without spaces: 山田太郎 typed whole meets 山田 太郎.
            for tid in citizen_of[cid]:
                docs[tid].who.extend(names)
        for table, column in (
            (CitizenPhone.__table__, "number"),
            (CitizenEmail.__table__, "address"),
        ):
            for cid, value in connection.execute(
                sa.select(table.c.citizen_id, table.c[column]).where(
                    table.c.citizen_id.in_(citizen_ids)
                )
            ):
                for tid in citizen_of[cid]:
                    docs[tid].who.append(value)
    entry = TimelineEntry.__table__
    for tid, body in connection.execute(
        sa.select(entry.c.ticket_id, entry.c.body)
        .where(entry.c.ticket_id.in_(ticket_ids), entry.c.kind.in_(SEARCHED_ENTRIES))
        .order_by(entry.c.ticket_id, entry.c.id)
    ):
        docs[tid].body.append(body)
    # The text extracted from the ticket's converted files (無害化): words of a PDF or a
    # Word document find the case (consult.services.safe_files, at most 20,000 characters each).
    from consult.services import safe_files

    if schema_has(connection, SafeFile.__tablename__):
        for tid, texts in safe_files.texts_of(connection, list(docs)).items():
            docs[tid].body.extend(texts)
    for source in _registry().search_texts:
        for tid, texts in source.texts(connection, list(docs)).items():
            if tid in docs:
                docs[tid].who.extend(texts)
    return docs


def _registry():
    return plugins.registry()


def _reading():
    plugins_ = _registry().plugins.values()
    readers = [plugin.text_reading for plugin in plugins_ if plugin.text_reading]
    return readers[0] if readers else None


def write(connection, ticket_ids: Iterable[int]) -> int:
    """Rewrite the documents of these tickets (those that no longer exist lose theirs)."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return 0
    reading = _reading()
    docs = _documents(connection, ids)
    table = TicketSearch.__table__
    connection.execute(table.delete().where(table.c.ticket_id.in_(ids)))
    if not docs:
        return 0
    rows = [{"ticket_id": tid, **doc.fields(reading)} for tid, doc in docs.items()]
    if connection.dialect.name == "postgresql":
        document = sa.func.setweight(
            sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"), sa.bindparam("g_who")),
            sa.literal_column("'A'::\"char\""),
        )
        for name, letter in zip(FIELDS[1:], PG_WEIGHT_LETTERS[1:], strict=True):
            document = document.op("||")(
                sa.func.setweight(
                    sa.func.to_tsvector(
                        sa.literal_column("'simple'::regconfig"), sa.bindparam(f"g_{name}")
                    ),
                    sa.literal_column(f"'{letter}'::\"char\""),
                )
            )
        rows = [
            {"tid": row.pop("ticket_id"), **{f"g_{k}": v for k, v in row.items()}} for row in rows
        ]
        connection.execute(
            table.insert().values(ticket_id=sa.bindparam("tid"), document=document), rows
        )
        if schema_has(connection, DIGITS_TABLE):
            write_digits(connection, list(docs))
    else:
        connection.execute(table.insert(), rows)
    return len(rows)


# The windows are read back from the documents just written, so that they are what the GIN
# index holds: a 4-digit lexeme is always a window (bigrams have 2 characters, unigrams 1).
# A window's score is the sum of its positions' weights (PG_RANK_WEIGHTS: the citizen and the
# number count most, and a window found twice more than once), as ts_rank orders one term.
_DIGITS_FROM_DOCUMENTS = """
INSERT INTO ticket_search_digits (gram, ticket_id, score)
SELECT CAST(t.lexeme AS smallint), s.ticket_id,
  sum(CASE w.weight WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.4 WHEN 'C' THEN 0.1 ELSE 0.05 END)
FROM ticket_search AS s
CROSS JOIN LATERAL unnest(s.document) AS t
CROSS JOIN LATERAL unnest(t.weights) AS w(weight)
WHERE t.lexeme ~ '^[0-9]{4}$' AND s.ticket_id = ANY(:ids)
GROUP BY s.ticket_id, t.lexeme
"""


def write_digits(connection, ticket_ids: Sequence[int]) -> None:
    """The digit windows of these tickets' documents, on PostgreSQL (their old rows went with
    the old documents)."""
    connection.execute(
        sa.text(_DIGITS_FROM_DOCUMENTS).bindparams(
            sa.bindparam("ids", list(ticket_ids), type_=postgresql.ARRAY(sa.Integer))
        )
    )


def rebuild(connection, batch: int = 2000, progress=None) -> int:
    """Every ticket's document anew (`madoguchi ticket reindex`, the migration's backfill)."""
    ticket = Ticket.__table__
    done = 0
    last = 0
    while True:
        ids = list(
            connection.scalars(
                sa.select(ticket.c.id).where(ticket.c.id > last).order_by(ticket.c.id).limit(batch)
            )
        )
        if not ids:
            break
        done += write(connection, ids)
        last = ids[-1]
        if progress is not None:
            progress(done)
    return done


# --- keeping the index in step with the writes -----------------------------------------------

_PENDING = "search_pending"
_TICKET_COLUMNS = ("subject", "resolution_summary", "citizen_id", "number")
_CITIZEN_COLUMNS = ("name", "kana")


def _changed(obj, names) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _after_flush(session: Session, _context) -> None:
    """Note which tickets' documents the flushed changes touch (written before commit)."""
    pending = session.info.setdefault(_PENDING, {"tickets": set(), "citizens": set()})
    watched = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Ticket):
            if obj in session.new or _changed(obj, _TICKET_COLUMNS):
                pending["tickets"].add(obj.id)
        elif isinstance(obj, TimelineEntry):
            if obj.kind in SEARCHED_ENTRIES:
                pending["tickets"].add(obj.ticket_id)
        elif isinstance(obj, Citizen):
            if obj in session.new or obj in session.deleted or _changed(obj, _CITIZEN_COLUMNS):
                pending["citizens"].add(obj.id)
        elif isinstance(obj, CitizenPhone | CitizenEmail):
            pending["citizens"].add(obj.citizen_id)
        elif isinstance(obj, SafeFile):
            if _changed(obj, ("text", "status")) or obj in session.deleted:
                pending["tickets"].add(obj.ticket_id)
        else:
            if watched is None:
                watched = _watched_models()
            if isinstance(obj, watched):
                pending["tickets"].add(obj.ticket_id)
    if not (pending["tickets"] or pending["citizens"]):
        session.info.pop(_PENDING, None)


def touch(ticket_ids: Iterable[int], session: Session | None = None) -> None:
    """Have these tickets' documents rewritten before commit: for a writer that changes what
    the index holds with a Core UPDATE, which no flush hook sees."""
    session = session or db.session()
    pending = session.info.setdefault(_PENDING, {"tickets": set(), "citizens": set()})
    pending["tickets"].update(ticket_ids)


def _watched_models() -> tuple[type, ...]:
    try:
        return tuple(source.model for source in _registry().search_texts)
    except RuntimeError:  # a session used outside any app: no plugins to ask
        return ()


def apply_pending(session: Session | None = None) -> None:
    """Write the documents of what this transaction changed (before commit, or before a search
    that must see the transaction's own writes)."""
    session = session or db.session()
    if _PENDING not in session.info:
        return
    session.flush()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    tickets = set(pending["tickets"])
    citizens = {cid for cid in pending["citizens"] if cid is not None}
    if citizens:
        ticket = Ticket.__table__
        tickets.update(
            connection.scalars(
                sa.select(ticket.c.id).where(ticket.c.citizen_id.in_(sorted(citizens)))
            )
        )
    tickets.discard(None)
    if tickets:
        write(connection, tickets)


def _before_commit(session: Session) -> None:
    apply_pending(session)


def _forget(session: Session, *_args) -> None:
    session.info.pop(_PENDING, None)


def register() -> None:
    """Listen to every session (once per process; the hooks act only on what search indexes)."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)
        sa.event.listen(Session, "before_commit", _before_commit)
        sa.event.listen(Session, "after_rollback", _forget)


# --- finding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    channel: str | None = None
    status: str | None = None
    category_id: int | None = None
    assignee_id: int | None = None
    since: datetime | None = None  # last activity at or after
    until: datetime | None = None  # last activity before

    def apply(self, query, ticket):
        if self.channel:
            query = query.where(ticket.c.channel == self.channel)
        if self.status:
            query = query.where(ticket.c.status == self.status)
        if self.category_id:
            query = query.where(ticket.c.category_id == self.category_id)
        if self.assignee_id:
            query = query.where(ticket.c.assignee_id == self.assignee_id)
        if self.since:
            query = query.where(ticket.c.last_activity_at >= self.since)
        if self.until:
            query = query.where(ticket.c.last_activity_at < self.until)
        return query

    @classmethod
    def of_days(cls, since: date | None = None, until: date | None = None, **fields) -> Filters:
        """Filters with a period of Japanese days, both ends included."""
        from consult.timeutil import TOKYO

        def start(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=TOKYO).astimezone(UTC)

        return cls(
            since=start(since) if since else None,
            until=start(until + timedelta(days=1)) if until else None,
            **{name: value for name, value in fields.items() if value not in ("", None)},
        )

    @property
    def any(self) -> bool:
        return any(
            (self.channel, self.status, self.category_id, self.assignee_id, self.since, self.until)
        )


def matches(query: Query, filters: Filters = Filters()) -> dict[int, float]:
    """{ticket id: relevance} of the newest CANDIDATES documents that hold every word; higher
    is better, comparable only within one search."""
    session = db.session()
    apply_pending(session)
    connection = session.connection()
    ticket = Ticket.__table__
    if connection.dialect.name == "postgresql":
        table = TicketSearch.__table__
        simple = sa.literal_column("'simple'::regconfig")
        tsquery = sa.func.to_tsquery(simple, query.tsquery())
        if query.is_number:
            return _number_matches(connection, query, filters, tsquery)
        found = sa.select(table.c.ticket_id, table.c.document).where(
            table.c.document.op("@@")(tsquery)
        )
        if filters.any:
            found = found.join(ticket, ticket.c.id == table.c.ticket_id)
            found = filters.apply(found, ticket)
        found = found.order_by(table.c.ticket_id.desc()).limit(CANDIDATES).subquery()
        rank = sa.func.ts_rank(
            sa.literal_column(f"'{PG_RANK_WEIGHTS}'::float4[]"), found.c.document, tsquery
        )
        rows = connection.execute(sa.select(found.c.ticket_id, rank))
        return {tid: float(score) for tid, score in rows}
    fts = sa.table(FTS_TABLE, sa.column("rowid"))
    found = sa.select(fts.c.rowid).where(sa.literal_column(FTS_TABLE).op("MATCH")(query.fts5()))
    if filters.any:
        found = found.join(ticket, ticket.c.id == fts.c.rowid)
        found = filters.apply(found, ticket)
    ids = list(connection.scalars(found.order_by(fts.c.rowid.desc()).limit(CANDIDATES)))
    return _fts5_rank(connection, query, ids)


def _fts5_rank(connection, query: Query, ids: list[int]) -> dict[int, float]:
    """BM25 over the candidates' fields, weighted as FTS5_WEIGHTS, computed here.

    FTS5's own bm25() first counts every document of the whole index that holds each phrase
    (its IDF): at 1,000,000 tickets 50 ms for 介護保険 (188,000 documents) when the pages are in
    memory, far more when they are not, against under 1 ms for the newest 200 matches alone
    (bench/README.md). Every candidate holds every phrase, so the IDF only weighs one word
    against another; the term frequencies, the field weights and the fields' lengths (against
    the candidates' mean) still order the results as bm25 did."""
    if not ids:
        return {}
    table = TicketSearch.__table__
    rows = connection.execute(
        sa.select(table.c.ticket_id, *(table.c[name] for name in FIELDS)).where(
            table.c.ticket_id.in_(ids)
        )
    ).all()
    phrases = [" " + " ".join(Query._phrase(run)) + " " for run in query.runs]
    lengths = {tid: [text.count(" ") + 1 if text else 0 for text in texts] for tid, *texts in rows}
    mean = [max(1.0, sum(row[i] for row in lengths.values()) / len(lengths)) for i in range(4)]
    k1, b = 1.2, 0.75
    scores: dict[int, float] = {}
    for tid, *texts in rows:
        score = 0.0
        for i, (text, weight) in enumerate(zip(texts, FTS5_WEIGHTS, strict=True)):
            if not text:
                continue
            padded = f" {text} "
            norm = k1 * (1 - b + b * lengths[tid][i] / mean[i])
            for phrase in phrases:
                tf = padded.count(phrase)
                if tf:
                    score += weight * tf * (k1 + 1) / (tf + norm)
        scores[tid] = score
    return scores


def _number_matches(connection, query: Query, filters: Filters, tsquery) -> dict[int, float]:
    """A number or part of one (a phone's last digits, a ticket number's six) on PostgreSQL.

    Measured at 1,000,000 tickets (bench/README.md): through the GIN index every search read
    the pages of the few hundred documents that hold its windows, and those pages are not in
    memory, since every search is for other digits. So the ids come from the narrow digits
    table by an index-only scan of (gram, ticket_id), newest first; a single window is its own
    phrase and ranks by the score kept beside it, with no document read. A longer number
    (several windows, which must be adjacent) is then checked as a phrase and ranked on the
    newest few documents only, passed as one array parameter."""
    ticket = Ticket.__table__
    grams = list(dict.fromkeys(int(gram) for run in query.runs for gram in query._phrase(run)))
    digits = [
        sa.table(DIGITS_TABLE, sa.column("gram"), sa.column("ticket_id"), sa.column("score")).alias(
            f"d{i}"
        )
        for i in range(len(grams))
    ]
    first = digits[0]
    ids = sa.select(first.c.ticket_id, first.c.score).where(first.c.gram == grams[0])
    for other, gram in zip(digits[1:], grams[1:], strict=True):
        ids = ids.join(other, sa.and_(other.c.ticket_id == first.c.ticket_id, other.c.gram == gram))
    if filters.any:
        ids = filters.apply(ids.join(ticket, ticket.c.id == first.c.ticket_id), ticket)
    single = len(query.runs) == 1 and len(query.runs[0]) == DIGIT_GRAM
    limit = NUMBER_CANDIDATES if single else NUMBER_IDS
    rows = connection.execute(ids.order_by(first.c.ticket_id.desc()).limit(limit)).all()
    if single:
        return {tid: float(score) for tid, score in rows}
    if not rows:
        return {}
    table = TicketSearch.__table__
    rank = sa.func.ts_rank(
        sa.literal_column(f"'{PG_RANK_WEIGHTS}'::float4[]"), table.c.document, tsquery
    )
    found = sa.bindparam("ids", [tid for tid, _ in rows], type_=postgresql.ARRAY(sa.Integer))
    rows = connection.execute(
        sa.select(table.c.ticket_id, rank)
        .where(table.c.ticket_id == sa.any_(found), table.c.document.op("@@")(tsquery))
        .order_by(table.c.ticket_id.desc())
        .limit(NUMBER_CANDIDATES)
    )
    return {tid: float(score) for tid, score in rows}


# --- snippets ----------------------------------------------------------------------------------


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the index of the original character."""
    out: list[str] = []
    where: list[int] = []
    for index, char in enumerate(text):
        folded = fold(char)
        out.append(folded)
        where.extend([index] * len(folded))
    return "".join(out), where


def snippet(texts: Sequence[str | None], words: Sequence[str], width: int = 80) -> Markup | None:
    """A passage of the first text that holds a word, escaped, the words in <mark>."""
    words = sorted({w for w in words if w}, key=len, reverse=True)
    if not words:
        return None
    for text in texts:
        if not text:
            continue
        whole = fold(text)
        if not any(word in whole for word in words):
            continue
        folded, where = _folded_with_map(text)
        spans = []
        for word in words:
            start = folded.find(word)
            while start != -1:
                spans.append((where[start], where[start + len(word) - 1] + 1))
                start = folded.find(word, start + len(word))
        if not spans:
            continue
        spans.sort()
        first = spans[0][0]
        begin = max(0, first - width // 3)
        end = min(len(text), begin + width)
        merged: list[list[int]] = []
        for start, stop in spans:
            if stop <= begin or start >= end:
                continue
            start, stop = max(start, begin), min(stop, end)
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        flat = text.replace("\r", " ").replace("\n", " ")
        parts: list[str | Markup] = ["…" if begin > 0 else ""]
        cursor = begin
        for start, stop in merged:
            parts.append(flat[cursor:start])  # escaped by the join
            parts.append(Markup("<mark>%s</mark>") % flat[start:stop])
            cursor = stop
        parts.append(flat[cursor:end])
        parts.append("…" if end < len(text) else "")
        return Markup("").join(parts)
    return None


def snippet_texts(tickets: Sequence[Ticket]) -> dict[int, list[str | None]]:
    """The texts a snippet may come from, per ticket, in one statement for the whole page:
    subject, resolution summary, then the searched entries, newest first."""
    texts: dict[int, list[str | None]] = {t.id: [t.subject, t.resolution_summary] for t in tickets}
    if not texts:
        return texts
    entry = TimelineEntry.__table__
    for tid, body in db.session.execute(
        sa.select(entry.c.ticket_id, entry.c.body)
        .where(entry.c.ticket_id.in_(list(texts)), entry.c.kind.in_(SEARCHED_ENTRIES))
        .order_by(entry.c.id.desc())
    ):
        texts[tid].append(body)
    return texts
