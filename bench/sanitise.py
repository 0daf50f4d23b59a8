"""無害化: conversion time per file type (later a part of bench/zones.py).

Each file is written here (tests/sanitise_files.py), converted by `sanitise.convert()` with the
default limits, as the worker converts it, `--runs` times; the median, the slowest run and what
became of it are printed. Nothing but the child processes (Pillow, poppler, LibreOffice) runs.

Run: .venv/bin/python bench/sanitise.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.services import sanitise
from tests import sanitise_files as files


def cases() -> list[tuple[str, str, bytes]]:
    return [
        ("JPEG photo 640x480 with GPS EXIF", "photo.jpg", files.jpeg_with_gps(640, 480)),
        ("JPEG photo 4000x3000 (a phone's)", "photo.jpg", files.jpeg_with_gps(4000, 3000)),
        ("PNG 64x48", "image.png", files.png()),
        ("PNG bomb (400 megapixels claimed)", "bomb.png", files.png_bomb()),
        ("PDF 1 page", "form.pdf", files.pdf(1)),
        ("PDF 2 pages with JavaScript", "form.pdf", files.pdf(2, javascript=True)),
        ("PDF 500 pages (50 converted)", "long.pdf", files.pdf(500)),
        ("Word .docx (LibreOffice)", "form.docx", files.docx()),
        ("Word .docx with a macro", "form.docx", files.docx(macro=True)),
        ("HTML", "page.html", files.html()),
        ("ZIP bomb (200 MB of zeros)", "bomb.zip", files.zip_bomb()),
        ("PDF named .jpg", "photo.jpg", files.pdf(1)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    limits = sanitise.Limits()
    print(
        f"limits: {limits.timeout_seconds:g} s and {limits.memory_mb} MB a step, "
        f"{limits.max_pages} pages, {limits.max_pixels:,} pixels; {args.runs} runs each"
    )
    print(f"{'file':38} {'size':>9} {'median':>9} {'max':>9}  outcome")
    with tempfile.TemporaryDirectory(prefix="bench-sanitise-") as tmp:
        folder = Path(tmp)
        for label, name, data in cases():
            source = folder / "source"
            source.write_bytes(data)
            times = []
            outcome = None
            for run in range(args.runs):
                started = time.perf_counter()
                outcome = sanitise.convert(
                    source, folder / f"out-{label[:8]}-{run}", filename=name, limits=limits
                )
                times.append(time.perf_counter() - started)
            truncated = " (truncated)" if outcome.truncated else ""
            result = (
                f"converted: {len(outcome.pages)} page(s){truncated}"
                if outcome.converted
                else f"quarantined: {outcome.reason[:40]}"
            )
            print(
                f"{label:38} {len(data) / 1024:>7.0f}KB {statistics.median(times) * 1000:>7.0f}ms "
                f"{max(times) * 1000:>7.0f}ms  {result}"
            )


if __name__ == "__main__":
    main()
