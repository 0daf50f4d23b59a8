"""Links that leave the system (mail, LINE, calendar files), built one way.

A link in a mail or a LINE message must name the address citizens reach (MADOGUCHI_PUBLIC_URL),
not the host the request came in on, and it is built as often from the worker, which has no
request, as from a page.
"""

from __future__ import annotations

from flask import current_app

from consult.config import CoreSettings


def public_url(endpoint: str, **values) -> str:
    """The absolute public address of an endpoint, with or without a request."""
    adapter = current_app.url_map.bind("localhost", script_name="/")
    path = adapter.build(endpoint, values, force_external=False)
    return CoreSettings.current().public_url.rstrip("/") + path
