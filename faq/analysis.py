"""Japanese analysis for the whoosh index: folding, SudachiPy mode A, character bigrams.

whoosh pickles the schema (analyzers included) into the index, so the tokenizers below live
at this stable import path and hold no unpicklable state: the Sudachi tokenizer is created
lazily per thread (it is not safe to share between threads) and never stored on the object.

- ``fold``: NFKC (全角/半角), lower case, katakana → hiragana. Used by the bigram field, so
  「ﾍﾟｯﾄﾎﾞﾄﾙ」, 「ペットボトル」 and 「ぺっとぼとる」 are the same characters.
- ``MorphTokenizer``: SudachiPy mode A with normalised forms (引っ越し → 引っ越す, 子ども → 子供),
  content words only (particles, auxiliaries and symbols dropped), then folded.
- ``BigramTokenizer``: overlapping pairs of characters inside runs of letters; a run of one
  character is kept as itself (税).
- ``ReadingTokenizer``: bigrams of the content words' reading in hiragana (住民票 →
  じゅうみんひょう), so a query typed without kana-kanji conversion meets entries in kanji;
  ``PhraseTokenizer``: the same readings whole, one term per sequence of adjacent words.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

from whoosh.analysis import Token, Tokenizer

_local = threading.local()

# Parts of speech that carry meaning for a search; particles, auxiliaries, symbols do not.
CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "接尾辞", "代名詞", "連体詞"}
# Words so common in questions that they only add noise (何ごみですか, どうすればいい).
STOP_WORDS = {
    "何",
    "する",
    "為る",
    "ある",
    "有る",
    "いる",
    "居る",
    "なる",
    "成る",
    "良い",
    "いい",
    "できる",
    "出来る",
    "の",
    "こと",
    "事",
    "もの",
    "物",
    "ところ",
    "所",
    "どう",
    "どの",
    "これ",
    "それ",
    "よう",
    "様",
    "ため",
    "為",
    "方",
    "くる",
    "来る",
    "いく",
    "行く",
    "です",
    "ます",
    "たい",
    "どこ",
    "いつ",
    "なに",
    "か",
}
_RUN = re.compile(r"[^\W_]+")


def _kata_to_hira(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def fold(text: str) -> str:
    """NFKC, lower case, katakana as hiragana: the form both fields and queries are compared in."""
    return _kata_to_hira(unicodedata.normalize("NFKC", text or "").lower())


@functools.cache
def _dictionary():
    """The process's Sudachi dictionary: loading it takes ~40 ms, a tokenizer from it nothing."""
    from sudachipy import Dictionary

    return Dictionary(dict="core")


def tokenizer(mode: str):
    """This thread's SudachiPy tokenizer in split mode `mode` ("A", "C"), created on first use.

    A tokenizer is not shared between threads; the dictionary under it is, so that a server
    that starts a thread per request does not load the dictionary for each search.
    """
    name = f"tokenizer_{mode}"
    made = getattr(_local, name, None)
    if made is None:
        made = _dictionary().tokenizer(mode=mode)
        setattr(_local, name, made)
    return made


def sudachi():
    """The search's tokenizer: mode A, the shortest units."""
    return tokenizer("A")


def morph_terms(text: str) -> list[tuple[str, int, int]]:
    """(folded normalised form, start, end) of each content word, positions in the NFKC text."""
    normalized = unicodedata.normalize("NFKC", text or "")
    terms = []
    # Sudachi refuses inputs over ~49 KB: analyse paragraph by paragraph.
    offset = 0
    for chunk in re.split(r"(\n+)", normalized):
        if chunk and not chunk.startswith("\n"):
            for morpheme in sudachi().tokenize(chunk[:8000]):
                pos = morpheme.part_of_speech()[0]
                if pos not in CONTENT_POS:
                    continue
                form = fold(morpheme.normalized_form())
                if not form.strip() or form in STOP_WORDS or not _RUN.search(form):
                    continue
                terms.append((form, offset + morpheme.begin(), offset + morpheme.end()))
        offset += len(chunk)
    return terms


def bigram_terms(text: str) -> list[tuple[str, int, int]]:
    """Character bigrams of each run of letters in the folded text; a single letter stays."""
    folded = fold(text)
    terms = []
    for run in _RUN.finditer(folded):
        word, start = run.group(), run.start()
        if len(word) == 1:
            terms.append((word, start, start + 1))
            continue
        for i in range(len(word) - 1):
            terms.append((word[i : i + 2], start + i, start + i + 2))
    return terms


