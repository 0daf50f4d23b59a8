"""The FAQ's settings section (MADOGUCHI_FAQ_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class FaqSettings(Section):
    PREFIX = "FAQ_"

    # Out of hours, a clear FAQ match is sent to a LINE or email citizen automatically.
    auto_answer: bool = True
    # The city's own public numbers, which the redactor keeps (comma-separated).
    public_phones: tuple[str, ...] = ()
