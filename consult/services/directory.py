"""Sign-in against the city's directory (LDAP or Active Directory), through ldap3.

On each sign-in the directory is asked: the person's password is checked by binding as them,
their entry and groups are read, and the local Staff row is created or brought up to date
(name, mail, role and department from the group mapping in MADOGUCHI_LDAP_*). The directory
is the source of truth for these accounts: their local password is unusable, and a role
changed in the directory ends their other sessions at their next sign-in.

A disabled account cannot sign in. Checked after the password (so that nobody learns an
account's state without its password), three ways, whichever the directory uses:
- Active Directory: userAccountControl with ACCOUNTDISABLE (0x2) — AD itself also refuses the
  bind of a disabled account, which then reads as a wrong password;
- OpenLDAP's password policy: a pwdAccountLockedTime attribute on the entry;
- any directory: membership of MADOGUCHI_LDAP_DISABLED_GROUP.

The login counts and lock-out are the caller's (consult.services.auth), the same as for local
accounts. ldap3 is pure Python; it is imported here only, with pyasn1's deprecation warnings
of its import silenced (ldap3 2.9 uses names pyasn1 0.6 renamed).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field

import sqlalchemy as sa

from consult.config import DirectorySettings, normalise_dn, parse_group_map
from consult.extensions import db
from consult.models import Department, Role, Staff
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import DomainError
from consult.services.normalize import normalize_email

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

log = logging.getLogger("madoguchi.directory")

ACCOUNTDISABLE = 0x2
# A directory account's local password: not an argon2 hash, so it never verifies.
NO_LOCAL_PASSWORD = "!directory"  # noqa: S105 (a marker, not a password)
# What citizens see until an administrator sets the person's surname (the directory has no
# standard attribute for it in hiragana and romaji).
PLACEHOLDER_DISPLAY_NAME = "しょくいん / Shokuin"
INVALID_CREDENTIALS = 49


class WrongPassword(Exception):
    """Unknown person or wrong password: the caller answers both alike and counts it."""


class Unavailable(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "ディレクトリサーバーに接続できないため、ログインできません。"
            "しばらくしてからもう一度お試しください。続く場合は管理者に連絡してください。"
        )


class AccountDisabled(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "このアカウントはディレクトリで無効（利用停止）になっているため、ログインできません。"
            "管理者に連絡してください。"
        )


class NotMapped(DomainError):
    """The password was right, but no group gives the person a role (or an officer no
    department): nothing in madoguchi is theirs to use."""


@dataclass
class Account:
    dn: str
    login: str
    full_name: str
    email: str | None
    groups: set[str] = field(default_factory=set)
    disabled: bool = False


def enabled() -> bool:
    return DirectorySettings.current().enabled


def is_local_login(login: str) -> bool:
    """The break-glass accounts that keep their local password while the directory is on."""
    return login in {name.strip().lower() for name in DirectorySettings.current().local_logins}


def _server(settings: DirectorySettings):
    tls = None
    if settings.url.startswith("ldaps://") or settings.start_tls:
        import ssl

        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.ca_file or None,
        )
    return ldap3.Server(
        settings.url,
        get_info=ldap3.NONE,  # no schema read: fewer round trips, no schema checks of names
        connect_timeout=settings.timeout_seconds,
        tls=tls,
    )


def _connection(settings: DirectorySettings, server, user: str, password: str):
    connection = ldap3.Connection(
        server,
        user=user,
        password=password,
        receive_timeout=settings.timeout_seconds,
        raise_exceptions=False,
        read_only=True,
    )
    try:
        connection.open()
        if settings.start_tls:
            connection.start_tls()
    except LDAPException:
        # ldap3 leaves the socket of a failed connect open: close it here.
        socket = getattr(connection, "socket", None)
        if socket is not None:
            socket.close()
        raise
    return connection


def _bind(settings, server, dn: str, password: str):
    connection = _connection(settings, server, dn, password)
    if connection.bind():
        return connection
    code = connection.result.get("result")
    connection.unbind()
    if code != INVALID_CREDENTIALS:
        log.warning("directory refused a bind with result %s", code)
    raise WrongPassword


def _values(entry: dict, name: str) -> list[str]:
    for key, values in entry.items():
        if key.lower() == name.lower():
            return [str(v) for v in (values if isinstance(values, list) else [values])]
    return []


def lookup(login: str, password: str) -> Account:
    """Check the person's password against the directory and read who they are.

    Raises WrongPassword (unknown person, wrong or empty password) or Unavailable.
    """
    settings = DirectorySettings.current()
    if not password:  # an empty password is an anonymous bind, which "succeeds"
        raise WrongPassword
    server = _server(settings)
    opened = []  # every connection made, unbound at the end whatever happens
    try:
        if settings.user_dn_template:
            dn = settings.user_dn_template.format(login=escape_rdn(login))
            reader = _bind(settings, server, dn, password)
            opened.append(reader)
        else:
            reader = _connection(settings, server, settings.bind_dn, settings.bind_password)
            opened.append(reader)
            if not reader.bind():
                log.warning("the directory refused madoguchi's service account (LDAP_BIND_DN)")
                raise Unavailable()
            query = settings.user_filter.format(login=escape_filter_chars(login))
            reader.search(settings.search_base, query, attributes=["1.1"], size_limit=2)
            found = [item for item in reader.response or () if "dn" in item]
            if len(found) != 1:
                raise WrongPassword
            dn = found[0]["dn"]
            opened.append(_bind(settings, server, dn, password))
        return _read(settings, reader, dn, login)
    except LDAPException as error:
        log.warning("directory unavailable: %s", type(error).__name__)
        raise Unavailable() from None
    finally:
        for connection in opened:
            with contextlib.suppress(LDAPException):
                connection.unbind()


def _read(settings: DirectorySettings, reader, dn: str, login: str) -> Account:
    attributes = [
        settings.name_attribute,
        settings.email_attribute,
        "cn",
        "userAccountControl",
        "pwdAccountLockedTime",
        "memberOf",
    ]
    reader.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
    if not reader.response or "attributes" not in reader.response[0]:
        raise WrongPassword
    entry = reader.response[0]["attributes"]
    groups = {normalise_dn(value) for value in _values(entry, "memberOf")}
    if settings.group_search_base:
        query = settings.group_filter.format(dn=escape_filter_chars(dn))
        reader.search(settings.group_search_base, query, attributes=["1.1"])
        groups.update(normalise_dn(item["dn"]) for item in reader.response or () if "dn" in item)
    control = _values(entry, "userAccountControl")
    disabled = bool(control and control[0].isdigit() and int(control[0]) & ACCOUNTDISABLE)
    disabled = disabled or bool(_values(entry, "pwdAccountLockedTime"))
    if settings.disabled_group and normalise_dn(settings.disabled_group) in groups:
        disabled = True
    names = _values(entry, settings.name_attribute) or _values(entry, "cn") or [login]
    emails = _values(entry, settings.email_attribute)
    return Account(
        dn=dn,
        login=login,
        full_name=names[0].strip()[:80] or login,
        email=normalize_email(emails[0]) if emails else None,
        groups=groups,
        disabled=disabled,
    )


def role_and_department(account: Account) -> tuple[Role, Department | None]:
    """The first role whose group the person is in, and the first mapped department."""
    settings = DirectorySettings.current()
    roles = parse_group_map(settings.role_groups, "LDAP_ROLE_GROUPS")
    role = next((Role(name) for name, dn in roles if dn in account.groups), None)
    if role is None:
        raise NotMapped(
            "このアカウントには窓口システムの役割が割り当てられていません"
            "（ディレクトリのグループ）。管理者に連絡してください。"
        )
    department = None
    for code, dn in parse_group_map(settings.department_groups, "LDAP_DEPARTMENT_GROUPS"):
        if dn in account.groups:
            department = db.session.scalar(sa.select(Department).where(Department.code == code))
            if department is not None:
                break
            log.warning("LDAP_DEPARTMENT_GROUPS names a department code that does not exist")
    if role == Role.OFFICER and department is None:
        raise NotMapped(
            "このアカウントには所属する担当課が割り当てられていません"
            "（ディレクトリのグループ）。管理者に連絡してください。"
        )
    return role, department


def sync_staff(account: Account, address: str | None) -> Staff:
    """Create or update the local row of a directory account; refuses disabled accounts.

    The row is found by its DN first (a login renamed in the directory stays the same person),
    then by login (an existing local account of that login becomes a directory account).
    """
    existing = db.session.scalar(sa.select(Staff).where(Staff.directory_dn == account.dn))
    if existing is None:
        existing = db.session.scalar(sa.select(Staff).where(Staff.login == account.login))
    if account.disabled:
        if existing is not None:
            from consult.services import auth

            auth.end_all_sessions(existing, "directory_disabled")
        raise AccountDisabled()
    role, department = role_and_department(account)
    actor = Actor(staff=None, address=f"directory:{(address or '')}"[:64], trusted=True)
    if existing is None:
        staff = Staff(
            login=account.login,
            full_name=account.full_name,
            display_name=PLACEHOLDER_DISPLAY_NAME,
            role=role,
            department=department,
            password_hash=NO_LOCAL_PASSWORD,
            email=account.email,
            directory_dn=account.dn,
        )
        db.session.add(staff)
        db.session.flush()
        audit.record(actor, "create", "staff", staff.id, "directory")
        return staff
    staff = existing
    if staff.login != account.login and db.session.scalar(
        sa.select(Staff.id).where(Staff.login == account.login)
    ):
        # Renamed in the directory to a login another local account holds.
        raise NotMapped(
            f"ログインID「{account.login}」は窓口システムの別のアカウントが使っています。"
            "管理者に連絡してください。"
        )
    changed = [
        name
        for name, old, new in (
            ("role", staff.role, role),
            ("department", staff.department_id, department.id if department else None),
            ("name", staff.full_name, account.full_name),
            ("email", staff.email, account.email),
            ("directory", staff.directory_dn, account.dn),
            ("login", staff.login, account.login),
        )
        if old != new
    ]
    if "role" in changed:
        from consult.services import auth

        auth.end_all_sessions(staff, "role_changed")
    staff.role = role
    staff.department = department
    staff.full_name = account.full_name
    staff.email = account.email
    staff.directory_dn = account.dn
    staff.login = account.login
    staff.password_hash = NO_LOCAL_PASSWORD
    if changed:
        audit.record(actor, "update", "staff", staff.id, "directory: " + ", ".join(changed))
    return staff
