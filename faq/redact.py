"""Personal-data redaction for FAQ drafts made from closed cases.

A closed case holds the citizen's name, phone, address, My Number…; an FAQ entry must not.
The redactor finds each kind of personal data and replaces it with a Japanese label
(［電話番号］, ［氏名］…). Every finding is returned as a span of the ORIGINAL text, so that a
reviewer sees what was removed, and so that publishing can be refused while anything is left.

How (see ../shared/DEPENDENCIES.md, "Personal-data redaction"):
- The text is NFKC-normalised (全角/半角) with a map back to the original positions; all the
  patterns run on the normalised text only.
- Structured data (phones, emails, postal codes, addresses, dates of birth, My Number, ticket and
  booking references, LINE ids, URLs with tokens) are patterns with context rules.
- Names the case itself knows (citizen, staff) are matched for certain, in every script and
  spacing; other names come from SudachiPy's 人名 tags plus honorific and label rules.
- Public phone numbers and public terms (the centre's desks, department and place names) are an
  allow-list: a finding that lies inside one of them is dropped.

Booking references are ``B-`` followed by 6 to 10 letters or digits (``B-7K3Q9X``), also
``予約番号：`` followed by any such code. Ticket references are ``YYYY-NNNNNN`` (as made by
``consult.services.tickets``), optionally prefixed by ``#`` or ``No.``.

Human review before publishing stays mandatory: names are found at about 90%, not 100%.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from faq.analysis import tokenizer

LABELS: dict[str, str] = {
    "phone": "［電話番号］",
    "email": "［メールアドレス］",
    "my_number": "［個人番号］",
    "id_number": "［番号］",
    "postal_code": "［郵便番号］",
    "address": "［住所］",
    "birth_date": "［生年月日］",
    "ticket_ref": "［受付番号］",
    "booking_ref": "［予約番号］",
    "line_id": "［LINE ID］",
    "account_id": "［アカウントID］",
    "bank_account": "［口座番号］",
    "card_number": "［カード番号］",
    "url": "［URL］",
    "name": "［氏名］",
}

# When two findings overlap, the one whose kind comes first wins (then the longer one).
_PRIORITY = {
    kind: rank
    for rank, kind in enumerate(
        [
            "url",
            "email",
            "line_id",
            "account_id",
            "birth_date",
            "ticket_ref",
            "booking_ref",
            "postal_code",
            "card_number",
            "bank_account",
            "phone",
            "my_number",
            "address",
            "id_number",
            "name",
        ]
    )
}


@dataclass(frozen=True)
class Span:
    """One finding: positions are in the original text, so text[start:end] == original."""

    kind: str
    label: str
    start: int
    end: int
    original: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Redaction:
    text: str
    spans: list[Span] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.spans)

    def to_dict(self) -> dict:
        return {"text": self.text, "spans": [s.to_dict() for s in self.spans]}


# ---------------------------------------------------------------------------------------------
# Normalisation with a map back to the original positions


@dataclass
class _Normalized:
    text: str
    starts: list[int]  # original start of the cluster that produced each normalised character
    ends: list[int]  # original end of that cluster

    def original_range(self, start: int, end: int) -> tuple[int, int]:
        return self.starts[start], self.ends[end - 1]


_HYPHENS = "-‐‑‒–—―−ー─━ｰ"
_HYPHEN_FOLD = str.maketrans({c: "-" for c in "‐‑‒–—―−─━"})


def _normalize(text: str) -> _Normalized:
    """NFKC cluster by cluster (a base character with its combining marks, e.g. ﾊﾞ), so that
    every normalised character knows which original characters it came from."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    n = len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(unicodedata.normalize("NFKC", text[j])[:1] or "a"):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j]).translate(_HYPHEN_FOLD)
        if not piece:  # a lone combining mark or a character NFKC drops: keep it as it was
            piece = text[i:j]
        for ch in piece:
            out.append(ch)
            starts.append(i)
            ends.append(j)
        i = j
    return _Normalized("".join(out), starts, ends)


# ---------------------------------------------------------------------------------------------
# Patterns (on NFKC text; hyphens of every kind folded to "-", katakana ー kept as is)

_H = r"[-ー]"  # a hyphen after folding; ー is typed for a hyphen in numbers too
_NUM_KANJI = "一二三四五六七八九十〇百"
_N = rf"(?:\d+|[{_NUM_KANJI}]+)"

_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_RE = re.compile(r"(?:https?|ftp)://[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]+", re.IGNORECASE)
_LONG_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{16,}")
# A query or fragment parameter that carries a secret or identifies a person (?cat=5 does not).
_SECRET_KEY = re.compile(
    r"token|session|sid|key|pwd|pass|auth|code|sig|ticket|uid|user|mail|id$|login|otp|nonce",
    re.IGNORECASE,
)
_TOKENISH = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-.%]{8,}|[0-9]{8,}")

