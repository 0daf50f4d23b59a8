"""Folding of what people type, so that the same phone, address or name is found again."""

from __future__ import annotations

import re
import unicodedata

from consult.services.errors import ValidationFailed

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


# C0 controls except tab, line feed and carriage return; DEL; C1 controls; lone surrogates.
# PostgreSQL refuses NUL in text (SQLite stores it), a surrogate cannot even be encoded for it,
# and none of them is something a person meant to write.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"[\t\n\r]")


def has_controls(text: str | None) -> bool:
    return bool(text) and _CONTROLS.search(text) is not None


def strip_controls(text: str | None, multiline: bool = True) -> str:
    """The text without control characters and lone surrogates, for any place text comes in.

    Tabs and line breaks stay in a multi-line text; in a one-line value they become spaces.
    """
    text = _CONTROLS.sub("", text or "")
    return text if multiline else _LINE_BREAKS.sub(" ", text)


def clean_text(value: str | None, label: str, limit: int, required: bool = False) -> str:
    """The one check of a free text that a service stores: cleaned, trimmed, required, limited.

    Services call it whatever the caller (a form, the command line, a channel), so what reaches
    the database never holds a control character, on SQLite as on PostgreSQL.
    """
    text = strip_controls(value).replace("\r\n", "\n").strip()
    if required and not text:
        raise ValidationFailed(f"{label}を入力してください。")
    if len(text) > limit:
        raise ValidationFailed(
            f"{label}は{limit:,}文字以内で入力してください（現在{len(text):,}文字）。"
        )
    return text


# 異体字 of names: each group's variants fold to its first character. The common ones a person
# writes either way on a form (戸籍 forms vs. everyday forms); NFKC already folds the CJK
# compatibility ideographs (隆, 神…) except the twelve unified ones such as 﨑.
_VARIANT_GROUPS = (
    "高髙",
    "崎﨑嵜碕",
    "斉齋齊斎",
    "辺邊邉",
    "浜濵濱",
    "沢澤",
    "桜櫻",
    "広廣",
    "国國",
    "真眞",
    "徳德",
    "恵惠",
    "実實",
    "寿壽",
    "蔵藏",
    "島嶋嶌",
    "槙槇",
    "富冨",
    "峰峯",
    "滝瀧",
    "竜龍",
    "鉄鐵",
    "曽曾",
    "万萬",
    "宝寳寶",
    "児兒",
    "条條",
    "来來",
    "頼賴",
    "静靜",
    "黒黑",
    "円圓",
    "桧檜",
    "館舘",
    "吉𠮷",
    "渕淵渊",
    "栄榮",
    "塩鹽",
    "関關",
    "会會",
    "芸藝",
    "亀龜",
    "学學",
    "礼禮",
    "晃晄",
    "凜凛",
)
_VARIANTS = {v: group[0] for group in _VARIANT_GROUPS for v in group[1:] if v != group[0]}
# Small kana as large, the four 四つ仮名 as two, old kana as today's: a reading typed by ear.
_KANA_FOLD = str.maketrans(
    "ぁぃぅぇぉっゃゅょゎゕゖぢづゐゑゔ", "あいうえおつやゆよわかけじずいえぶ"
)
_VOWEL_OF = {}
for _vowel, _row in (
    ("あ", "あかさたなはまやらわがざだばぱ"),
    ("い", "いきしちにひみりぎじぢびぴ"),
    ("う", "うくすつぬふむゆるぐずづぶぷ"),
    ("え", "えけせてねへめれげぜでべぺ"),
    ("う", "おこそとのほもよろをごぞどぼぽ"),  # サトー is さとう in a name
):
    for _kana in _row:
        _VOWEL_OF[_kana] = _vowel
_NAME_NOISE = re.compile(r"[\s・.,、。\-‐_=]")


def fold_name(raw: str | None) -> str | None:
    """A name or its reading folded so that the ways people write one name compare equal.

    Beyond ``name_key``: 異体字 as their common form, small kana as large, ぢ/づ as じ/ず, the
    long-vowel mark as the vowel it stands for (さとー = さとう), and no spaces or dots. Stored
    per citizen (``Citizen.name_fold``/``kana_fold``) so that a match is an index lookup.
    """
    if not raw:
        return None
    text = _katakana_to_hiragana(_NAME_NOISE.sub("", nfkc(raw)).lower())
    text = "".join(_VARIANTS.get(c, c) for c in text).translate(_KANA_FOLD)
    out: list[str] = []
    for c in text:
        if c == "ー":
            c = _VOWEL_OF.get(out[-1], "") if out else ""
        out.append(c)
    return "".join(out)[:80] or None
