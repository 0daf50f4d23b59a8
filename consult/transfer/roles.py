"""What each role serves and runs (MADOGUCHI_ROLE, DESIGN.md Runtime).

`all`: everything, as one server. `relay` (internet zone): the public booking pages, the
public FAQ, the transfer endpoints and (in front of Flask, channels.line.intake) LINE's webhook;
every staff page answers 404 as if it did not exist. `core` (LGWAN zone): everything but the
public pages and the webhook, which the internet cannot reach there anyway.
"""

from __future__ import annotations

from flask import Flask, abort, request

from consult.config import CoreSettings
from consult.settings import section

# Blueprints that face the internet (the relay serves these and nothing else).
PUBLIC_BLUEPRINTS = frozenset({"booking", "faq_public", "opinions_public", "alerts_public"})
RELAY_ONLY = frozenset({"relay"})
# Public pages that are not for the internet: staff's private calendar feeds (personal data).
CORE_PUBLIC_ENDPOINTS = frozenset({"booking.feed"})
# Public pages of blueprints that are otherwise staff's: the relay serves these, the core not.
RELAY_PUBLIC_ENDPOINTS = frozenset(
    {"voice.satisfaction", "voice.satisfaction_thanks", "handoff.external", "handoff.external_ics"}
)
RELAY_ENDPOINTS = frozenset({"static", "faq.static"})
# Worker tasks the relay runs: delivering its outbox, fetching LINE's media (the core cannot
# reach LINE's content API), converting files when MADOGUCHI_SANITISE_IN=relay, and
# forgetting what it no longer needs.
RELAY_ONLY_TASKS = frozenset({"line.relay_content", "email.relay_convert"})
RELAY_TASK_PREFIXES = ("outbox", "transfer.housekeeping", *sorted(RELAY_ONLY_TASKS))
CORE_SKIPPED_TASKS = RELAY_ONLY_TASKS


def serves(role: str, endpoint: str | None) -> bool:
    if endpoint is None or role == "all":
        return True
    blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else ""
    if role == "relay":
        if endpoint in CORE_PUBLIC_ENDPOINTS:
            return False
        return (
            endpoint in RELAY_ENDPOINTS
            or endpoint in RELAY_PUBLIC_ENDPOINTS
            or blueprint in PUBLIC_BLUEPRINTS
            or blueprint in RELAY_ONLY
        )
    # core
    if endpoint in CORE_PUBLIC_ENDPOINTS:
        return True
    if endpoint in RELAY_PUBLIC_ENDPOINTS:
        return False
    return blueprint not in PUBLIC_BLUEPRINTS and blueprint not in RELAY_ONLY


def runs_task(role: str, name: str) -> bool:
    if role == "relay":
        return name.startswith(RELAY_TASK_PREFIXES)
    if role == "core":
        return name not in CORE_SKIPPED_TASKS
    return not name.startswith("transfer.") and name not in RELAY_ONLY_TASKS


def install(app: Flask) -> None:
    """The first before-request hook: a page this role does not serve is not found (before
    the sign-in check, so the relay never offers a login page)."""
    role = section(CoreSettings, app).role
    if role == "all":
        return

    def only_this_role():
        if not serves(role, request.endpoint):
            abort(404)

    app.before_request_funcs.setdefault(None, []).insert(0, only_this_role)