_HIRAGANA_RUN = re.compile(r"[ぁ-ゖー]+")
# Digits and Latin letters are typed as they are, never as their reading (さんびゃく, でぃーぶい).
_ASCII = re.compile(r"[0-9A-Za-z]")


@functools.lru_cache(maxsize=64)
def _reading_runs(text: str) -> tuple[tuple[str, ...], ...]:
    """The hiragana reading of each content word, grouped in runs of adjacent content words.

    Cached: two fields analyse the same title one after the other.
    """
    runs: list[tuple[str, ...]] = []
    current: list[str] = []
    normalized = unicodedata.normalize("NFKC", text or "")
    for chunk in normalized.split("\n"):
        for morpheme in sudachi().tokenize(chunk[:8000]):
            said = fold(morpheme.reading_form())
            if (
                morpheme.part_of_speech()[0] in CONTENT_POS
                and not _ASCII.search(morpheme.surface())
                and _HIRAGANA_RUN.fullmatch(said)
            ):
                current.append(said)
                continue
            if current:
                runs.append(tuple(current))
            current = []
        if current:
            runs.append(tuple(current))
        current = []
    return tuple(runs)


def reading(text: str) -> list[str]:
    """The hiragana reading of each run of content words: 住民票の写し → じゅうみんひょう, うつし.

    Runs keep adjacent words together (国民健康保険 → こくみんけんこうほけん), so a query typed as
    one string meets the bigrams across word boundaries. Particles and auxiliaries end a run, as
    do digits, Latin letters, symbols and words Sudachi cannot read (their "reading" is not
    kana): keeping the particles measured the same on the test corpus for 25 % more postings.
    """
    return ["".join(run) for run in _reading_runs(text)]


def reading_terms(text: str) -> list[tuple[str, int, int]]:
    """Character bigrams of the text's reading; positions are in the joined reading."""
    return bigram_terms(" ".join(reading(text)))


# The longest sequence of words whose reading is indexed whole (国民・健康・保険・税).
PHRASE_WORDS = 4


def reading_phrases(text: str) -> list[tuple[str, int, int]]:
    """The reading of every sequence of up to PHRASE_WORDS adjacent content words, whole.

    Bigrams alone cannot tell 児童手当 from 児童扶養手当 for じどうてあて: the second's reading
    holds every bigram of the first. A query that is exactly the reading of whole words
    (じどうてあて = 児童+手当) also meets this term, which the longer name does not have.
    Readings shorter than three letters are bigrams already.
    """
    found = []
    for run in _reading_runs(text):
        for first in range(len(run)):
            for last in range(first + 1, min(first + PHRASE_WORDS, len(run)) + 1):
                phrase = "".join(run[first:last])
                if len(phrase) >= 3:
                    found.append((phrase, 0, len(phrase)))
    return found


# Separates an entry's title (question and keywords) from its answer in one field's value: the
# title's tokens carry TITLE_BOOST as their weight, so one field per analyser does the work of
# two (half the postings to read per query term).
TITLE_SEPARATOR = "\x1e"
TITLE_BOOST = 3.0


class _ListTokenizer(Tokenizer):
    """Turns a function returning (text, start, end) into a whoosh tokenizer."""

    def terms(self, value: str) -> list[tuple[str, int, int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self).__name__)

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        title, _sep, body = value.rpartition(TITLE_SEPARATOR)
        parts = [(title, TITLE_BOOST), (body, 1.0)] if _sep else [(value, 1.0)]
        terms = [(t, boost) for part, boost in parts for t in self.terms(part)]
        for pos, ((text, start, end), boost) in enumerate(terms):
            token.text = text
            token.boost = boost
            token.stopped = False
            if keeporiginal:
                token.original = text
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class MorphTokenizer(_ListTokenizer):
    def terms(self, value):
        return morph_terms(value)


class BigramTokenizer(_ListTokenizer):
    def terms(self, value):
        return bigram_terms(value)


class ReadingTokenizer(_ListTokenizer):
    def terms(self, value):
        return reading_terms(value)


class PhraseTokenizer(_ListTokenizer):
    def terms(self, value):
        return reading_phrases(value)


def MorphAnalyzer():
    return MorphTokenizer()


def BigramAnalyzer():
    return BigramTokenizer()


def ReadingAnalyzer():
    return ReadingTokenizer()


def PhraseAnalyzer():
    return PhraseTokenizer()
