"""Links that leave the system (mail, LINE, calendar files), built one way.

A link in a mail or a LINE message must name the address citizens reach (MADOGUCHI_PUBLIC_URL),
not the host the request came in on (a forged Host header must never reach a citizen's mail),
and it is built as often from the worker, which has no request, as from a page. Without the
setting, `madoguchi serve` records the address it serves (`serve_at`), so `make run PORT=5001`
sends links to port 5001; a process that serves nothing itself falls back to DEFAULT_BASE.
"""

from __future__ import annotations

import dataclasses
import socket

from flask import Flask, current_app

from consult import settings as settings_module
from consult.config import CoreSettings

DEFAULT_BASE = "http://127.0.0.1:5000"


def base_url() -> str:
    """Where citizens reach this centre, without a trailing slash."""
    return (CoreSettings.current().public_url or DEFAULT_BASE).rstrip("/")


def public_url(endpoint: str, **values) -> str:
    """The absolute public address of an endpoint, with or without a request."""
    adapter = current_app.url_map.bind("localhost", script_name="/")
    path = adapter.build(endpoint, values, force_external=False)
    return base_url() + path


def served_address(host: str, port: int) -> str:
    """The address a server bound to host:port is reached at (a wildcard: this machine's name)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (naming the wildcard, not binding to it)
        host = socket.gethostname()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_at(app: Flask, host: str, port: int) -> str:
    """Record the address `madoguchi serve` serves, unless MADOGUCHI_PUBLIC_URL names one;
    returns the base that links will use."""
    store = app.extensions[settings_module.EXTENSION_KEY]
    core = store.sections[CoreSettings]
    if not core.public_url:
        store.sections[CoreSettings] = dataclasses.replace(
            core, public_url=served_address(host, port)
        )
        app.config["MADOGUCHI"] = store.flat()
    return store.sections[CoreSettings].public_url.rstrip("/")
