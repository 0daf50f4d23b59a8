"""Configuration, read once from MADOGUCHI_* variables and the instance folder.

It fails fast: production refuses to start without a strong secret, and no secret lives in code.
"""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

SECRET_FILE = "secret_key"  # noqa: S105 (a file name)
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot work safely."""


def _load_or_create_secret(instance_path: Path) -> str:
    """A secret generated once into the instance folder, readable by the owner only."""
    path = instance_path / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value)
    return value


def default_settings(instance_path: Path) -> dict:
    return {
        "DATABASE_URL": f"sqlite:///{instance_path / 'madoguchi.db'}",
        "DATA_DIR": str(instance_path / "data"),
        "ENV": "development",
        # Counter PCs sit in the centre all day: idle 30 minutes, absolute one working day.
        "IDLE_TIMEOUT_MINUTES": 30,
        "ABSOLUTE_TIMEOUT_HOURS": 10,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_LOCK_MINUTES": 15,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 30,
        "QUEUE_PAGE_SIZE": 50,
        "PASSWORD_HASH_COST": "default",
        "OUTBOX_MAX_ATTEMPTS": 8,
        "CENTRE_NAME": "市民相談センター",
        "DISPLAY_REFRESH_SECONDS": 5,
        # Where citizens reach the public pages (links in emails and LINE messages).
        "PUBLIC_URL": "http://127.0.0.1:5000",
        # Outgoing mail: an empty host keeps mail queued (retried) until one is configured.
        "MAIL_FROM": "soudan@example.lg.jp",
        "MAIL_DOMAIN": "example.lg.jp",
        "SMTP_HOST": "",
        "SMTP_PORT": 25,
        "SMTP_SECURITY": "none",  # none | starttls | ssl
        "SMTP_USER": "",
        "SMTP_PASSWORD": "",
        "SMTP_TIMEOUT_SECONDS": 10,
        # PEM bundle of the CA(s) that signed the SMTP and IMAP servers' certificates (a city's
        # own CA on its intranet); empty = the system's trust store. Verification is always on.
        "MAIL_CA_FILE": "",
        # Links that let an external body answer a handoff expire after this many days.
        "HANDOFF_LINK_DAYS": 14,
        # Out of hours, a clear FAQ match is sent to a LINE or email citizen automatically.
        "FAQ_AUTO_ANSWER": True,
        # LINE Messaging API: without the secret and the token the webhook answers 503.
        "LINE_CHANNEL_SECRET": "",
        "LINE_CHANNEL_ACCESS_TOKEN": "",
        "LINE_API_HOST": "https://api.line.me",
        # Blob downloads: empty = api-data.line.me, or LINE_API_HOST when that is not LINE's own.
        "LINE_API_DATA_HOST": "",
        # Process LINE events in the web process right after the webhook's answer, besides the
        # worker (which always does): for a one-process setup. With `madoguchi worker` running,
        # leave it off, so web processes only answer.
        "LINE_PROCESS_AFTER_RESPONSE": False,
        # While LINE delivers a burst (a body stored less than this ago), processing waits, at
        # most LINE_BURST_MAX_DEFER_MS in a row; 0 turns the pacing off.
        "LINE_BURST_QUIET_MS": 300,
        "LINE_BURST_MAX_DEFER_MS": 2000,
        "LINE_MAX_EVENT_ATTEMPTS": 8,
    }


def load_settings(instance_path: Path, overrides: dict | None = None) -> dict:
    """Settings from defaults, then MADOGUCHI_* environment variables, then test overrides."""
    settings = default_settings(instance_path)
    for key, value in os.environ.items():
        if key.startswith("MADOGUCHI_") and not key.startswith(
            ("MADOGUCHI_TEST_", "MADOGUCHI_NEW_")
        ):
            name = key.removeprefix("MADOGUCHI_")
            settings[name] = _coerce(value, settings.get(name))
    if overrides:
        settings.update(overrides)
    if not settings.get("SECRET_KEY"):
        if settings["ENV"] == "production":
            raise ConfigError("MADOGUCHI_SECRET_KEY must be set in production.")
        settings["SECRET_KEY"] = _load_or_create_secret(instance_path)
    if settings["ENV"] == "production" and len(settings["SECRET_KEY"]) < MIN_SECRET_LENGTH:
        raise ConfigError(f"MADOGUCHI_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters.")
    _check_ca_file(settings.get("MAIL_CA_FILE"))
    return settings


def _check_ca_file(path: str | None) -> None:
    """A wrong CA bundle would only show at the first mail, as a certificate error: refuse now."""
    if not path:
        return
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"MADOGUCHI_MAIL_CA_FILE {path!r} is not a readable PEM file of CA certificates: {exc}"
        ) from exc


def _coerce(value: str, default: object) -> object:
    if isinstance(default, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError as exc:
            raise ConfigError(f"expected a whole number, got {value!r}") from exc
    return value


def flask_config(settings: dict) -> dict:
    """The Flask and extension keys derived from our settings."""
    production = settings["ENV"] == "production"
    url = settings["DATABASE_URL"]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return {
        "SECRET_KEY": settings["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(url),
        "SESSION_COOKIE_NAME": "madoguchi_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_DURATION": 0,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_I18N_ENABLED": False,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
