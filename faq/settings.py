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
    # 「役に立った」 per address and entry (one per browser is the vote table's own rule): a
    # script that drops its cookie gets this many, not thirty, whatever the number of workers.
    vote_rate_limit: str = "3 per day"
