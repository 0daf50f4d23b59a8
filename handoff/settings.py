"""The handoffs' settings section (MADOGUCHI_HANDOFF_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class HandoffSettings(Section):
    PREFIX = "HANDOFF_"

    # Links that let an external body answer a handoff expire after this many days.
    link_days: int = 14
