"""ISO-2022-JP as Japanese clients really write it (the CP50220 family), both ways.

Python's iso2022_jp codecs refuse NEC row 13 (①, Ⅰ, ㈱) and the IBM extensions that Outlook and
Windows clients put into ISO-2022-JP, and cannot encode ～ or ①. Converting JIS bytes to
Shift_JIS arithmetically and decoding as cp932 (and the reverse for sending) handles every
JIS X 0208 character plus those extensions; only the eight known JIS/Microsoft mapping
differences change (e.g. 〜 becomes ～), which is what Windows shows anyway.
"""

from __future__ import annotations

import unicodedata

ESC = 0x1B
_ASCII, _JIS0208, _KANA, _JIS0212 = range(4)


def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 & 1 else j2 + 0x7E
    return bytes((s1, s2))


def jis_to_sjis(data: bytes) -> bytes:
    """Rewrite ISO-2022-JP bytes as Shift_JIS bytes (decode the result as cp932)."""
    out = bytearray()
    mode = _ASCII
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == ESC and i + 2 < n:
            seq = data[i + 1 : i + 3]
            if seq in (b"(B", b"(J"):
                mode, i = _ASCII, i + 3
                continue
            if seq in (b"$@", b"$B"):
                mode, i = _JIS0208, i + 3
                continue
            if seq == b"(I":
                mode, i = _KANA, i + 3
                continue
            if seq == b"$(" and i + 3 < n:
                # JIS X 0212 (ESC $ ( D) has no cp932 form; ESC $ ( B/Q are JIS X 0208/0213.
                mode = _JIS0212 if data[i + 3 : i + 4] == b"D" else _JIS0208
                i += 4
                continue
        if b == 0x0E:  # SO: half-width katakana (old clients)
            mode, i = _KANA, i + 1
            continue
        if b == 0x0F:  # SI
            mode, i = _ASCII, i + 1
            continue
        if b in (0x0A, 0x0D):
            # A line end returns to ASCII in well-formed mail; be lenient with broken mail.
            out.append(b)
            if mode != _ASCII and mode != _KANA:
                mode = _ASCII
            i += 1
            continue
        if mode in (_JIS0208, _JIS0212) and 0x21 <= b <= 0x7E and i + 1 < n:
            b2 = data[i + 1]
            if 0x21 <= b2 <= 0x7E:
                out += _jis_pair_to_sjis(b, b2) if mode == _JIS0208 else b"\x81\xac"  # 〓
                i += 2
                continue
        if mode == _KANA and 0x21 <= b <= 0x5F:
            out.append(b + 0x80)
            i += 1
            continue
        out.append(b)
        i += 1
    return bytes(out)


def decode_iso2022jp(data: bytes) -> str:
    return jis_to_sjis(data).decode("cp932", errors="replace")


def _sjis_pair_to_jis(s1: int, s2: int) -> tuple[int, int]:
    if s1 >= 0xE0:
        s1 -= 0x40
    j1 = (s1 - 0x81) * 2 + 0x21
    if s2 >= 0x9F:
        return j1 + 1, s2 - 0x7E
    return j1, s2 - 0x1F - (1 if s2 >= 0x80 else 0)


def can_encode(text: str) -> bool:
    try:
        _to_cp932(text)
    except UnicodeEncodeError:
        return False
    return True


def _to_cp932(text: str) -> bytes:
    # Half-width katakana are not allowed in ISO-2022-JP mail: send the full-width forms.
    folded = "".join(
        unicodedata.normalize("NFKC", ch) if "\uff61" <= ch <= "\uff9f" else ch for ch in text
    )
    return folded.encode("cp932")


def encode_iso2022jp(text: str) -> bytes:
    """Encode as CP50220 does: cp932 characters, written as JIS escapes (raises if impossible)."""
    sjis = _to_cp932(text)
    out = bytearray()
    kanji = False
    i, n = 0, len(sjis)
    while i < n:
        b = sjis[i]
        if (0x81 <= b <= 0x9F or 0xE0 <= b <= 0xFC) and i + 1 < n:
            if not kanji:
                out += b"\x1b$B"
                kanji = True
            j1, j2 = _sjis_pair_to_jis(b, sjis[i + 1])
            out += bytes((j1, j2))
            i += 2
            continue
        if kanji:
            out += b"\x1b(B"
            kanji = False
        out.append(b)
        i += 1
    if kanji:
        out += b"\x1b(B"
    return bytes(out)
