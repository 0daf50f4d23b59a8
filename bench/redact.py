"""Redactor speed: dictionary load, ms per corpus sentence, ms for a long case record.

Run: .venv/bin/python bench/redact.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from faq import redact as r

CORPUS = Path(__file__).parent.parent / "tests" / "fixtures" / "redaction" / "corpus.jsonl"
NAMES = ["山田 太郎", "田中 一郎", "佐藤 花子"]


def main() -> None:
    start = time.perf_counter()
    r._sudachi()
    load_ms = (time.perf_counter() - start) * 1000
    print(f"Sudachi dictionary load: {load_ms:.0f} ms (once per process)")
    rows = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    r.redact(rows[0], known_names=NAMES)
    times = []
    for _ in range(5):
        for text in rows:
            t0 = time.perf_counter()
            r.redact(text, known_names=NAMES, public_phones=["087-839-2011"])
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[int(len(times) * 0.95)]
    print(f"{len(rows)} sentences x5: mean {statistics.mean(times):.2f} ms, p95 {p95:.2f} ms")
    long_text = "".join(rows[:60])
    t0 = time.perf_counter()
    r.redact(long_text, known_names=NAMES)
    took = (time.perf_counter() - t0) * 1000
    print(f"one record of {len(long_text)} characters: {took:.1f} ms")


if __name__ == "__main__":
    main()