# Separators may include a line break: a number wrapped in a pasted form is still a number
# (recall first; the digit count check keeps two numbers on two lines apart).
_PHONE_RE = re.compile(
    r"(?<![\d+])(?:\+\s?81[\s-]*(?:\(0\)|0)?[\s-]*|\(0|0)\d{0,10}"
    r"(?:(?:\s*[-ー・.]\s*|\s?\(\s?|\s?\)\s?|\s)\d{1,8}){0,4}(?!\d)"
)
_PHONE_SPLIT_RE = re.compile(r"\d+")

_MYNUMBER_RE = re.compile(r"(?<![\d-])\d{4}[\s-]?\d{4}[\s-]?\d{4}(?![\d-]|\s\d)")
_LONG_DIGITS_RE = re.compile(r"(?<![\d-])\d{10,}(?![\d])")
_ID_LABEL_RE = re.compile(
    r"(?:被保険者番号|被保険者証番号|保険者番号|保険証番号|記号番号|口座番号|免許証番号|"
    r"基礎年金番号|年金番号|受給者番号|受給者証番号|患者番号|会員番号|契約番号|お客様番号|"
    r"証番号|個人番号|マイナンバー|番号)\s*(?:は|が|:)?\s*"
    r"(?P<v>[A-Za-z0-9](?:[A-Za-z0-9]|[\s-](?=[A-Za-z0-9])){3,24})"
)

_POSTAL_MARK_RE = re.compile(r"〒\s*\d{3}\s*[-ー]?\s*\d{4}(?!\d)")
_POSTAL_CTX_RE = re.compile(
    r"(?:郵便番号|郵便)\s*(?:は|:)?\s*(?P<v>\d{3}[-ー]?\d{4})(?!\d)"
    r"|(?<![\d-])(?P<w>\d{3}[-ー]\d{4})(?![\d-])(?=\s*(?:[^\s\d]{1,4}?[都道府県]|[^\s\d]{1,5}?[市区町村郡]))"
)

