"""The citizens' voice settings (MADOGUCHI_VOICE_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class VoiceSettings(Section):
    """Answer deadlines in business days (the city's own rule: 5 and 10 are common) and
    whether a closed case's citizen is asked how satisfied they were."""

    PREFIX = "VOICE_"

    request_answer_days: int = 10
    mayor_letter_answer_days: int = 10
    satisfaction_enabled: bool = True
