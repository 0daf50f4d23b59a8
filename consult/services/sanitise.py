"""無害化: a citizen's file turned into something a staff browser can show without risk.

Everything a citizen sends (LINE images, videos and files, mail attachments, files attached to a
ticket) passes `convert()` before any staff page shows it; consult.services.safe_files keeps the
rows, the worker task and the pages. This module is plain: no database, no Flask, no request; it
takes a file and limits and writes the converted form into a folder, so that the relay (internet
zone) and the core (LGWAN zone) can both call it (MADOGUCHI_SANITISE_IN says which does).

What becomes of a file, decided by its content (magic bytes), never by its name or claimed type:
- Images (JPEG, PNG, GIF, WebP, BMP, TIFF) are decoded by Pillow in a child process and encoded
  anew from their pixels only (JPEG stays JPEG, the rest becomes PNG): EXIF with its 位置情報
  (GPS), XMP, comments and anything hidden after the image are gone. Only the first frame of an
  animation is kept. An image of more than SANITISE_MAX_PIXELS pixels (a decompression bomb) is
  quarantined before its pixels are decoded.
- PDF: pages rendered to PNG by poppler's `pdftoppm` (which runs no JavaScript, opens no link and
  embeds nothing), and its text taken by `pdftotext` for the search. Only the first
  SANITISE_MAX_PAGES pages are converted: a longer document is converted up to the limit and says
  so (「全500ページのうち最初の50ページ」); the rest stays in the original, which an administrator
  can release.
- Office documents (Word, Excel, PowerPoint, old and new formats, and OpenDocument) go to PDF by
  LibreOffice (`soffice --headless --convert-to pdf`, a throwaway profile per run, macros never
  run in a headless conversion), then as a PDF. A document that carries macros (vbaProject.bin,
  a .docm/.xlsm/.pptm, a _VBA_PROJECT stream, OpenDocument Basic/Scripts) is **quarantined, not
  converted**: nobody at a counter needs a citizen's macro, and the converter then never parses
  one.
- Anything else is quarantined with its reason: HTML and XML, ZIP and other archives (with the
  ZIP's expanded size checked first: a ZIP bomb is named as one), videos and audio (no safe
  converter here), HEIC photos, text and unknown content, and any file whose name's extension or
  claimed type disagrees with its content (写真.jpg that is really a PDF).

Every step runs as a child process bounded in time (SANITISE_TIMEOUT_SECONDS, the whole process
group killed), address space (SANITISE_MEMORY_MB, RLIMIT_AS in preexec_fn), CPU time and the
size of files it writes, with an empty environment and its own temporary folder; a file that
fails any step is quarantined with a Japanese reason, never retried into a loop. A hostile file
therefore costs the worker at most a few timeouts.

Personal data: the converted pages and the text are as personal as the original. They live under
DATA_DIR/safe/ (consult.services.safe_files), and disposal and the disclosure bundle must reach
them with the original.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_CHILD = Path(__file__).with_name("_sanitise_image.py")
# Claimed types that claim nothing (mail clients and LINE send them for anything).
GENERIC_TYPES = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/unknown",
    "application/x-download",
    "application/force-download",
}


@dataclass(frozen=True)
class Limits:
    """How far one conversion may go (consult.config.SanitiseSettings gives the city's)."""

    timeout_seconds: float = 60.0
    memory_mb: int = 1024
    max_pages: int = 50
    max_pixels: int = 50_000_000
    max_unpacked_mb: int = 100
    max_zip_ratio: int = 100
    page_width: int = 1400
    max_text_chars: int = 200_000


@dataclass(frozen=True)
class Kind:
    name: str  # jpeg, pdf, docx, ...
    label: str  # Japanese
    family: str  # image, pdf, office, or "" (never converted)
    extensions: tuple[str, ...]
    types: tuple[str, ...] = ()


_OFFICE_TYPES = (
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/zip",
    "application/x-zip-compressed",
    "application/x-ole-storage",
)

JPEG = Kind("jpeg", "JPEG画像", "image", (".jpg", ".jpeg", ".jpe"), ("image/jpeg", "image/pjpeg"))
PNG = Kind("png", "PNG画像", "image", (".png",), ("image/png", "image/x-png"))
GIF = Kind("gif", "GIF画像", "image", (".gif",), ("image/gif",))
WEBP = Kind("webp", "WebP画像", "image", (".webp",), ("image/webp",))
BMP = Kind("bmp", "BMP画像", "image", (".bmp",), ("image/bmp", "image/x-bmp", "image/x-ms-bmp"))
TIFF = Kind("tiff", "TIFF画像", "image", (".tif", ".tiff"), ("image/tiff",))
PDF = Kind("pdf", "PDF", "pdf", (".pdf",), ("application/pdf", "application/x-pdf"))
DOCX = Kind("docx", "Word文書", "office", (".docx",), _OFFICE_TYPES)
XLSX = Kind("xlsx", "Excelブック", "office", (".xlsx",), _OFFICE_TYPES)
PPTX = Kind("pptx", "PowerPointプレゼンテーション", "office", (".pptx",), _OFFICE_TYPES)
ODF = Kind("odf", "OpenDocument文書", "office", (".odt", ".ods", ".odp"), _OFFICE_TYPES)
OLE = Kind("ole", "Office文書（旧形式）", "office", (".doc", ".xls", ".ppt"), _OFFICE_TYPES)
HTML = Kind("html", "HTMLファイル", "", (".html", ".htm", ".xhtml"))
ZIP = Kind("zip", "ZIPファイル", "", (".zip",))
VIDEO = Kind("video", "動画", "", (".mp4", ".mov", ".m4v", ".3gp", ".webm", ".avi"))
AUDIO = Kind("audio", "音声", "", (".m4a", ".mp3", ".aac", ".wav", ".ogg"))
HEIC = Kind("heic", "HEIC画像", "", (".heic", ".heif"))
UNKNOWN = Kind("unknown", "不明な形式のファイル", "", ())


@dataclass
class Outcome:
    """What became of one file. `pages` are files in the output folder, in order."""

    converted: bool
    kind: Kind
    reason: str = ""  # Japanese, shown to staff when quarantined
    pages: list[str] = field(default_factory=list)
    media_type: str = "image/png"
    total_pages: int | None = None
    truncated: bool = False
    text: str = ""

    @property
    def note(self) -> str:
        """One Japanese line for staff about a converted file."""
        if self.truncated:
            return (
                f"全{self.total_pages}ページのうち最初の{len(self.pages)}ページのみ変換しました。"
                "残りのページは原本にあります（原本は管理者の確認後に限り取り出せます）。"
            )
        if self.kind.family == "image":
            return "画像を作り直し、位置情報などのメタデータを取り除きました。"
        return f"{len(self.pages)}ページを画像に変換し、文字を抽出しました。"


_ALL_KINDS = (JPEG, PNG, GIF, WEBP, BMP, TIFF, PDF, DOCX, XLSX, PPTX, ODF, OLE, HTML, ZIP)
KINDS = {kind.name: kind for kind in (*_ALL_KINDS, VIDEO, AUDIO, HEIC, UNKNOWN)}


def outcome_to_dict(outcome: Outcome) -> dict:
    """An outcome as JSON, for the relay to send with the pages it made (SANITISE_IN=relay)."""
    return {
        "converted": outcome.converted,
        "kind": outcome.kind.name,
        "reason": outcome.reason,
        "pages": list(outcome.pages),
        "media_type": outcome.media_type,
        "total_pages": outcome.total_pages,
        "truncated": outcome.truncated,
        "text": outcome.text,
    }


_PAGE_NAME = re.compile(r"^page-\d{4}\.(png|jpg)$")


def outcome_from_dict(data: dict) -> Outcome:
    """The outcome the relay sent, checked: the core writes only page files named as ours."""
    pages = [str(name) for name in data.get("pages") or []]
    if not all(_PAGE_NAME.match(name) for name in pages):
        raise ValueError("unexpected page name")
    media_type = "image/jpeg" if data.get("media_type") == "image/jpeg" else "image/png"
    total = data.get("total_pages")
    return Outcome(
        bool(data.get("converted")) and bool(pages),
        KINDS.get(str(data.get("kind")), UNKNOWN),
        reason=str(data.get("reason") or "")[:500],
        pages=pages,
        media_type=media_type,
        total_pages=int(total) if isinstance(total, int) else None,
        truncated=bool(data.get("truncated")),
        text=str(data.get("text") or ""),
    )


class Quarantine(Exception):
    """A step refused the file; the message is the Japanese reason shown to staff."""


# --- what the file is ----------------------------------------------------------------------


def _is_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<svg")):
        return True
    if text.startswith(b"<?xml"):
        return True
    return any(tag in head.lower() for tag in (b"<html", b"<script", b"<iframe"))


def _zip_kind(path: Path, limits: Limits) -> Kind:
    """An Office document, an OpenDocument, or a plain archive; a bomb raises Quarantine.

    Only the central directory is read (zipfile does not expand anything to list it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > 10_000:
                raise Quarantine(
                    f"ZIP形式の中に{len(infos):,}個のファイルがあり、展開すると処理が止まる"
                    "おそれがあるため（圧縮爆弾の疑い）、隔離しました。"
                )
            unpacked = sum(info.file_size for info in infos)
            packed = max(path.stat().st_size, 1)
            if (
                unpacked > limits.max_unpacked_mb * 2**20
                or unpacked / packed > limits.max_zip_ratio
            ):
                raise Quarantine(
                    f"展開すると{unpacked / 2**20:,.0f}MB（元の{unpacked / packed:,.0f}倍）に"
                    "なるZIP形式のファイルで、圧縮爆弾の疑いがあるため隔離しました。"
                )
            names = {info.filename for info in infos}
            if "[Content_Types].xml" in names:
                if any(name.lower().endswith("vbaproject.bin") for name in names):
                    raise Quarantine(
                        "マクロ（VBA）を含むOffice文書のため、変換せずに隔離しました。"
                    )
                if any(name.startswith("word/") for name in names):
                    return DOCX
                if any(name.startswith("xl/") for name in names):
                    return XLSX
                if any(name.startswith("ppt/") for name in names):
                    return PPTX
                return ZIP
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100] if unpacked < 2**20 * 500 else b""
                if mimetype.startswith(b"application/vnd.oasis.opendocument."):
                    if any(name.startswith(("Basic/", "Scripts/")) for name in names):
                        raise Quarantine(
                            "マクロを含むOpenDocument文書のため、変換せずに隔離しました。"
                        )
                    return ODF
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise Quarantine("壊れたZIP形式のファイルのため隔離しました。") from None
    return ZIP


def detect(path: Path, limits: Limits) -> Kind:
    """The kind of the content (may raise Quarantine for a ZIP bomb or a macro)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"WAVE"):
        return VIDEO if head[8:12] == b"AVI " else AUDIO
    if head.startswith(b"BM") and len(head) > 26:
        return BMP
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"%PDF-"):
        return PDF
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heif", b"hevc"):
            return HEIC
        if brand in (b"M4A ", b"M4B "):
            return AUDIO
        return VIDEO
    if head.startswith(b"\x1aE\xdf\xa3"):
        return VIDEO
    if head.startswith((b"ID3", b"OggS", b"\xff\xfb", b"\xff\xf3")):
        return AUDIO
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path, limits)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        data = path.read_bytes()
        if "_VBA_PROJECT".encode("utf-16-le") in data or b"_VBA_PROJECT" in data:
            raise Quarantine("マクロ（VBA）を含むOffice文書のため、変換せずに隔離しました。")
        return OLE
    if _is_html(head):
        return HTML
    return UNKNOWN


