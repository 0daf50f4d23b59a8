"""The API's settings section (MADOGUCHI_API_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section


@dataclass(frozen=True)
class ApiSettings(Section):
    PREFIX = "API_"

    # Requests per token, counted across every process (consult.services.ratelimit).
    rate_limit: str = "120 per minute;5000 per hour"
    # A webhook delivery is given up after this many attempts (back-off between them).
    webhook_max_attempts: int = 8
    # Seconds a receiver has to answer one delivery.
    webhook_timeout: float = 10.0
