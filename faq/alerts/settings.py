"""The alerts' settings section (MADOGUCHI_ALERTS_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class AlertSettings(Section):
    PREFIX = "ALERTS_"

    # Department officers who may write alerts besides the centre's desk: the consumer-affairs
    # centre (消費生活センター) is a department; its codes, comma-separated.
    author_departments: tuple[str, ...] = ("shohi",)
    # The departments' daily digest of newly published alerts goes out from this hour (Tokyo).
    digest_hour: int = 8