def _extension(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem and ext else ""


def _disagreement(kind: Kind, filename: str | None, claimed_type: str | None) -> str | None:
    extension = _extension(filename)
    if extension in (".docm", ".xlsm", ".pptm", ".dotm"):
        return f"マクロを含むOffice文書の形式（{extension}）のため、変換せずに隔離しました。"
    if extension and extension not in kind.extensions:
        return (
            f"ファイル名の拡張子（{extension}）と中身（{kind.label}）が一致しないため、"
            "隔離しました。"
        )
    claimed = (claimed_type or "").split(";", 1)[0].strip().lower()
    if claimed not in GENERIC_TYPES and kind.types and claimed not in kind.types:
        return (
            f"送られてきた種類（{claimed[:60]}）と中身（{kind.label}）が一致しないため、"
            "隔離しました。"
        )
    return None


def _unconvertible(kind: Kind) -> str:
    return {
        "html": "HTMLファイルはスクリプトやリンクを含むことがあり、安全な形式に変換できないため"
        "隔離しました。",
        "zip": "ZIPなどの圧縮ファイルは中身を確かめられないため隔離しました。",
        "video": "動画はこのシステムでは安全な形式に変換できないため隔離しました。",
        "audio": "音声はこのシステムでは安全な形式に変換できないため隔離しました。",
        "heic": "HEIC画像（iPhoneの写真）はこのシステムでは変換できないため隔離しました。"
        "JPEGで送り直してもらうよう案内してください。",
    }.get(kind.name, "安全な形式に変換できない種類のファイルのため隔離しました。")


# --- the bounded child processes -------------------------------------------------------------


def _limiter(limits: Limits):
    memory = limits.memory_mb * 2**20
    cpu = int(limits.timeout_seconds) + 5
    written = 512 * 2**20

    def apply() -> None:  # runs in the child between fork and exec: nothing but system calls
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (written, written))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run(
    command: list[str], limits: Limits, workdir: Path, what: str, codes: dict | None = None
) -> str:
    """Run one bounded step; its standard output, or Quarantine with a Japanese reason
    (`codes`: the reasons of exit codes that the program gives a meaning)."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "TMPDIR": str(workdir),
    }
    try:
        process = subprocess.Popen(  # noqa: S603 (fixed programs, our own arguments)
            command,
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_limiter(limits),  # only setrlimit calls, safe beside threads
        )
    except OSError:
        raise Quarantine(f"{what}のためのプログラムを起動できなかったため隔離しました。") from None
    try:
        out, _err = process.communicate(timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill(process)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a grandchild that left the group
            process.communicate(timeout=5)  # what it wrote before the end; pipes closed
        raise Quarantine(
            f"{what}が制限時間（{limits.timeout_seconds:g}秒）内に終わらなかったため隔離しました。"
        ) from None
    finally:
        _kill(process)
    if process.returncode != 0:
        if codes and process.returncode in codes:
            raise Quarantine(codes[process.returncode])
        if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL, -signal.SIGSEGV):
            raise Quarantine(
                f"{what}が処理の上限（メモリ{limits.memory_mb}MB・時間）を超えたため隔離しました。"
            )
        raise Quarantine(f"{what}ができなかったため隔離しました（壊れているか未対応の形式です）。")
    return out.decode("utf-8", "replace")


def _kill(process: subprocess.Popen) -> None:
    """The whole group: LibreOffice's launcher leaves soffice.bin behind otherwise."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()


