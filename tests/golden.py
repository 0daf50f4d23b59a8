"""Golden files: what leaves the system, compared byte for byte with tests/fixtures/golden/.

    assert_golden("reply-mail.eml", normalised_text)

A difference fails with a diff. After a change meant to alter the output, rewrite the files with
``MADOGUCHI_UPDATE_GOLDEN=1 pytest …`` and review them in the commit like any other change.
Values that differ on every run (dates, Message-IDs, UIDs) are replaced by placeholders first.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"


def updating() -> bool:
    return os.environ.get("MADOGUCHI_UPDATE_GOLDEN") == "1"


def replace_all(text: str, values: dict[str, str]) -> str:
    """Each known varying value (a token, a reference) replaced by its placeholder."""
    for value, placeholder in values.items():
        assert value, f"nothing to replace for {placeholder}"
        text = text.replace(value, placeholder)
    return text


def replace_patterns(text: str, patterns: dict[str, str]) -> str:
    for pattern, placeholder in patterns.items():
        text, count = re.subn(pattern, placeholder, text, flags=re.MULTILINE)
        assert count, f"{pattern!r} not found: is {placeholder} still in the output?"
    return text


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if updating():
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: write it with MADOGUCHI_UPDATE_GOLDEN=1"
    expected = path.read_bytes().decode("utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{name}",
                "now",
            )
        )
        raise AssertionError(
            f"{name} differs from its golden file (MADOGUCHI_UPDATE_GOLDEN=1 rewrites it):\n{diff}"
        )
