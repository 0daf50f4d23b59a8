"""A throwaway OpenLDAP server for the directory sign-in tests: Debian's slapd, on 127.0.0.1.

Started from the installed binary (package 'slapd'; `make system-deps` installs it) in a
temporary folder with an old-style slapd.conf, filled offline with `slapadd` from the LDIF
below, on a free port, and stopped at the end, as the throwaway PostgreSQL and Redis are. The
directory looks like a small city's: people, groups that map to roles and departments, a group
of disabled accounts, and an Active Directory style account disabled by userAccountControl
(its attribute declared in a small schema of the test's own).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.gunicorn import free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA = Path("/etc/ldap/schema")
BASE = "dc=city,dc=example"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "directory-root-secret"
# The service account madoguchi binds as to find people and their groups.
SERVICE_DN = f"cn=madoguchi,ou=services,{BASE}"
SERVICE_PASSWORD = "service-account-secret"
USER_PASSWORD = "directory-password-1"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"


def group(name: str) -> str:
    return f"cn={name},{GROUPS}"


def person(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


# uid → (full name, groups). Group names map to roles and departments in the tests' settings.
PEOPLE_ROWS = {
    "d.consultant": ("窓口 一郎", ["madoguchi-consultants"]),
    "d.supervisor": ("窓口 責任者", ["madoguchi-supervisors", "madoguchi-consultants"]),
    "d.officer": ("福祉 花子", ["madoguchi-officers", "dept-fukushi"]),
    "d.admin": ("情報 管理者", ["madoguchi-admins"]),
    "d.nogroup": ("所属 なし", []),
    "d.disabled": ("停止 太郎", ["madoguchi-consultants", "madoguchi-disabled"]),
    "d.lockout": ("施錠 次郎", ["madoguchi-consultants"]),
    "d.twofactor": ("二段 認証", ["madoguchi-supervisors"]),
    "d.moves": ("異動 三郎", ["madoguchi-consultants"]),
}
# Active Directory style: userAccountControl with ACCOUNTDISABLE (0x2) set.
AD_DISABLED = "d.ad-disabled"
GROUP_NAMES = (
    "madoguchi-consultants",
    "madoguchi-supervisors",
    "madoguchi-officers",
    "madoguchi-admins",
    "madoguchi-disabled",
    "dept-fukushi",
    "dept-shimin",
)


def _ldif() -> str:
    blocks = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: city\no: city",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: madoguchi\nsn: madoguchi\n"
        f"userPassword: {SERVICE_PASSWORD}",
    ]
    for uid, (name, _groups) in PEOPLE_ROWS.items():
        surname = name.split()[0]
        blocks.append(
            f"dn: {person(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn:: {_b64(name)}\nsn:: {_b64(surname)}\ndisplayName:: {_b64(name)}\n"
            f"mail: {uid}@city.example\nuserPassword: {USER_PASSWORD}"
        )
    blocks.append(
        f"dn: {person(AD_DISABLED)}\nobjectClass: inetOrgPerson\nobjectClass: adAccount\n"
        f"uid: {AD_DISABLED}\ncn: AD Disabled\nsn: Disabled\nuserAccountControl: 514\n"
        f"userPassword: {USER_PASSWORD}"
    )
    for name in GROUP_NAMES:
        members = [person(uid) for uid, (_n, groups) in PEOPLE_ROWS.items() if name in groups]
        if name == "madoguchi-consultants":
            members.append(person(AD_DISABLED))
        # groupOfNames needs one member at least: the service account stands in.
        lines = "\n".join(f"member: {dn}" for dn in members or [SERVICE_DN])
        blocks.append(f"dn: {group(name)}\nobjectClass: groupOfNames\ncn: {name}\n{lines}")
    return "\n\n".join(blocks) + "\n"


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# Active Directory's userAccountControl (its real OID), on an auxiliary class of our own: the
# whole of Debian's msuser.schema needs attributes (nTSecurityDescriptor…) slapd cannot hold.
AD_SCHEMA = """
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'adAccount' SUP top AUXILIARY
  MAY userAccountControl )
"""


def _config(folder: Path) -> str:
    schemas = ("core", "cosine", "inetorgperson")
    includes = "\n".join(f"include {SCHEMA / name}.schema" for name in schemas)
    (folder / "ad.schema").write_text(AD_SCHEMA, encoding="utf-8")
    return f"""{includes}
include {folder}/ad.schema
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {folder}/db
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by * read
"""


@dataclass(frozen=True)
class Directory:
    url: str
    base: str = BASE

    def settings(self, **extra) -> dict:
        """The app's settings for this directory (search by a service account)."""
        values = {
            "LDAP_URL": self.url,
            "LDAP_BIND_DN": SERVICE_DN,
            "LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "LDAP_SEARCH_BASE": PEOPLE,
            "LDAP_USER_FILTER": "(uid={login})",
            "LDAP_GROUP_SEARCH_BASE": GROUPS,
            "LDAP_ROLE_GROUPS": ";".join(
                (
                    f"admin={group('madoguchi-admins')}",
                    f"supervisor={group('madoguchi-supervisors')}",
                    f"officer={group('madoguchi-officers')}",
                    f"consultant={group('madoguchi-consultants')}",
                )
            ),
            "LDAP_DEPARTMENT_GROUPS": f"fukushi={group('dept-fukushi')};"
            f"shimin={group('dept-shimin')}",
            "LDAP_DISABLED_GROUP": group("madoguchi-disabled"),
            "LDAP_LOCAL_LOGINS": "breakglass",
        }
        values.update(extra)
        return values

    def modify(self, dn: str, changes: dict) -> None:
        """Change an entry as the directory's administrator (ldap3 MODIFY_* changes)."""
        from consult.services.directory import ldap3

        connection = ldap3.Connection(
            ldap3.Server(self.url), ROOT_DN, ROOT_PASSWORD, auto_bind=True
        )
        try:
            assert connection.modify(dn, changes), connection.result
        finally:
            connection.unbind()


@contextmanager
def throwaway_slapd() -> Iterator[Directory]:
    for binary in (SLAPD, SLAPADD):
        if not binary.exists():
            raise RuntimeError(f"{binary} not found: install Debian's 'slapd' package")
    folder = Path(tempfile.mkdtemp(prefix="madoguchi-slapd-"))
    (folder / "db").mkdir()
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder), encoding="utf-8")
    data = folder / "data.ldif"
    data.write_text(_ldif(), encoding="utf-8")
    subprocess.run(
        [str(SLAPADD), "-f", str(conf), "-l", str(data)], check=True, capture_output=True
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d 0: stay in the foreground (so the test run owns the process), log nothing.
    server = subprocess.Popen(
        [str(SLAPD), "-f", str(conf), "-h", f"{url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, "slapd exited at start"
                assert time.monotonic() < deadline, "slapd did not start"
                time.sleep(0.05)
        yield Directory(url=url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
