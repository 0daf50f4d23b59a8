"""What every part of the LINE channel shares: its name, limits, settings and logger."""

from __future__ import annotations

import logging

from channels.line import client

log = logging.getLogger("madoguchi.line")
CHANNEL = "line"
MAX_TEXT = 4800  # LINE allows 5,000 characters per text message; room for the sender line
MEDIA_KINDS = {"image": "画像", "video": "動画", "audio": "音声", "file": "ファイル"}


def settings() -> client.LineSettings:
    from channels.line.settings import LineSettings

    return client.settings_from(LineSettings.current())


def role() -> str:
    """This server's zone role (all, relay or core): the core cannot reach LINE."""
    from consult.config import CoreSettings
    from consult.settings import section

    return section(CoreSettings).role
