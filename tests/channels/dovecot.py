"""A real IMAP server for the tests: Debian's dovecot on a free 127.0.0.1 port, own config.

Everything lives in a temporary directory (config, passwd-file, maildirs, sockets, logs), so
the system's dovecot configuration is never read. As root, mail is owned by the `dovecot`
system user (dovecot refuses mail access as UID 0); otherwise by the current user.
`dovecot_tls_server` adds TLS with the test CA's certificate (tests/tls.py): STARTTLS on the
plain port and IMAPS on a second one.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "soudan", "imap-test-password"


@dataclass
class Dovecot:
    port: int
    user: str
    password: str
    settings: dict
    log_file: Path
    imaps_port: int | None = None

    def logins(self) -> list[str]:
        """The server's login lines: ", TLS," in one says that session was encrypted."""
        text = self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""
        return [line for line in text.splitlines() if "imap-login: Info: Login: " in line]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dovecot_server():
    with _dovecot() as server:
        yield server


@pytest.fixture
def dovecot_tls_server(tls_pki):
    """Settings: IMAPS with the test CA trusted; STARTTLS is on `port` (see the tests)."""
    with _dovecot(tls_pki) as server:
        yield server


@contextmanager
def _dovecot(pki=None):
    assert os.path.exists(DOVECOT), "dovecot-imapd is missing: run `make system-deps`"
    root = Path(tempfile.mkdtemp(prefix="madoguchi-dovecot-"))
    root.chmod(0o755)
    if os.getuid() == 0:
        account = pwd.getpwnam("dovecot")
        uid, gid = account.pw_uid, account.pw_gid
        internal_user, internal_group = "dovecot", grp.getgrgid(gid).gr_name
        login_user = "dovenull"
    else:
        uid, gid = os.getuid(), os.getgid()
        internal_user = login_user = pwd.getpwuid(uid).pw_name
        internal_group = grp.getgrgid(gid).gr_name
    home = root / "home"
    home.mkdir()
    os.chown(home, uid, gid)
    port = _free_port()
    imaps_port = _free_port() if pki else None
    if pki:
        tls = f"ssl = yes\nssl_cert = <{pki.cert_file}\nssl_key = <{pki.key_file}"
        imaps = f"address = 127.0.0.1\n    port = {imaps_port}"
    else:
        tls, imaps = "ssl = no", "port = 0"
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", encoding="ascii")
    config = root / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = madoguchi-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{home}/%u/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
# No slowing down of repeated failed logins (auth penalty, failure delay): a test that fails
# logins on purpose would otherwise wait ~10 s for them, and the next test's login too.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%u
}}
""",
        encoding="ascii",
    )
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            output = process.stdout.read().decode() if process.poll() is not None else ""
            process.kill()
            raise RuntimeError(f"dovecot did not start: {output}\n{log}")
        time.sleep(0.1)
    settings = {
        "IMAP_HOST": "127.0.0.1",
        "IMAP_PORT": port,
        "IMAP_SECURITY": "none",
        "IMAP_USER": USER,
        "IMAP_PASSWORD": PASSWORD,
    }
    if pki:
        settings.update(IMAP_PORT=imaps_port, IMAP_SECURITY="ssl", MAIL_CA_FILE=str(pki.ca_file))
    try:
        yield Dovecot(
            port=port,
            user=USER,
            password=PASSWORD,
            settings=settings,
            log_file=root / "dovecot.log",
            imaps_port=imaps_port,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        shutil.rmtree(root, ignore_errors=True)