_PREF = (
    "北海道|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|"
    "東京都|神奈川県|新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|"
    "滋賀県|京都府|大阪府|兵庫県|奈良県|和歌山県|鳥取県|島根県|岡山県|広島県|山口県|徳島県|"
    "香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
_PLACE_CHARS = r"一-龥々〆ヶケァ-ヴーの"
# The block part that makes an address personal: 丁目・番地・号, or 1-2-3 after a town name.
# 番町一丁目 alone is a neighbourhood (a park, a station are there), not a household.
_BLOCK = (
    rf"(?:{_N}\s*丁目\s*{_N}\s*(?:(?:番地?|[-ー])\s*(?:の\s*)?(?:{_N}\s*号?)?|番地|号)"
    rf"|{_N}\s*番地\s*(?:の\s*)?(?:{_N}(?:\s*[-ー]\s*{_N})?\s*号?)?"
    rf"|{_N}\s*番\s*{_N}\s*号"
    rf"|\d+\s*[-ー]\s*\d+(?:\s*[-ー]\s*\d+)?(?:\s*号)?)"
)
_BUILDING = (
    rf"(?:\s?[{_PLACE_CHARS}A-Za-zぁ-ん・]{{1,16}}\s?)?"
    r"(?:\d{1,4}\s*号室|\d{1,4}\s*号|\d{1,2}\s*[階F](?:\s*\d{1,4}\s*号?室?)?|[-ー]\s*\d{1,4}(?!\d)|\d{3,4}(?!\d))"
)
_ADDRESS_RE = re.compile(
    rf"(?:(?:{_PREF})?[{_PLACE_CHARS}]{{0,12}}?)(?P<head>[{_PLACE_CHARS}]{{1,14}})"
    rf"(?P<block>{_BLOCK})(?P<bldg>{_BUILDING})?"
)
# A town name and a plain lot number with no 番地 (三豊市高瀬町下勝間1234): the head must hold a
# 市 or 郡 followed by a town name, and the number must not be a count (1000人, 2か所, 1階).
_LOT_RE = re.compile(
    rf"(?:{_PREF})?[{_PLACE_CHARS}]{{1,8}}?[市郡][{_PLACE_CHARS}]{{2,14}}?"
    r"\d{1,5}(?:-\d{1,4}){0,2}(?![\d,.]|\s?(?:人|円|件|年|月|日|時|分|%|歳|回|個|台|枚|階|号|番|点|通|"
    r"か|ヶ|カ|万|億|km|m|キロ|メートル|世帯|名|部|室|校|園|歩|秒|倍|割|週))"
)
_ADDRESS_LABELS = ("現住所", "住所", "自宅", "居所", "実家", "所在地", "宛先", "住まい")
_TOWNISH = re.compile(rf"(?:{_PREF}|[市区町村郡丁])")

_ERA = r"(?:明治|大正|昭和|平成|令和|[MTSHR])"
_DATE_WESTERN = r"(?:19|20)\d{2}\s*(?:年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[/.-]\d{1,2}[/.-]\d{1,2})"
_MD = r"(?:年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[/.-]\d{1,2}[/.-]\d{1,2})"
_DATE_ERA = rf"{_ERA}\s*(?:\d{{1,2}}|元)\s*{_MD}"
_YEAR_ONLY = rf"(?:{_ERA}\s*(?:\d{{1,2}}|元)\s*年?|(?:19|20)\d{{2}}\s*年)"
_DOB_RE = re.compile(
    rf"(?:生年月日|誕生日|生まれ|DOB)\s*(?:は|:)?\s*(?P<a>{_DATE_ERA}|{_DATE_WESTERN})"
    rf"|(?P<b>{_DATE_ERA}|{_DATE_WESTERN}|{_YEAR_ONLY})(?=\s*(?:生まれ|産まれ|生|誕生))"
    rf"|(?P<c>(?:明治|大正|昭和|[MTS])\s*\d{{1,2}}\s*(?:年\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日|[/.]\d{{1,2}}[/.]\d{{1,2}}))"
    rf"|(?P<d>[HR]\d{{1,2}}\.\d{{1,2}}\.\d{{1,2}})(?!\d)",
    re.IGNORECASE,
)

_TICKET_RE = re.compile(r"(?:#|No\.?\s?|受付番号\s*:?\s*)?(?<!\d)(?:19|20)\d{2}-\d{6}(?!\d)")
_BOOKING_RE = re.compile(
    r"(?<![A-Za-z0-9])B-[A-Z0-9]{6,10}(?![A-Za-z0-9])"
    r"|予約番号\s*(?:は|:)?\s*(?P<v>[A-Za-z0-9][A-Za-z0-9-]{3,15})"
)
_LINE_RE = re.compile(
    r"(?<![A-Za-z0-9])U[0-9a-f]{32}(?![A-Za-z0-9])"
    r"|(?:LINE|ライン)\s*(?:ID|アカウント)\s*(?:は|:)?\s*(?P<v>@?[A-Za-z0-9._-]{3,30})",
    re.IGNORECASE,
)

# LINE ids written in a message: 「LINEのIDは hanako_0123」「ラインID：taro」.
_LINE_TEXT_RE = re.compile(
    r"(?:LINE|ライン)\s*の?\s*(?:ID|アイディー?|アカウント名?|アカ|ユーザー名)"
    # 「LINEのIDを聞かれ、taro.k_88と教えた」: the id may come a few words later.
    r"[^A-Za-z0-9。\n]{0,10}?(?P<v>@?[A-Za-z0-9][A-Za-z0-9._-]{2,29})(?![A-Za-z0-9._-])",
    re.IGNORECASE,
)
# Other services' account ids given in text (SNS, flea markets, mail and payment apps), and a
# bare 「IDは xxx」「アカウントは @xxx」.
_SERVICES = (
    r"インスタ(?:グラム)?|Instagram|X|Twitter|ツイッター|Facebook|フェイスブック|TikTok|"
    r"ティックトック|メルカリ|ラクマ|カカオ(?:トーク)?|Kakao(?:Talk)?|WeChat|Skype|Discord|"
    r"Gmail|Yahoo!?|楽天|Amazon|アマゾン|PayPay|ペイペイ|Zoom|Teams|ゲーム"
)
_ACCOUNT_RE = re.compile(
    rf"(?:(?:{_SERVICES})\s*の?\s*(?:ID|アイディー?|アカウント名?|アカ|ユーザー(?:名|ID)?|"
    r"ハンドル(?:ネーム)?)|(?<![A-Za-z])(?:ユーザー|ログイン)?ID|ユーザー名|アカウント名?)"
    r"\s*(?:は|を|が|:)?\s*(?P<v>@?[A-Za-z0-9][A-Za-z0-9._-]{2,29})(?![A-Za-z0-9._-])",
    re.IGNORECASE,
)
# Bank accounts: the number with the words around it that make it one (支店, 普通/当座, 口座番号).
_ACCOUNT_TYPE = r"(?:普通|当座|貯蓄|総合)(?:預金)?"
_BANK_RE = re.compile(
    rf"(?P<ctx>(?:[{_PLACE_CHARS}A-Za-z]{{1,12}}支店\s*)?(?:{_ACCOUNT_TYPE}\s*)?"
    rf"(?:口座(?:番号)?\s*(?:は|:)?\s*)?(?:{_ACCOUNT_TYPE}\s*)?(?:No\.?\s*)?)"
    r"(?P<v>\d{6,8}|\d{5}\s*-\s*\d{6,8})(?![\d,.]|\s?(?:円|万|人|件|年|歳))"
    r"|記号\s*(?:は|:)?\s*\d{5}\s*番号\s*(?:は|:)?\s*\d{6,8}(?!\d)"
)
_BANK_WORDS = re.compile(rf"口座|支店|{_ACCOUNT_TYPE}")
# Card numbers: 13 to 19 digits in the groups cards print, with the word before them.
_CARD_RE = re.compile(
    r"(?P<ctx>(?:クレジット|キャッシュ|デビット|プリペイド)?(?:カード|クレカ)\s*の?\s*番号\s*(?:は|:)?\s*)?"
    r"(?<![\d-])(?P<v>\d{4}(?:[\s-]?\d{4}){2}[\s-]?\d{1,7}|\d{4}[\s-]?\d{6}[\s-]?\d{4,5})(?![\d-])"
)

_HONORIFIC = r"(?:様|さま|さん|氏|くん|君|ちゃん|殿)"
# A name in kana: two parts with a space (やまもと たろう), or one part of a label's reading.
_KANA_PART = r"(?:[ぁ-ゖ]{1,7}|[ァ-ヺー]{1,9})"
_KANA_NAME = r"(?:[ぁ-ゖ]{2,7}[ \u3000・][ぁ-ゖ]{1,7}|[ァ-ヺー]{2,9}[ \u3000・][ァ-ヺー]{1,9})"
_PARTICLES = set("はがをにともへでの")
_KANA_HONORIFIC_RE = re.compile(
    rf"(?<![ぁ-ゖァ-ヺー])(?P<v>{_KANA_NAME})\s?(?:様|さま|さん|氏|くん|ちゃん|殿)"
)
# A reading right after a name: 山本 太郎（やまもと たろう）.
_READING_AFTER_RE = re.compile(
    rf"\s?[(（]\s*(?P<v>{_KANA_PART}(?:[ \u3000・]{_KANA_PART})?)\s*[)）]"
)
_READING_LABEL_RE = re.compile(
    r"(?:ふりがな|フリガナ|よみがな|ヨミガナ|カナ氏名|氏名カナ|お名前カナ|読み方?)\s*[:：]?\s*"
    rf"(?P<v>{_KANA_PART}(?:[ \u3000・]{_KANA_PART})?)"
)
# Public offices and facilities: their names, wings, floors and rooms are not anyone's address.
_FACILITY = (
    r"(?:市役所|区役所|町役場|村役場|役所|役場|支所|出張所|公民館|市民会館|福祉会館|文化会館|"
    r"コミュニティセンター|市民センター|保健センター|福祉センター|交流センター|図書館|体育館|"
    r"保健所|合同庁舎|本庁舎|庁舎|市民病院|消防署|警察署)"
)
_PUBLIC_PLACE_RE = re.compile(
    rf"[{_PLACE_CHARS}]{{0,12}}?{_FACILITY}"
    r"(?:\s*(?:第\s*)?\d{1,2}\s*(?:別館|分館|庁舎|号館)|\s*(?:本館|別館|新館|分館|東館|西館|南館|北館|"
    r"本庁舎|東庁舎|西庁舎|南庁舎|北庁舎))?"
    r"(?:\s*(?:地下\s*)?(?:\d{1,2}|[一二三四五六七八九])\s*[階F])?"
    r"(?:\s*(?:第\s*)?\d{1,4}\s*(?:会議室|相談室|号室|番窓口|研修室|ホール|室))?"
)
_NAME_LABEL_RE = re.compile(
    r"(?:相談者|申請者|申出人|申立人|依頼者|担当者?|対応者|受付者|記入者|氏名|お名前|名前|"
    r"本人|世帯主|契約者|被保険者|保護者|代理人|連絡者|届出人)\s*(?:名)?\s*[:]\s*"
    r"(?P<v>[^\s、。,:()「」\d]{1,8}(?:[ \u3000][^\s、。,:()「」\d]{1,8})?)"
)
_HONORIFIC_TAIL = re.compile(rf"{_HONORIFIC}.*$")


# ---------------------------------------------------------------------------------------------
# Sudachi: the dictionary shared with the search (faq.analysis), a tokenizer per thread


def _sudachi():
    """A mode C tokenizer: the mode that tags whole 人名."""
    return tokenizer("C")


# ---------------------------------------------------------------------------------------------
# Finders: each yields (kind, start, end) in normalised coordinates


def _find_emails(t: str):
    for m in _EMAIL_RE.finditer(t):
        end = m.end()
        while end > m.start() and t[end - 1] in ".-":
            end -= 1
        yield "email", m.start(), end


def _find_urls(t: str):
    for m in _URL_RE.finditer(t):
        url = m.group().rstrip(".,;:!?')")
        rest = url.split("://", 1)[1]
        path = rest.split("/", 1)[1] if "/" in rest else ""
        if _LONG_TOKEN_RE.search(path.split("?")[0]) or "@" in rest.split("/")[0]:
            yield "url", m.start(), m.start() + len(url)
            continue
        params = re.findall(r"[?&#;]([^=&#;]*)=?([^&#;]*)", url)
        if any(_SECRET_KEY.search(k) or _TOKENISH.fullmatch(v) for k, v in params):
            yield "url", m.start(), m.start() + len(url)


def _phone_digits(s: str) -> str:
    digits = "".join(_PHONE_SPLIT_RE.findall(s))
    if s.lstrip().startswith("+"):
        digits = "0" + digits[2:].lstrip("0")
    return digits


def _valid_phone(d: str) -> bool:
    if not d.startswith("0") or d.startswith("00"):
        return False
    if len(d) == 11:
        return d[:3] in {"070", "080", "090", "050", "020", "060"} or d.startswith("0800")
    return len(d) == 10


# A number right after an ID label (受給者証番号0123456789) is an ID even if it looks like a phone.
_ID_LABEL_BEFORE = re.compile(
    r"(?:被保険者|保険者|保険証|受給者証?|患者|会員|契約|お客様|口座|免許証|年金|記号|証)番号\s*(?:は|:)?\s*$"
)


def _find_phones(t: str, public: set[str], protected: list[tuple[int, int]]):
    """Phone numbers by their digit count and prefix, whatever the separators.

    A run of digit groups may hold more than one number (a time, a second number on the next
    line): trailing groups are dropped until the digits make a phone number, and the search
    goes on right after what was taken (or after the run's first group when nothing was).
    """
    pos = 0
    while (m := _PHONE_RE.search(t, pos)) is not None:
        s, e = m.start(), m.end()
        groups = list(_PHONE_SPLIT_RE.finditer(t, s, e))
        pos = groups[0].end() if groups else e
        if _ID_LABEL_BEFORE.search(t[max(0, s - 12) : s]):
            pos = e
            continue
        while e > s:
            cand = t[s:e]
            d = _phone_digits(cand)
            if _valid_phone(d):
                pos = e
                if d in public:
                    protected.append((s, e))
                else:
                    start = s + 1 if t[s] == "(" and ")" not in cand else s
                    yield "phone", start, e
                break
            in_cand = list(_PHONE_SPLIT_RE.finditer(cand))
            if len(in_cand) <= 1:
                break
            e = s + in_cand[-2].end()
            if t[s:e].count("(") > t[s:e].count(")") and e < len(t) and t[e] == ")":
                e += 1


def _mynumber_ok(digits: str) -> bool:
    """Check digit of the 個人番号 (weights 6,5,4,3,2,7,6,5,4,3,2 from the left)."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = [int(c) for c in digits[:11]]
    weights = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    remainder = sum(w * p for w, p in zip(weights, body, strict=True)) % 11
    check = 0 if remainder <= 1 else 11 - remainder
    return check == int(digits[11])


def _find_numbers(t: str):
    for m in _MYNUMBER_RE.finditer(t):
        digits = re.sub(r"\D", "", m.group())
        yield ("my_number" if _mynumber_ok(digits) else "id_number"), m.start(), m.end()
    for m in _LONG_DIGITS_RE.finditer(t):
        yield "id_number", m.start(), m.end()
    for m in _ID_LABEL_RE.finditer(t):
        v = m.group("v").rstrip()
        if sum(c.isdigit() for c in v) >= 4:
            digits = re.sub(r"\D", "", v)
            kind = "my_number" if _mynumber_ok(digits) else "id_number"
            yield kind, m.start("v"), m.start("v") + len(v)


def _find_postal(t: str):
    for m in _POSTAL_MARK_RE.finditer(t):
        yield "postal_code", m.start(), m.end()
    for m in _POSTAL_CTX_RE.finditer(t):
        g = "v" if m.group("v") else "w"
        yield "postal_code", m.start(g), m.end(g)


def _strip_address_head(t: str, start: int, end: int) -> int:
    """Move the start past a label word or a particle caught by the place characters."""
    for label in _ADDRESS_LABELS:
        if t.startswith(label, start) and start + len(label) < end:
            start += len(label)
            break
    while start < end and t[start] == "の":
        start += 1
    return start


def _find_addresses(t: str):
    for m in _LOT_RE.finditer(t):
        start = _strip_address_head(t, m.start(), m.end())
        if re.search(r"[市郡]", t[start : m.end()]):
            yield "address", start, m.end()
    for m in _ADDRESS_RE.finditer(t):
        start = m.start()
        text = m.group()
        start = _strip_address_head(t, start, m.start("block"))
        head = t[start : m.start("block")]
        block = m.group("block")
        if not head:
            continue
        if not re.search(r"丁目|番地|番|号", block) and not _TOWNISH.search(head):
            continue  # "会議室2-3": a plain hyphenated number after a word is not an address
        end = m.end()
        if text.endswith(" "):
            end -= 1
        if m.group("bldg") is None:
            end = m.end("block")
        yield "address", start, end


def _find_dates_of_birth(t: str):
    for m in _DOB_RE.finditer(t):
        for g in ("a", "b", "c", "d"):
            if m.group(g):
                yield "birth_date", m.start(g), m.end(g)
                break


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _find_money(t: str):
    """Bank accounts and card numbers, with the words that say what they are in the span."""
    for m in _BANK_RE.finditer(t):
        if m.group("v") is None or _BANK_WORDS.search(m.group("ctx") or ""):
            yield "bank_account", m.start(), m.end()
    for m in _CARD_RE.finditer(t):
        digits = re.sub(r"\D", "", m.group("v"))
        if not 13 <= len(digits) <= 19:
            continue
        if m.group("ctx") or _luhn_ok(digits):
            yield "card_number", m.start(), m.end()


def _find_accounts(t: str):
    for m in _LINE_TEXT_RE.finditer(t):
        yield "line_id", m.start("v"), m.end("v")
    for m in _ACCOUNT_RE.finditer(t):
        value = m.group("v")
        if re.search(r"[A-Za-z]", value) and not re.fullmatch(r"(?i)LINE|ID", value):
            yield "account_id", m.start("v"), m.end("v")


def public_places(t: str) -> list[tuple[int, int]]:
    """Public offices and facilities with their wing, floor and room (今治市役所第1別館1階)."""
    return [(m.start(), m.end()) for m in _PUBLIC_PLACE_RE.finditer(t)]


def _find_kana_names(t: str, found: list[tuple[str, int, int]]):
    """Names in kana: spaced before an honorific, after a reading label, and the reading in
    brackets right after a name already found (山本 太郎（やまもと たろう）)."""
    names = [(s, e) for kind, s, e in found if kind == "name"]
    for m in _KANA_HONORIFIC_RE.finditer(t):
        start, end = m.start("v"), m.end("v")
        value = t[start:end]
        # 相談者はやまもと たろうさん: a particle after a word is not the name's first kana.
        first = re.split(r"[ \u3000・]", value)[0]
        after_word = start and re.match(r"[一-龥々ァ-ヺ]", t[start - 1])
        if after_word and first[0] in _PARTICLES and len(first) >= 3:
            start += 1
            value = value[1:]
        if value.startswith(("お", "ご", "みな")) or value in _NOT_NAMES:
            continue
        if any(s < end and start < e for s, e in names):
            continue  # already found (a known name, Sudachi)
        yield "name", start, end
    for m in _READING_LABEL_RE.finditer(t):
        yield "name", m.start("v"), m.end("v")
    for kind, _start, end in list(found):
        if kind != "name":
            continue
        m = _READING_AFTER_RE.match(t, end)
        if m:
            yield "name", m.start("v"), m.end("v")


def _find_refs(t: str):
    for m in _TICKET_RE.finditer(t):
        yield "ticket_ref", m.start(), m.end()
    for m in _BOOKING_RE.finditer(t):
        if m.group("v"):
            yield "booking_ref", m.start("v"), m.end("v")
        else:
            yield "booking_ref", m.start(), m.end()
    for m in _LINE_RE.finditer(t):
        if m.group("v"):
            yield "line_id", m.start("v"), m.end("v")
        else:
            yield "line_id", m.start(), m.end()


# --- names -----------------------------------------------------------------------------------


def _kana_class(ch: str) -> str:
    """A character class matching a kana in both scripts (やまだ finds ヤマダ and やまだ)."""
    if "ぁ" <= ch <= "ゖ":
        return f"[{ch}{chr(ord(ch) + 0x60)}]"
    if "ァ" <= ch <= "ヶ":
        return f"[{chr(ord(ch) - 0x60)}{ch}]" if ch <= "ヶ" and ord(ch) - 0x60 >= 0x3041 else ch
    return re.escape(ch)


def _part_pattern(part: str) -> str:
    return r"[ \u3000・]?".join(_kana_class(c) for c in part)


def _to_hiragana(s: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def _split_name(name: str) -> list[str]:
    """Surname and given name: on a space when typed, else on Sudachi's 姓/名 tags."""
    parts = [p for p in re.split(r"[\s・]+", name) if p]
    if len(parts) > 1:
        return parts
    tokens = list(_sudachi().tokenize(name))
    if len(tokens) >= 2 and any(tok.part_of_speech()[3] == "名" for tok in tokens[1:]):
        for i, tok in enumerate(tokens[1:], start=1):
            if tok.part_of_speech()[3] == "名":
                head = "".join(x.surface() for x in tokens[:i])
                return [head, "".join(x.surface() for x in tokens[i:])]
    return parts


def _reading(part: str) -> str | None:
    """Sudachi's reading of a kanji name part, in hiragana (for 山田 also やまだ/ヤマダ)."""
    if not re.search(r"[一-龥々]", part):
        return None
    reading = "".join(tok.reading_form() for tok in _sudachi().tokenize(part))
    return _to_hiragana(reading) if reading and re.fullmatch(r"[ァ-ヶー]+", reading) else None


@functools.lru_cache(maxsize=256)
def _known_name_patterns(names: tuple[str, ...]) -> list[re.Pattern]:
    """Every known name as a full name (any spacing), and its parts alone.

    A part of two characters or more is matched anywhere; a one-character part (林, 進) only
    with an honorific, since it is too often an ordinary word.
    """
    alternatives_full: set[str] = set()
    alternatives_part: set[str] = set()
    alternatives_short: set[str] = set()
    for raw in names:
        name = unicodedata.normalize("NFKC", raw or "").strip()
        if not name:
            continue
        parts = _split_name(name)
        variants = [parts]
        readings = [_reading(p) for p in parts]
        if all(readings) and len(parts) > 1:
            variants.append([r for r in readings if r])
        for r in readings:
            if r and len(r) >= 2:
                alternatives_part.add(_part_pattern(r))
        for v in variants:
            alternatives_full.add(r"[ \u3000・]*".join(_part_pattern(p) for p in v))
        for p in parts:
            (alternatives_part if len(p) >= 2 else alternatives_short).add(_part_pattern(p))
    patterns = []
    for alts, suffix in (
        (alternatives_full, ""),
        (alternatives_part, ""),
        (alternatives_short, rf"(?=\s?{_HONORIFIC})"),
    ):
        if alts:
            ordered = sorted(alts, key=len, reverse=True)
            patterns.append(re.compile("(?:" + "|".join(ordered) + ")" + suffix, re.IGNORECASE))
    return patterns


def _find_known_names(t: str, names: Iterable[str]):
    for pattern in _known_name_patterns(tuple(sorted(set(names)))):
        for m in pattern.finditer(t):
            yield "name", m.start(), m.end()


# Words that come before さん/様 but are not names (お母さん, 皆様, 業者さん…).
_NOT_NAMES = {
    "皆",
    "みな",
    "皆さん",
    "お客",
    "客",
    "お母",
    "お父",
    "母",
    "父",
    "奥",
    "息子",
    "娘",
    "お子",
    "子",
    "大家",
    "業者",
    "担当",
    "担当者",
    "相談者",
    "利用者",
    "市民",
    "住民",
    "職員",
    "方",
    "皆様",
    "お客様",
    "ご本人",
    "本人",
    "家族",
    "ご家族",
    "お医者",
    "医者",
    "看護師",
    "ヘルパー",
    "ケアマネ",
    "先生",
    "申請者",
    "世帯主",
    "おじい",
    "おばあ",
    "お姉",
    "お兄",
    "お嬢",
    "奥様",
    "ご主人",
    "主人",
    "旦那",
    "孫",
    "管理人",
    "店員",
    "お隣",
    "隣",
    "近所",
    "弁護士",
    "司法書士",
    "民生委員",
}
_NAME_STOP = re.compile(r"^(?:.*[課係室局部所会屋店院校園]|[\d]+)$")


# Words after which a lone surname or given name is a person (夫の大西, 長男（健太）).
_RELATIONS = {
    "夫", "妻", "元夫", "元妻", "長男", "長女", "次男", "次女", "三男", "三女", "息子", "娘",
    "父", "母", "祖父", "祖母", "兄", "姉", "弟", "妹", "孫", "隣人", "大家", "家主", "知人",
    "友人", "上司", "同僚", "交際相手", "内縁", "相談者", "申請者", "担当", "担当者", "管理人",
    "後見人", "保護者", "本人", "子", "子ども", "義母", "義父", "叔父", "叔母", "伯父", "伯母",
}  # fmt: skip
# Titles after which a surname is a person (前田課長).
_TITLES = re.compile(
    r"(?:課長|部長|係長|主任|主査|室長|所長|局長|次長|先生|医師|弁護士|議員|社長|店長|委員|"
    r"補佐|専門員|相談員|支援員|指導員|保健師|看護師|ケアマネ)"
)
_LINKS = {"の", "（", "(", ":", "：", "は", " ", "\u3000", "、"}


def _pos(tok) -> tuple[str, ...]:
    return tok.part_of_speech()


def _is_person(tok) -> bool:
    return _pos(tok)[2] == "人名"


def _find_sudachi_names(t: str):
    """Names from Sudachi's 人名 tags, with the context that makes them names.

    A full name (姓 then 名) always counts; a lone surname or given name only next to an
    honorific (〜さん), a relation (夫の〜), or a title (〜課長) — a lone surname is too often a
    place (山田支所). A surname that is also a place (香川, 高松) is joined to the given name that
    follows it; a kana given name after a surname (川田 さくらちゃん) to the surname before it.
    An unknown word or a non-place proper noun before an honorific counts too (foreign names).
    """
    tokens = list(_sudachi().tokenize(t))
    n = len(tokens)

    def honorific_at(k: int) -> bool:
        return k < n and re.fullmatch(_HONORIFIC, tokens[k].surface()) is not None

    i = 0
    while i < n:
        tok = tokens[i]
        pos = _pos(tok)
        if _is_person(tok):
            j = i + 1
            while j < n and (
                _is_person(tokens[j])
                or (_pos(tokens[j])[0] == "空白" and j + 1 < n and _is_person(tokens[j + 1]))
            ):
                j += 1
            start = i
            # 香川 太一さん: the place-like token before a given name is its surname.
            if pos[3] == "名":
                k = i - 1
                if k >= 0 and _pos(tokens[k])[0] == "空白":
                    k -= 1
                if (
                    k >= 0
                    and _pos(tokens[k])[1] == "固有名詞"
                    and _pos(tokens[k])[2] in {"地名", "一般"}
                    and re.fullmatch(r"[一-龥々]{1,3}", tokens[k].surface())
                ):
                    start = k
            # 川田 さくらちゃん: a short word between a surname and an honorific is the given name.
            if _pos(tokens[j - 1])[3] == "姓":
                k = j
                if k < n and _pos(tokens[k])[0] == "空白":
                    k += 1
                if (
                    k + 1 < n
                    and _pos(tokens[k])[0] == "名詞"
                    and len(tokens[k].surface()) <= 4
                    and honorific_at(k + 1)
                ):
                    j = k + 1
            kinds = {_pos(x)[3] for x in tokens[start:j] if _is_person(x)}
            kinds |= {"姓"} if start < i else set()
            prev = start - 1
            while prev >= 0 and tokens[prev].surface() in _LINKS:
                prev -= 1
            related = prev >= 0 and tokens[prev].surface() in _RELATIONS
            titled = j < n and _TITLES.fullmatch(tokens[j].surface()) is not None
            full = "姓" in kinds and "名" in kinds
            if full or honorific_at(j) or related or titled:
                yield "name", tokens[start].begin(), tokens[j - 1].end()
            i = j
            continue
        # An unknown word or a proper noun directly before an honorific: a name Sudachi missed.
        if (
            honorific_at(i + 1)
            and tok.surface() not in _NOT_NAMES
            and not _NAME_STOP.match(tok.surface())
            and (tok.is_oov() or (pos[1] == "固有名詞" and pos[2] not in {"地名", "組織"}))
            and len(tok.surface()) >= 2
        ):
            yield "name", tok.begin(), tok.end()
        i += 1


def _find_labelled_names(t: str):
    for m in _NAME_LABEL_RE.finditer(t):
        v = _HONORIFIC_TAIL.sub("", m.group("v"))
        v = re.sub(r"(?:です|でした|から|より|が|は|に|を|と|の)$", "", v).rstrip()
        if v and v not in _NOT_NAMES:
            yield "name", m.start("v"), m.start("v") + len(v)


# ---------------------------------------------------------------------------------------------


def _occurrences(t: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    out = []
    for term in terms:
        term_n = _normalize(term or "").text.strip()
        if not term_n:
            continue
        for m in re.finditer(re.escape(term_n), t):
            out.append((m.start(), m.end()))
    return out


def _outside_public_places(t: str, found: list[tuple[str, int, int]]):
    """Addresses, numbers and names inside a public office's name, wing, floor or room are
    dropped; an address that runs into one stops where it begins."""
    places = public_places(t)
    if not places:
        return found
    kept = []
    for kind, s, e in found:
        if kind in ("address", "id_number", "name", "postal_code"):
            if any(ps <= s and e <= pe for ps, pe in places):
                continue
            if kind == "address":
                for ps, pe in places:
                    if s < ps < e:
                        e = ps
                    elif ps <= s < pe:
                        s = pe
                if not re.search(r"\d|[一二三四五六七八九十]", t[s:e]):
                    continue
        kept.append((kind, s, e))
    return kept


def redact(
    text: str,
    *,
    known_names: Iterable[str] = (),
    public_phones: Iterable[str] = (),
    public_terms: Iterable[str] = (),
) -> Redaction:
    """Find personal data in ``text`` and replace each finding with its label.

    ``known_names``: the case's citizen and staff names (any script); found for certain.
    ``public_phones``: numbers that may stay (the centre's and departments' desks).
    ``public_terms``: words or addresses that may stay (a public office's address, a place
    name that is also a surname); a finding lying inside one of them is dropped.
    """
    if not text:
        return Redaction(text or "", [])
    norm = _normalize(text)
    t = norm.text
    public = {_phone_digits(_normalize(p).text) for p in public_phones if p}
    protected = _occurrences(t, public_terms)
    # The redactor's own labels (［氏名］…) in a text it already redacted are never findings:
    # redacting twice changes nothing, so a reviewer's re-save or the approval's check is clean.
    placed = _occurrences(t, LABELS.values())
    found: list[tuple[str, int, int]] = []
    found += _find_urls(t)
    found += _find_emails(t)
    found += _find_phones(t, public, protected)
    found += _find_numbers(t)
    found += _find_postal(t)
    found += _find_addresses(t)
    found += _find_dates_of_birth(t)
    found += _find_refs(t)
    found += _find_money(t)
    found += _find_accounts(t)
    found += _find_known_names(t, known_names)
    found += _find_labelled_names(t)
    if re.search(r"[一-龥ぁ-んァ-ヶ]", t):
        found += _find_sudachi_names(t)
    found += _find_kana_names(t, found)
    found = _outside_public_places(t, found)

    chosen: list[tuple[str, int, int]] = []
    for kind, s, e in sorted(found, key=lambda f: (_PRIORITY[f[0]], f[1] - f[2], f[1])):
        while s < e and t[s].isspace():
            s += 1
        while e > s and t[e - 1].isspace():
            e -= 1
        if s >= e:
            continue
        if any(ps <= s and e <= pe for ps, pe in protected):
            continue
        for ps, pe in placed:  # cut a label off the finding's ends; one inside it is dropped
            if ps <= s < pe:
                s = pe
            if ps < e <= pe:
                e = ps
        if s >= e or any(s < pe and ps < e for ps, pe in placed):
            continue
        if any(s < ce and cs < e for _, cs, ce in chosen):
            continue
        chosen.append((kind, s, e))
    chosen.sort(key=lambda f: f[1])

    spans: list[Span] = []
    pieces: list[str] = []
    last = 0
    for kind, s, e in chosen:
        os_, oe = norm.original_range(s, e)
        if os_ < last:
            continue
        label = LABELS[kind]
        spans.append(Span(kind, label, os_, oe, text[os_:oe]))
        pieces.append(text[last:os_])
        pieces.append(label)
        last = oe
    pieces.append(text[last:])
    return Redaction("".join(pieces), spans)
