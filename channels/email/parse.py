"""Reading the mail Japanese citizens send: every charset, every shape, never an exception.

The stdlib `email` package does the MIME structure (compat32 policy, which keeps raw header
values); everything that turns bytes into text goes through `decode_bytes`, which knows the
Japanese traps: Shift_JIS that is really cp932, ISO-2022-JP with NEC/IBM extensions, parts
labelled ISO-2022-JP that carry UTF-8, raw 8-bit headers, and unknown labels.

`parse()` returns a `ParsedMail`: decoded headers, the text to show (plain preferred; HTML turned
into text), the quoted history split off, attachments with decoded names, and warnings for what
could not be read. The raw bytes are never changed: they are kept elsewhere before this runs.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from html.parser import HTMLParser
from typing import ClassVar

from consult.services.jis import decode_iso2022jp
from consult.services.normalize import strip_controls

_SJIS = {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j",
         "cp932", "ms932", "x-ms-cp932", "shift_jisx0213", "shift_jis_2004"}  # fmt: skip
_JIS = {"iso-2022-jp", "iso2022jp", "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3",
        "iso-2022-jp-ms", "cp50220", "cp50221", "cp50222", "csiso2022jp", "jis"}  # fmt: skip
_EUC = {"euc-jp", "eucjp", "x-euc-jp", "euc_jp", "cseucpkdfmtjapanese", "eucjp-ms", "cp51932",
        "euc-jis-2004", "euc-jisx0213"}  # fmt: skip
_ALIASES = {"utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "us-ascii": "ascii", "ascii": "ascii"}

_FIELD_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")


class Decoded(str):
    """A str that remembers whether decoding needed a guess or replacement characters."""

    lossy: bool = False


def _sniff(data: bytes) -> str | None:
    """Guess a Japanese charset from the bytes themselves."""
    if b"\x1b$" in data or b"\x1b(" in data:
        return "iso-2022-jp"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    for candidate in ("cp932", "euc_jp"):
        try:
            data.decode(candidate)
            return candidate
        except UnicodeDecodeError:
            continue
    return None


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Text from bytes under a (possibly wrong) label; returns (text, guessed_or_lossy)."""
    label = (charset or "").strip().strip('"').lower()
    label = _ALIASES.get(label, label)
    if not label or label == "ascii":
        if all(b < 0x80 for b in data) and b"\x1b" not in data:
            return data.decode("ascii"), False
        label = _sniff(data) or "utf-8"
    if label in _JIS:
        if any(b >= 0x80 for b in data):
            # Labelled ISO-2022-JP but 8-bit: carriers relabel UTF-8 or Shift_JIS this way.
            guess = _sniff(data)
            if guess and guess != "iso-2022-jp":
                return decode_bytes(data, guess)[0], True
        text = decode_iso2022jp(data)
        return text, "\ufffd" in text
    if label in _SJIS:
        try:
            return data.decode("cp932"), False
        except UnicodeDecodeError:
            return data.decode("cp932", errors="replace"), True
    if label in _EUC:
        for codec in ("euc_jp", "euc_jis_2004"):
            try:
                return data.decode(codec), False
            except UnicodeDecodeError:
                continue
        return data.decode("euc_jis_2004", errors="replace"), True
    try:
        return data.decode(label), False
    except LookupError:
        guess = _sniff(data)
        if guess:
            return decode_bytes(data, guess)[0], True
        return data.decode("utf-8", errors="replace"), True
    except UnicodeDecodeError:
        guess = _sniff(data)
        if guess and guess != label:
            return decode_bytes(data, guess)[0], True
        return data.decode(label, errors="replace"), True


def _raw_header_bytes(value: str) -> bytes:
    # compat32 keeps undecodable 8-bit header bytes as surrogate escapes.
    return value.encode("utf-8", errors="surrogateescape")


