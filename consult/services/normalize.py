"""Folding of what people type, so that the same phone, address or name is found again."""

from __future__ import annotations

import re
import unicodedata

_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―ー−()（）.]")
_DOMESTIC_PHONE = re.compile(r"0\d{9,10}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str) -> str | None:
    """'０８７－８３９－２１１１', '087(839)2111', '+81 87 839 2111' → '0878392111'; else None."""
    text = _PHONE_SEPARATORS.sub("", nfkc(raw or "").strip())
    if text.startswith("+81"):
        text = "0" + text[3:].lstrip("0")
    return text if _DOMESTIC_PHONE.fullmatch(text) else None


def format_phone(number: str) -> str:
    """Hyphenated for reading; exact area-code splits vary, so this is a display aid only."""
    if len(number) == 11 and number[:3] in {"070", "080", "090", "050"}:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if number.startswith(("0120", "0800")):
        return f"{number[:4]}-{number[4:7]}-{number[7:]}"
    if len(number) == 10:
        return f"{number[:3]}-{number[3:6]}-{number[6:]}"
    return number


def normalize_email(raw: str) -> str | None:
    """Full-width and case folded; the local part is kept as typed except for case."""
    text = nfkc(raw or "").strip().lower()
    return text if len(text) <= 254 and _EMAIL.fullmatch(text) else None


def _katakana_to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def name_key(raw: str | None) -> str | None:
    """Folded name for matching: NFKC, no spaces, katakana as hiragana, lower case."""
    if not raw:
        return None
    text = re.sub(r"[\s・･]", "", nfkc(raw)).lower()
    return _katakana_to_hiragana(text) or None


def single_line(text: str | None) -> str:
    """Collapse CR/LF and other control characters, for values that must stay on one line."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text or "").strip()


def like_prefix(text: str) -> str:
    """A LIKE pattern for values starting with `text`, its wildcards escaped (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
