"""What every part of the email channel shares: settings, limits, logger, the zone."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import current_app

log = logging.getLogger("madoguchi.email")
MAX_REPLY = 20000


def settings() -> Mapping:
    """Every setting by variable name, parsed once (channels.email.settings and the kernel's)."""
    return current_app.config["MADOGUCHI"]


def on_relay() -> bool:
    from consult.transfer.services import role

    return role() == "relay"