def decode_header_value(value: str | None) -> str:
    """An unfolded, decoded header value: encoded words (split, mislabelled) and raw 8-bit."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        # compat32 wraps raw 8-bit header bytes in a Header of charset unknown-8bit.
        return "".join(
            decode_bytes(chunk, None if cs in (None, "unknown-8bit") else cs)[0]
            if isinstance(chunk, bytes)
            else chunk
            for chunk, cs in email.header.decode_header(value)
        ).strip()
    value = re.sub(r"\r?\n[ \t]+", " ", value)
    raw = _raw_header_bytes(value)
    if any(b >= 0x80 for b in raw):
        text, _ = decode_bytes(raw, None)
        value = text
    try:
        chunks = email.header.decode_header(value)
    except (ValueError, email.errors.HeaderParseError):
        return value.strip()
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
            continue
        parts.append(decode_bytes(chunk, charset)[0])
    # Adjacent encoded words are joined without the whitespace between them (RFC 2047 §6.2);
    # decode_header already does that, and keeps text between them.
    return "".join(parts).strip()


class _TextExtractor(HTMLParser):
    """HTML to plain text: tags dropped, script/style skipped, block ends become new lines."""

    BLOCK: ClassVar[set[str]] = set(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "blockquote",
            "pre",
            "hr",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    text = "".join(parser.out)
    text = "\n".join(re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines())
    return text


_ZERO_WIDTH = re.compile(r"[\u200b\ufeff]")


def normalise_text(text: str) -> str:
    """For display only: one kind of line end, no control characters, no runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_controls(_ZERO_WIDTH.sub("", text))  # the kernel's one definition
    text = unicodedata.normalize("NFC", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


_QUOTE_HEAD = re.compile(
    r"^(On .+wrote:|.+(さんは|様は|が)書きました[:：]?|.+ wrote:|"
    r"-{2,}\s*(Original Message|元のメッセージ|Forwarded message|転送メッセージ)\s*-{2,}|"
    r"_{10,}|差出人[:：].*|From: .+|\d{4}[/年-]\d{1,2}[/月-]\d{1,2}.{0,30}[:：]\s*$)",
)


def split_quoted(text: str) -> tuple[str, str]:
    """(new text, quoted history): the history starts at a quote header or a run of '>' lines."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _QUOTE_HEAD.match(stripped) and index > 0:
            rest = lines[index + 1 :]
            if not rest or any(r.startswith(">") for r in rest) or not stripped.startswith("From"):
                return "\n".join(lines[:index]).rstrip(), "\n".join(lines[index:]).strip()
        if stripped.startswith(">"):
            tail = lines[index:]
            if sum(1 for t in tail if t.startswith(">") or not t.strip()) >= len(tail) - 2:
                return "\n".join(lines[:index]).rstrip(), "\n".join(tail).strip()
    return text, ""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None
    # Converted on the relay (MADOGUCHI_SANITISE_IN=relay): the number of its converted form,
    # which came beside the mail; its bytes stayed in the internet zone (`strip_attachments`).
    relay_file: int | None = None


# The mark the relay leaves on an attachment part whose bytes it took out. Honoured on the core
# only for a mail that came with the relay's converted files (a sender's own header is removed).
RELAY_FILE_HEADER = "X-Madoguchi-Relay-File"


@dataclass
class ParsedMail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_name: str
    from_address: str | None
    to: str
    subject: str
    date: str | None
    text: str
    quoted: str
    attachments: list[Attachment] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"
    report_parts: list[Message] = field(default_factory=list)
    message: Message | None = None


def repair_header_block(raw: bytes) -> tuple[bytes, bool]:
    """Drop header lines that are neither a valid field nor a continuation.

    A line such as ``X-Script/function/<TAB> !"#: TEST`` (illegal field name) makes the stdlib
    treat everything after it as the body, losing the real body. Nothing else is touched.
    """
    match = re.search(rb"\r?\n\r?\n", raw)
    if not match:
        return raw, False
    head, rest = raw[: match.start()], raw[match.start() :]
    lines = re.split(rb"(?<=\n)", head)
    kept = []
    dropped = False
    for line in lines:
        if not line:
            continue
        if line[:1] in (b" ", b"\t") or _FIELD_NAME.match(line) or line.startswith(b"From "):
            kept.append(line)
        else:
            dropped = True
    if not dropped:
        return raw, False
    return b"".join(kept).rstrip(b"\r\n") + rest, True


def message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    return re.findall(r"<[^<>\s]+>", value)


def quick_message_id(raw: bytes) -> str | None:
    """The Message-ID from the header block only, for deduplication before full parsing."""
    match = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: match.start()] if match else raw[:65536]
    found = re.search(rb"(?im)^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]{1,250}>)", head)
    return found.group(1).decode("ascii", "replace") if found else None


def _unfolded_field(head: bytes, name: bytes) -> bytes | None:
    """The first value of a header field in a raw header block, with its folding undone."""
    found = re.search(rb"(?im)^" + name + rb":[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", head)
    if not found:
        return None
    return b" ".join(found.group(1).split())


def dedupe_key(raw: bytes) -> str:
    """The key under which a received mail is stored once: its Message-ID, its sender and a
    digest of what it says, or sha256 of the bytes when it has no Message-ID.

    The Message-ID alone is not enough: broken mailers and forwarding services reuse one for
    different mails, and the second would be dropped (issue 14). The raw bytes alone are not
    enough either: the same mail taken by IMAP and handed over by the MTA differs in its trace
    headers (Received, Return-Path, Delivered-To) and in its line ends. So the digest covers
    what the sender wrote: the Subject as sent and the body bytes with line ends normalised.
    """
    match = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: match.start()] if match else raw[:65536]
    message_id = quick_message_id(raw)
    if not message_id:
        return f"sha:{hashlib.sha256(raw).hexdigest()}"
    sender = _unfolded_field(head, b"from") or b""
    _name, address = email.utils.parseaddr(sender.decode("latin-1"))
    body = raw[match.end() :] if match else b""
    body = re.sub(rb"[ \t]*\r?\n", b"\n", body).rstrip(b"\n")
    digest = hashlib.sha256()
    for piece in (
        message_id.encode("ascii", "replace"),
        address.strip().lower().encode("latin-1"),
        _unfolded_field(head, b"subject") or b"",
        body,
    ):
        digest.update(hashlib.sha256(piece).digest())
    return f"msg:{digest.hexdigest()}"


def _param_text(part: Message, name: str, header: str) -> str | None:
    value = part.get_param(name, header=header)
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text)
        charset, _language, text = value
        return decode_bytes(text.encode("raw-unicode-escape"), charset or "utf-8")[0]
    return decode_header_value(email.utils.unquote(value))


def _filename(part: Message) -> str | None:
    name = _param_text(part, "filename", "content-disposition") or _param_text(
        part, "name", "content-type"
    )
    if name is None:
        return None
    return strip_controls(name, multiline=False) or None


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _walk(part: Message):
    """Like Message.walk, but a returned or forwarded message (message/*) stays one part."""
    yield part
    if part.is_multipart() and not part.get_content_type().startswith("message/"):
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from _walk(child)


_REPORT_TYPES = ("message/delivery-status", "text/rfc822-headers", "message/rfc822")


def _is_attachment(part: Message) -> bool:
    """Whether `parse` takes this (non-multipart, non-report) part as an attachment."""
    ctype = part.get_content_type()
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    is_text = ctype in ("text/plain", "text/html") and disposition != "attachment"
    return not (is_text and not _filename(part))


def strip_attachments(raw: bytes, *, max_parts: int = 200) -> tuple[bytes, list[Attachment]]:
    """The mail without the bytes of its attachments, and the attachments (the relay's side of
    MADOGUCHI_SANITISE_IN=relay). Each attachment part keeps its headers (name, type) with an
    empty body and RELAY_FILE_HEADER numbering it, so `parse` on the core finds the same
    attachments, in the same order, and each takes the converted form with that number."""
    repaired, _changed = repair_header_block(raw)
    message = email.message_from_bytes(repaired, policy=policy.compat32)
    found: list[Attachment] = []
    count = 0
    for part in _walk(message):
        del part[RELAY_FILE_HEADER]
        count += 1
        if count > max_parts:
            break
        if part.get_content_type() in _REPORT_TYPES or part.is_multipart():
            continue
        if not _is_attachment(part):
            continue
        found.append(
            Attachment(
                filename=_filename(part) or f"添付ファイル{len(found) + 1}",
                content_type=part.get_content_type(),
                data=_payload(part),
                relay_file=len(found),
            )
        )
        del part["Content-Transfer-Encoding"]
        part.set_payload("")
        part[RELAY_FILE_HEADER] = str(len(found) - 1)
    return message.as_bytes(), found


def parse(raw: bytes, *, max_parts: int = 200, max_attachment_bytes: int = 10 * 2**20):
    """Parse raw RFC 5322 bytes into a ParsedMail; problems become warnings, not exceptions."""
    warnings: list[str] = []
    repaired, changed = repair_header_block(raw)
    if changed:
        warnings.append("不正なヘッダー行を読み飛ばしました。")
    message = email.message_from_bytes(repaired, policy=policy.compat32)

    def header(name: str) -> str:
        return decode_header_value(message.get(name))

    from_value = header("From")
    name, address = email.utils.parseaddr(from_value)
    if not address and message.get("From"):
        name, address = email.utils.parseaddr(str(message.get("From")))
        name = decode_header_value(name)
    address = address.strip().lower() if address and "@" in address else None
    name = strip_controls(name, multiline=False)

    plain: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    omitted: list[str] = []
    report_parts: list[Message] = []
    count = 0
    for part in _walk(message):
        count += 1
        if count > max_parts:
            warnings.append(f"パートが多すぎるため、{max_parts}個目以降を読み飛ばしました。")
            break
        ctype = part.get_content_type()
        if ctype in _REPORT_TYPES:
            report_parts.append(part)
            continue
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part)
        if not _is_attachment(part):
            data = _payload(part)
            text, lossy = decode_bytes(data, part.get_content_charset())
            if "\ufffd" in text:
                warnings.append("文字コードを判別できない部分がありました（一部が読めません）。")
            elif lossy:
                warnings.append("文字コードの表示が正しくないため、推定して読み取りました。")
            (plain if ctype == "text/plain" else html_parts).append(text)
            continue
        data = _payload(part)
        name_ = filename or f"添付ファイル{len(attachments) + len(omitted) + 1}"
        relay_mark = (part.get(RELAY_FILE_HEADER) or "").strip()
        if relay_mark.isdigit() and not data:
            attachments.append(
                Attachment(name_, ctype, b"", disposition == "inline", None, int(relay_mark))
            )
            continue
        if len(data) > max_attachment_bytes:
            omitted.append(name_)
            warnings.append(f"添付ファイル「{name_}」は大きすぎるため保存しませんでした。")
            continue
        content_id = (part.get("Content-ID") or "").strip() or None
        attachments.append(
            Attachment(
                filename=name_,
                content_type=ctype,
                data=data,
                inline=disposition == "inline" or bool(content_id and ctype.startswith("image/")),
                content_id=content_id,
            )
        )
    if plain:
        body = "\n\n".join(plain)
    elif html_parts:
        body = html_to_text("\n".join(html_parts))
    else:
        body = ""
    body = normalise_text(body)
    text, quoted = split_quoted(body)
    if message.defects:
        warnings.append("MIME構造に問題がありました（読み取れた範囲で取り込みました）。")
    return ParsedMail(
        message_id=(message_ids(message.get("Message-ID")) or [None])[0],
        in_reply_to=message_ids(message.get("In-Reply-To")),
        references=message_ids(message.get("References")),
        from_name=name.strip(),
        from_address=address,
        to=header("To"),
        subject=normalise_text(header("Subject")).replace("\n", " "),
        date=message.get("Date"),
        text=text,
        quoted=quoted,
        attachments=attachments,
        omitted=omitted,
        warnings=list(dict.fromkeys(warnings)),
        headers={
            k.lower(): decode_header_value(v)
            for k, v in message.items()
            if k.lower()
            in (
                "auto-submitted",
                "precedence",
                "x-autoreply",
                "x-autorespond",
                "x-auto-response-suppress",
                "return-path",
                "list-id",
                "x-failed-recipients",
            )
        },
        content_type=message.get_content_type(),
        report_parts=report_parts,
        message=message,
    )
