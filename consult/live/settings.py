"""The live channel's settings (MADOGUCHI_LIVE_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class LiveSettings(Section):
    """How often a held stream writes when nothing happens, and how soon it learns that its
    session ended (one query per process for all its streams, not one per stream)."""

    PREFIX = "LIVE_"

    # A closed page is noticed at the stream's next write: this bounds how long it holds a thread.
    heartbeat_seconds: float = 15.0
    session_check_seconds: float = 3.0
