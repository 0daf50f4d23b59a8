"""LINE's settings section (MADOGUCHI_LINE_*): without the secret and the token the webhook
answers 503 and the ticket page says LINE is not configured."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import ConfigError, Section, secret


@dataclass(frozen=True)
class LineSettings(Section):
    PREFIX = "LINE_"

    channel_secret: str = secret()
    channel_access_token: str = secret()
    api_host: str = "https://api.line.me"
    # Blob downloads: empty = api-data.line.me, or LINE_API_HOST when that is not LINE's own.
    api_data_host: str = ""
    # Process LINE events in the web process right after the webhook's answer, besides the worker
    # (which always does): for a one-process setup. With `madoguchi worker` running, leave it off,
    # so web processes only answer.
    process_after_response: bool = False
    # While LINE delivers a burst (a body stored less than this ago), processing waits, at most
    # LINE_BURST_MAX_DEFER_MS in a row; 0 turns the pacing off.
    burst_quiet_ms: int = 300
    burst_max_defer_ms: int = 2000
    max_event_attempts: int = 8
    # The districts citizens may choose for notices (お知らせ), comma-separated, in order.
    notice_districts: tuple[str, ...] = ("北部", "中部", "南部")
    # A notice to at least this many recipients goes as one narrowcast to an audience uploaded
    # for it (channels.line.notices), not as multicasts of 500; 0 = always multicast. LINE
    # refuses audiences under 50 people.
    narrowcast_threshold: int = 5000

    def __post_init__(self) -> None:
        if self.narrowcast_threshold != 0 and self.narrowcast_threshold < 50:
            raise ConfigError(
                "MADOGUCHI_LINE_NARROWCAST_THRESHOLD: 0 (never) or at least 50, LINE's smallest"
                f" audience, got {self.narrowcast_threshold}"
            )
