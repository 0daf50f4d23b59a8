"""The kernel's settings sections and the Flask configuration derived from them.

It fails fast: production refuses to start without a strong secret, a value that cannot be read
stops the start naming its variable, and no secret lives in code. Plugins declare their own
sections (consult.settings); this module holds the kernel's.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from consult.settings import ConfigError, Section, Settings, choice, environment, secret

__all__ = [
    "ConfigError",
    "CoreSettings",
    "DirectorySettings",
    "MailSettings",
    "RelaySettings",
    "SafetySettings",
    "SanitiseSettings",
    "TwoFactorSettings",
    "flask_config",
    "load_settings",
]

SECRET_FILE = "secret_key"  # noqa: S105 (a file name)
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class CoreSettings(Section):
    """The kernel: database, data folder, sessions, login limits, the outbox, the centre."""

    database_url: str = ""  # empty: SQLite in the instance folder
    # Rate limits and login counts: in the database unless a Redis URL is given.
    redis_url: str = ""
    data_dir: str = ""  # empty: instance/data
    env: str = choice("development", "development", "testing", "production")
    secret_key: str = secret()
    # Number of reverse proxies in front (for the client address in the audit log).
    proxy_count: int = 0
    # Counter PCs sit in the centre all day: idle 30 minutes, absolute one working day.
    idle_timeout_minutes: int = 30
    absolute_timeout_hours: int = 10
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    # Wrong guesses from one address (per lock window) before its answers slow down.
    login_max_failures_per_address: int = 30
    queue_page_size: int = 50
    password_hash_cost: str = choice("default", "default", "fast")
    outbox_max_attempts: int = 8
    centre_name: str = "市民相談センター"
    # The name on the public English pages (data: it has its own setting, never gettext).
    centre_name_en: str = "Citizens' Consultation Centre"
    display_refresh_seconds: int = 5
    # Where citizens reach the public pages (links in emails and LINE messages). Empty: the
    # address actually served (`madoguchi serve --host/--port`, else the request's host).
    public_url: str = ""
    # The largest file staff may attach to a ticket (bytes; photos of documents, PDFs).
    attachment_max_bytes: int = 10 * 1024 * 1024
    # The network zone this server runs in (DESIGN.md, Runtime): "all" is one server for
    # everything; "relay" faces the internet (LINE webhook, public booking and FAQ, inbound
    # mail) and keeps personal data only until the core has taken it; "core" runs in LGWAN
    # and is the only side that opens connections (consult.transfer).
    role: str = choice("all", "all", "relay", "core")

    @property
    def production(self) -> bool:
        return self.env == "production"


@dataclass(frozen=True)
class MailSettings(Section):
    """Outgoing mail, which the kernel composes and sends (one outgoing-mail path).

    An empty SMTP host keeps mail queued (retried) until one is configured.
    """

    mail_from: str = "soudan@example.lg.jp"
    mail_domain: str = "example.lg.jp"
    mail_signature: str = ""
    # Recipient domains whose phones show UTF-8 mail badly: ISO-2022-JP for them.
    mail_iso2022jp_domains: tuple[str, ...] = ()
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: str = choice("none", "none", "starttls", "ssl")
    smtp_user: str = ""
    smtp_password: str = secret()
    smtp_timeout_seconds: int = 10
    # PEM bundle of the CA(s) that signed the SMTP and IMAP servers' certificates (a city's own
    # CA on its intranet); empty = the system's trust store. Verification is always on.
    mail_ca_file: str = ""


@dataclass(frozen=True)
class RelaySettings(Section):
    """The transfer between the relay and the core (MADOGUCHI_RELAY_*), consult.transfer.

    Both sides hold the same `key` (at least 32 characters); the core also knows the relay's
    `url`. The core pulls and pushes every `interval_seconds`; a signed request older or newer
    than `max_skew_seconds` is refused, and so is one whose nonce was seen before.
    """

    PREFIX = "RELAY_"

    url: str = ""
    key: str = secret()
    interval_seconds: float = 1.0
    max_skew_seconds: int = 300
    batch_size: int = 200
    timeout_seconds: float = 10.0
    # PEM bundle of the CA that signed the relay's HTTPS certificate (empty: the system's).
    ca_file: str = ""
    # The relay delivers pushed messages at once (else at its worker's next round).
    deliver_after_push: bool = True
    # On the relay: what the core has not taken within this many days (intake, a message's
    # outcome) is forgotten, so the internet zone never holds personal data longer.
    hold_days: int = 14


@dataclass(frozen=True)
class SafetySettings(Section):
    """Help alerts (MADOGUCHI_SAFETY_*)."""

    PREFIX = "SAFETY_"

    # A help alert no one has answered (向かいます) within this many seconds goes to every
    # supervisor and to the support room's mail, louder.
    alert_escalate_seconds: int = 30


@dataclass(frozen=True)
class SanitiseSettings(Section):
    """無害化 of citizens' files (consult.services.sanitise), MADOGUCHI_SANITISE_*.

    `in_` (MADOGUCHI_SANITISE_IN): which side converts when the relay and the core are split,
    "core" (the default, and the only side in `all`) or "relay"; both call the same
    `sanitise.convert()`. The limits bound each conversion: seconds and memory of each step,
    pages converted (the rest of a longer document stays in the original, and the page says
    so), pixels of an image, and the expanded size and ratio of a ZIP-based file.
    """

    PREFIX = "SANITISE_"

    in_: str = choice("core", "core", "relay", doc="which side converts citizens' files")
    timeout_seconds: int = 60
    memory_mb: int = 1024
    max_pages: int = 50
    max_pixels: int = 50_000_000
    max_unpacked_mb: int = 100
    max_zip_ratio: int = 100
    # Width of a converted page image, in pixels (A4 at about 170 dpi).
    page_width: int = 1400
    max_text_chars: int = 200_000
    # Attempts of the worker on one file (a crash of our own, not a refusal) before it is held.
    max_attempts: int = 3

    @classmethod
    def variable(cls, name: str) -> str:
        return super().variable(name.rstrip("_"))

    def limits(self):
        from consult.services.sanitise import Limits

        return Limits(
            timeout_seconds=float(self.timeout_seconds),
            memory_mb=self.memory_mb,
            max_pages=self.max_pages,
            max_pixels=self.max_pixels,
            max_unpacked_mb=self.max_unpacked_mb,
            max_zip_ratio=self.max_zip_ratio,
            page_width=self.page_width,
            max_text_chars=self.max_text_chars,
        )


@dataclass(frozen=True)
class TwoFactorSettings(Section):
    """Two-factor sign-in with an authenticator app (TOTP, RFC 6238), MADOGUCHI_TOTP_*.

    `required`: "privileged" (the default) asks administrators and supervisors to enrol before
    they can do anything else; "all" asks everyone; "none" asks no one (anyone may still enrol,
    and whoever has enrolled is always asked for a code).
    """

    PREFIX = "TOTP_"

    required: str = choice(
        "privileged",
        "privileged",
        "all",
        "none",
        doc="who must use two-factor sign-in: privileged (admin, supervisor), all, none",
    )
    # The name the authenticator app shows beside the code; empty: the centre's name.
    issuer: str = ""
    # Between the password and the code: after this the password must be given again.
    pending_minutes: int = 5
    # Key that encrypts the stored TOTP secrets (any text of 32+ characters); empty: derived
    # from MADOGUCHI_SECRET_KEY (then changing that key means everyone enrols again).
    key: str = secret()


@dataclass(frozen=True)
class DirectorySettings(Section):
    """Sign-in against the city's directory (LDAP or Active Directory), MADOGUCHI_LDAP_*.

    Off while `url` is empty. A person is found by `user_dn_template` (a DN: "uid={login},
    ou=people,dc=city,dc=example") or, when it is empty, by a search under `search_base` with
    `user_filter` as the service account `bind_dn` (Active Directory: a search, with
    "(sAMAccountName={login})", since its DNs hold names, not logins). Their groups decide
    their role (`role_groups`, "admin=cn=...;supervisor=cn=...", the first that matches wins)
    and department (`department_groups`, "<department code>=<group DN>;..."). Logins in
    `local_logins` keep their local password (the break-glass administrator).
    """

    PREFIX = "LDAP_"

    url: str = ""  # ldap://host:389 or ldaps://host:636
    start_tls: bool = False
    # PEM file of the CA that signed the directory's certificate; empty: the system's.
    ca_file: str = ""
    bind_dn: str = ""
    bind_password: str = secret()
    user_dn_template: str = ""
    search_base: str = ""
    # AD: (sAMAccountName={login})
    user_filter: str = "(uid={login})"
    # Groups are searched for the person's DN (and an AD memberOf attribute is read too).
    group_search_base: str = ""
    group_filter: str = "(|(member={dn})(uniqueMember={dn}))"
    name_attribute: str = "displayName"
    email_attribute: str = "mail"
    role_groups: str = ""
    department_groups: str = ""
    # Members of this group cannot sign in (besides AD's ACCOUNTDISABLE and pwdAccountLockedTime).
    disabled_group: str = ""
    local_logins: tuple[str, ...] = ()
    timeout_seconds: int = 5

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def parse_group_map(text: str, variable: str) -> tuple[tuple[str, str], ...]:
    """ "name=group DN;name=group DN" → ((name, normalised DN), ...), in the order written."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, dn = part.partition("=")
        if not sep or not name.strip() or "=" not in dn:
            raise ConfigError(f"MADOGUCHI_{variable}: expected 'name=group DN;...', got {part!r}")
        pairs.append((name.strip(), normalise_dn(dn)))
    return tuple(pairs)


def normalise_dn(dn: str) -> str:
    """DNs compared as directories do: case and spaces around separators do not matter."""
    parts = [piece.strip() for piece in dn.split(",")]
    return ",".join("=".join(x.strip() for x in piece.split("=", 1)) for piece in parts).lower()


def _check_directory(settings: DirectorySettings) -> None:
    from consult.models import Role

    if not settings.enabled:
        return
    if not settings.url.startswith(("ldap://", "ldaps://")):
        raise ConfigError("MADOGUCHI_LDAP_URL must start with ldap:// or ldaps://")
    if not settings.user_dn_template and not settings.search_base:
        raise ConfigError(
            "MADOGUCHI_LDAP_USER_DN_TEMPLATE or MADOGUCHI_LDAP_SEARCH_BASE must be set"
        )
    roles = parse_group_map(settings.role_groups, "LDAP_ROLE_GROUPS")
    if not roles:
        raise ConfigError("MADOGUCHI_LDAP_ROLE_GROUPS must name at least one role's group")
    for name, _dn in roles:
        if name not in {role.value for role in Role}:
            raise ConfigError(f"MADOGUCHI_LDAP_ROLE_GROUPS: no role {name!r}")
    parse_group_map(settings.department_groups, "LDAP_DEPARTMENT_GROUPS")


# A relay URL may be plain http:// only on these (a relay on the core's own machine, a test).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _check_relay(core: CoreSettings, relay: RelaySettings) -> None:
    if core.role == "all":
        return
    if len(relay.key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"MADOGUCHI_RELAY_KEY must be set (at least {MIN_SECRET_LENGTH} characters, the same"
            f" on the relay and the core) when MADOGUCHI_ROLE is {core.role}."
        )
    if core.role == "core" and not relay.url.startswith(("https://", "http://")):
        raise ConfigError(
            "MADOGUCHI_RELAY_URL (https://…) must be set when MADOGUCHI_ROLE is core."
        )
    if core.role == "core" and relay.url.startswith("http://"):
        host = urlsplit(relay.url).hostname
        if host not in LOOPBACK_HOSTS:
            raise ConfigError(
                "MADOGUCHI_RELAY_URL must be https://… when MADOGUCHI_ROLE is core: the link"
                " carries citizens' personal data between the zones (http:// only for a relay"
                " on this machine: 127.0.0.1, localhost, ::1)."
            )
    if relay.interval_seconds <= 0 or relay.batch_size <= 0 or relay.max_skew_seconds <= 0:
        raise ConfigError("MADOGUCHI_RELAY_INTERVAL_SECONDS, _BATCH_SIZE, _MAX_SKEW_SECONDS > 0")
    if relay.hold_days <= 0:
        raise ConfigError("MADOGUCHI_RELAY_HOLD_DAYS must be at least 1.")


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


def load_settings(instance_path: Path, overrides: dict | None = None) -> Settings:
    """The kernel's sections from MADOGUCHI_* variables, then test overrides; checked."""
    raw: dict[str, Any] = environment()
    raw.update(overrides or {})
    store = Settings(raw)
    core = store.add(CoreSettings)
    store.add(MailSettings)
    store.add(TwoFactorSettings)
    sanitising = store.add(SanitiseSettings)
    _check_sanitise(sanitising)
    _check_directory(store.add(DirectorySettings))
    _check_relay(core, store.add(RelaySettings))
    filled = {}
    if not core.database_url:
        filled["database_url"] = f"sqlite:///{instance_path / 'madoguchi.db'}"
    if not core.data_dir:
        filled["data_dir"] = str(instance_path / "data")
    if not core.secret_key:
        if core.production:
            raise ConfigError("MADOGUCHI_SECRET_KEY must be set in production.")
        filled["secret_key"] = _load_or_create_secret(instance_path)
    core = store.sections[CoreSettings] = dataclasses.replace(core, **filled)
    if core.production and len(core.secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"MADOGUCHI_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters.")
    totp_key = store.sections[TwoFactorSettings].key
    if totp_key and len(totp_key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"MADOGUCHI_TOTP_KEY must be at least {MIN_SECRET_LENGTH} characters.")
    _check_ca_file(store.sections[MailSettings].mail_ca_file)
    return store


def _check_sanitise(settings: SanitiseSettings) -> None:
    for name in ("timeout_seconds", "memory_mb", "max_pages", "max_pixels", "page_width"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"MADOGUCHI_SANITISE_{name.upper()} must be at least 1")
    if settings.memory_mb < 256:
        raise ConfigError("MADOGUCHI_SANITISE_MEMORY_MB must be at least 256 (LibreOffice)")


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


def flask_config(core: CoreSettings) -> dict:
    """The Flask and extension keys derived from the kernel's settings."""
    url = core.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return {
        "SECRET_KEY": core.secret_key,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(url),
        "SESSION_COOKIE_NAME": "madoguchi_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": core.production,
        "REMEMBER_COOKIE_DURATION": 0,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_I18N_ENABLED": False,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "PREFERRED_URL_SCHEME": "https" if core.production else "http",
    }


def _engine_options(url: str) -> dict:
    # A database error's message would otherwise carry the statement's parameters: a citizen's
    # name, kana, address and words, straight into the log of any 500.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "hide_parameters": True}
