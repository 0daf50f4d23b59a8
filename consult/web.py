"""Glue between Flask requests and the services: login-by-default, roles, actor, headers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, render_template, request
from flask_login import current_user

from consult.extensions import db
from consult.models import Role
from consult.services.actor import Actor
from consult.services.errors import DomainError

PUBLIC_ATTR = "_madoguchi_public"
ROLES_ATTR = "_madoguchi_roles"
PASSIVE_ATTR = "_madoguchi_passive"


def public(view: Callable) -> Callable:
    """Mark a view as reachable without login (everything else requires it)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def passive(view: Callable) -> Callable:
    """Mark a view that a page calls by itself (the live stream): it does not count as the
    user's activity, so it never keeps an unattended session from idling out."""
    setattr(view, PASSIVE_ATTR, True)
    return view


BODY_LIMIT_ATTR = "_madoguchi_body_limit"


def body_limit(limit: Callable[[], int]) -> Callable:
    """Let a view take a larger request body than MAX_CONTENT_LENGTH (an attachment upload).

    Applied before any before_request hook (consult.app's url_value_preprocessor), so that the
    CSRF check, which parses the form first, already reads the body under this limit."""

    def decorator(view: Callable) -> Callable:
        setattr(view, BODY_LIMIT_ATTR, limit)
        return view

    return decorator


def apply_body_limit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, BODY_LIMIT_ATTR, None)
    if limit is not None:
        request.max_content_length = limit()


def is_passive_request() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(view and getattr(view, PASSIVE_ATTR, False))


def roles_required(*roles: Role) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        setattr(wrapped, ROLES_ATTR, roles)
        return wrapped

    return decorator


def rate_limited(
    scope: str,
    setting: str,
    methods: tuple[str, ...] = ("POST",),
    key: Callable[..., str] | None = None,
) -> Callable:
    """Refuse with 429 once the client address used up the limits in `setting` on this route.

    The count lives in the database (consult.services.ratelimit), so it is exact across
    gunicorn workers and servers. It is committed at once, before the view runs: a request that
    ends in an error (rolled back) still counts, and the counter row is not held while the view
    works. `key` narrows the count (e.g. per FAQ entry) and gets the view's arguments.
    """
    from consult.services import ratelimit

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if request.method in methods:
                limits = ratelimit.parse(current_app.config["MADOGUCHI"][setting])
                # Per route, as flask-limiter counted before: moving a booking does not use up
                # the allowance for making one.
                who = f"{request.endpoint}|{request.remote_addr or 'unknown'}"
                if key is not None:
                    who = f"{who}|{key(*args, **kwargs)}"
                wait = ratelimit.over(scope, who, limits)
                db.session.commit()
                if wait:
                    page = render_template("errors/429.html", wait=wait)
                    return page, 429, {"Retry-After": str(wait)}
            return view(*args, **kwargs)

        return wrapped

    return decorator


def is_public_endpoint(endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # 404s: let the error handler answer
    view = current_app.view_functions.get(endpoint)
    return endpoint == "static" or bool(view and getattr(view, PUBLIC_ATTR, False))


def actor() -> Actor:
    staff = current_user if current_user.is_authenticated else None
    return Actor(staff=staff, address=request.remote_addr)


def attempt(operation: Callable[[], Any], success: str | None = None) -> tuple[bool, Any]:
    """Run a service call; a DomainError rolls everything back and becomes a flashed message."""
    try:
        result = operation()
        db.session.flush()
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return False, None
    if success:
        flash(success, "success")
    return True, result


def attempt_on_field(operation: Callable[[], Any], field) -> tuple[bool, Any]:
    """``attempt`` for a form shown again on refusal: the message goes next to ``field``
    instead of being flashed; everything is rolled back."""
    try:
        result = operation()
        db.session.flush()
    except DomainError as error:
        db.session.rollback()
        field.errors.append(error.message)
        return False, None
    return True, result


def attempt_intake(
    operation: Callable[[], Any], success: str | None = None
) -> tuple[bool, Any, list]:
    """``attempt`` for intake forms: when the service asks the consultant to choose between a
    registered citizen and a new one, the candidates come back to be shown with the form."""
    from consult.services.citizens import ChoiceRequired

    candidates: list = []

    def run():
        try:
            return operation()
        except ChoiceRequired as error:
            candidates.extend(error.candidates)
            raise

    ok, result = attempt(run, success)
    return ok, result, candidates


def flash_errors(form) -> None:
    """Flash every message of a refused form, for a form whose page is elsewhere (a redirect
    follows, so nothing typed is kept: use ``ticket_page_with_errors`` where something is)."""
    for errors in form.errors.values():
        for message in errors:
            flash(message, "error")


def ticket_page_with_errors(number: str):
    """The ticket page again (422) after a form of one of its panels was refused.

    The panel finds the refused form (what was typed, and its messages next to its fields) on
    ``flask.g``, where the view left it, so nothing the consultant typed is lost."""
    page = current_app.view_functions["desk.ticket"](number=number)
    return page, 422


def safe_next(target: str | None) -> str | None:
    """Only our own absolute paths: no scheme, no host, no protocol-relative //.

    Whitespace and control characters are refused outright: browsers drop a tab or newline
    inside a URL, so "/<TAB>/evil.example" would become "//evil.example" (and a newline in a
    Location header is an error).
    """
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
