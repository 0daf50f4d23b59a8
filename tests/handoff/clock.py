"""The handoff services' clock, moved by a test.

Each module of handoff.services imports `utcnow` for itself, so the clock is patched in every
one of them that looks it up (a patch on the package alone would reach none)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from datetime import datetime

from handoff import services


def set_clock(monkeypatch, now: Callable[[], datetime]) -> None:
    for info in pkgutil.iter_modules(services.__path__):
        module = importlib.import_module(f"{services.__name__}.{info.name}")
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", now)
