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
"""

from __future__ import annotations

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


def sudachi():
    """This thread's SudachiPy tokenizer (mode A), created on first use."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        from sudachipy import Dictionary, SplitMode

        tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.A)
        _local.tokenizer = tokenizer
    return tokenizer


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


def MorphAnalyzer():
    return MorphTokenizer()


def BigramAnalyzer():
    return BigramTokenizer()