# --- the conversions -------------------------------------------------------------------------


def _image(source: Path, out: Path, kind: Kind, limits: Limits, work: Path) -> Outcome:
    target = work / "image.out"
    command = [sys.executable, "-I", str(IMAGE_CHILD), str(source), str(target)]
    codes = {
        3: f"{kind.label}として読み取れなかったため隔離しました。",
        4: f"画素数が上限（{limits.max_pixels:,}画素）を超える画像で、展開すると処理が止まる"
        "おそれがある（圧縮爆弾の疑い）ため隔離しました。",
        1: f"{kind.label}として読み取れなかったため隔離しました（壊れているおそれがあります）。",
    }
    printed = run([*command, str(limits.max_pixels)], limits, work, "画像の変換", codes)
    info = json.loads(printed.strip().splitlines()[-1])
    name = "page-0001.jpg" if info["format"] == "JPEG" else "page-0001.png"
    shutil.move(target, out / name)
    media = "image/jpeg" if info["format"] == "JPEG" else "image/png"
    return Outcome(True, kind, pages=[name], media_type=media, total_pages=1)


_PAGES = re.compile(r"^Pages:\s+(\d+)\s*$", re.MULTILINE)


def _pdf(source: Path, out: Path, kind: Kind, limits: Limits, work: Path) -> Outcome:
    info = run(["pdfinfo", str(source)], limits, work, "PDFの読み取り")
    found = _PAGES.search(info)
    total = int(found.group(1)) if found else 0
    if total < 1:
        raise Quarantine("ページのないPDFのため隔離しました。")
    last = min(total, limits.max_pages)
    prefix = work / "page"
    run(
        [
            "pdftoppm",
            "-png",
            "-f",
            "1",
            "-l",
            str(last),
            "-scale-to",
            str(limits.page_width),
            str(source),
            str(prefix),
        ],
        limits,
        work,
        "PDFのページの画像化",
    )
    rendered = sorted(work.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    if not rendered:
        raise Quarantine("PDFのページを画像にできなかったため隔離しました。")
    pages = []
    for number, path in enumerate(rendered, start=1):
        name = f"page-{number:04d}.png"
        shutil.move(path, out / name)
        pages.append(name)
    text_file = work / "text.txt"
    run(
        ["pdftotext", "-f", "1", "-l", str(last), "-enc", "UTF-8", str(source), str(text_file)],
        limits,
        work,
        "PDFの文字の抽出",
    )
    text = text_file.read_text("utf-8", "replace") if text_file.exists() else ""
    text = text.replace("\x0c", "\n").replace("\x00", "")[: limits.max_text_chars]
    return Outcome(
        True, kind, pages=pages, total_pages=total, truncated=total > last, text=text.strip()
    )


def _office(source: Path, out: Path, kind: Kind, limits: Limits, work: Path) -> Outcome:
    extension = {"docx": ".docx", "xlsx": ".xlsx", "pptx": ".pptx"}.get(kind.name)
    if extension is None:
        with source.open("rb") as handle:
            head = handle.read(4096)
        extension = ".odt" if kind.name == "odf" else ".doc"
        if kind.name == "odf" and b"opendocument.spreadsheet" in head:
            extension = ".ods"
        elif kind.name == "odf" and b"opendocument.presentation" in head:
            extension = ".odp"
    document = work / f"document{extension}"
    shutil.copyfile(source, document)
    profile = work / "profile"
    profile.mkdir()
    converted = work / "converted"
    run(
        [
            "soffice",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--nologo",
            f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(converted),
            str(document),
        ],
        limits,
        work,
        "Office文書の変換",
    )
    pdf = converted / "document.pdf"
    if not pdf.exists():
        raise Quarantine("Office文書をPDFに変換できなかったため隔離しました。")
    pdf_work = work / "pdf"
    pdf_work.mkdir()
    outcome = _pdf(pdf, out, kind, limits, pdf_work)
    outcome.kind = kind
    return outcome


def convert(
    source: Path,
    out: Path,
    *,
    filename: str | None = None,
    claimed_type: str | None = None,
    limits: Limits | None = None,
) -> Outcome:
    """Convert `source` into the folder `out` (created, emptied of anything we wrote on failure).

    Never raises for a hostile or broken file: the outcome says converted or quarantined, and
    why. Only a failure of our own machine (disk full) raises."""
    limits = limits or Limits()
    out.mkdir(parents=True, exist_ok=True)
    kind = UNKNOWN
    with tempfile.TemporaryDirectory(prefix="madoguchi-sanitise-") as tmp:
        work = Path(tmp)
        try:
            kind = detect(source, limits)
            disagreement = _disagreement(kind, filename, claimed_type)
            if disagreement:
                raise Quarantine(disagreement)
            if kind.family == "image":
                return _image(source, out, kind, limits, work)
            if kind.family == "pdf":
                return _pdf(source, out, kind, limits, work)
            if kind.family == "office":
                return _office(source, out, kind, limits, work)
            raise Quarantine(_unconvertible(kind))
        except Quarantine as refused:
            for leftover in out.iterdir():
                if leftover.is_file():
                    leftover.unlink()
            return Outcome(False, kind, reason=str(refused))


def convert_on_relay(
    source: Path, out: Path, *, filename: str | None, claimed_type: str | None, limits: Limits
) -> dict:
    """The relay's conversion (MADOGUCHI_SANITISE_IN=relay): the outcome as JSON to send, the
    pages left in `out` only if converted. A failure of our own machine is quarantined with its
    reason (on the core the worker retries; the relay has no row to retry on)."""
    try:
        outcome = convert(source, out, filename=filename, claimed_type=claimed_type, limits=limits)
    except Exception as exc:
        outcome = Outcome(
            False, UNKNOWN, reason=f"変換処理の失敗（{type(exc).__name__}）のため隔離しました。"
        )
    if not outcome.converted:
        shutil.rmtree(out, ignore_errors=True)
    return outcome_to_dict(outcome)
