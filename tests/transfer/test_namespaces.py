"""The relay and the core in two network namespaces, with the LGWAN side's firewall (issue 17).

Everything else in tests/transfer runs both roles on 127.0.0.1, which proves the protocol but
not the direction of the connections. Here each role is its own process in its own network
namespace, joined by one virtual cable (veth): the relay on 10.231.0.1 (internet zone), the core
on 10.231.0.2 (LGWAN zone). The core's namespace has the firewall a city puts in front of LGWAN
(nftables): nothing may open a connection into it, and it may open connections only to the
relay's port. A LINE message posted to the relay from the internet side becomes a ticket on the
core through the core's own pull, and the relay cannot open a connection to the core.

Needs root (network namespaces) and nftables (`make system-deps` installs it); the databases are
SQLite files, since the core's namespace cannot reach the test's PostgreSQL, by design.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.channels.line.conftest import body_of, text_event
from tests.channels.line.fake_line import SECRET, TOKEN, sign
from tests.tls import server_cert

pytestmark = pytest.mark.slow

KEY = "namespaces-test-shared-key-0123456789abcdef"
RELAY_IP, CORE_IP, PORT = "10.231.0.1", "10.231.0.2", 8443
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

FIREWALL = f"""
table inet lgwan {{
  chain input {{
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
  }}
  chain output {{
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    ct state established,related accept
    ip daddr {RELAY_IP} tcp dport {PORT} accept
  }}
}}
"""


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60, **kw)


def in_ns(ns: str, *args: str, env: dict | None = None, check: bool = True, timeout: int = 90):
    return subprocess.run(
        ["ip", "netns", "exec", ns, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=check,
    )


def python_in(ns: str, code: str, timeout: int = 30) -> subprocess.CompletedProcess:
    """A short Python program run inside a namespace (a citizen, a probe)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return in_ns(ns, sys.executable, "-c", code, env=env, check=False, timeout=timeout)


def connects(ns: str, host: str, port: int) -> bool:
    probe = python_in(
        ns,
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=3).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n",
    )
    return probe.returncode == 0


def role_env(role: str, db_file: Path, folder: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "MADOGUCHI_ROLE": role,
            "MADOGUCHI_DATABASE_URL": f"sqlite:///{db_file}",
            "MADOGUCHI_DATA_DIR": str(folder / "data"),
            "MADOGUCHI_SECRET_KEY": f"{role}-secret-key-that-is-long-enough-0123456789",
            "MADOGUCHI_RELAY_KEY": KEY,
            "MADOGUCHI_LINE_CHANNEL_SECRET": SECRET,
            "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            # No LINE platform in this test: a closed port on each side's own loopback.
            "MADOGUCHI_LINE_API_HOST": "http://127.0.0.1:9",
            "MADOGUCHI_LINE_BURST_QUIET_MS": "0",
            "MADOGUCHI_TOTP_REQUIRED": "none",
            **extra,
        }
    )
    return env


@pytest.fixture
def zones(migrated, tmp_path):
    """Two namespaces, one cable between them, and the LGWAN firewall on the core's side."""
    tag = str(os.getpid())[-6:]
    relay_ns, core_ns = f"mdg-relay-{tag}", f"mdg-core-{tag}"
    relay_if, core_if = f"vr{tag}", f"vc{tag}"
    run("ip", "netns", "add", relay_ns)
    run("ip", "netns", "add", core_ns)
    processes: list[subprocess.Popen] = []
    try:
        run("ip", "link", "add", relay_if, "type", "veth", "peer", "name", core_if)
        run("ip", "link", "set", relay_if, "netns", relay_ns)
        run("ip", "link", "set", core_if, "netns", core_ns)
        for ns, dev, ip in ((relay_ns, relay_if, RELAY_IP), (core_ns, core_if, CORE_IP)):
            run("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "netns", "exec", core_ns, "nft", "-f", "-", input=FIREWALL)

        folders = {}
        for role in ("relay", "core"):
            folder = tmp_path / role
            folder.mkdir()
            shutil.copyfile(migrated["sqlite"], folder / f"{role}.db")
            folders[role] = folder
        yield {
            "relay_ns": relay_ns,
            "core_ns": core_ns,
            "folders": folders,
            "processes": processes,
        }
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for ns in (relay_ns, core_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def start_in(zones, ns: str, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    zones["processes"].append(process)
    return process


def wait_until_listening(zones, ns: str, host: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if connects(ns, host, port):
            return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on {host}:{port}:\n{log.read_text()[-3000:]}")


def test_the_core_pulls_from_the_relay_and_the_relay_cannot_reach_the_core(zones, tls_pki):
    relay_ns, core_ns, folders = zones["relay_ns"], zones["core_ns"], zones["folders"]
    relay_db, core_db = folders["relay"] / "relay.db", folders["core"] / "core.db"

    # The relay, in the internet zone: the `madoguchi relay` command, on the cable's address,
    # over HTTPS with a certificate from the city's own CA (which the core trusts).
    cert, key = server_cert(tls_pki, f"relay-{os.getpid()}", f"IP:{RELAY_IP}")
    relay_log = folders["relay"] / "relay.log"
    start_in(
        zones,
        relay_ns,
        [
            str(BIN / "madoguchi"),
            "relay",
            "--host",
            RELAY_IP,
            "--port",
            str(PORT),
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        role_env("relay", relay_db, folders["relay"]),
        relay_log,
    )
    wait_until_listening(zones, relay_ns, RELAY_IP, PORT, relay_log)

    # A citizen's LINE message reaches the relay from the internet side.
    body = body_of(text_event("国民健康保険の手続きを教えてください"))
    posted = python_in(
        relay_ns,
        "import requests,sys\n"
        f"r = requests.post('https://{RELAY_IP}:{PORT}/channels/line/webhook', "
        f"data={body!r}.encode(), headers={{'Content-Type': 'application/json', "
        f"'X-Line-Signature': {sign(body)!r}}}, timeout=10, verify={str(tls_pki.ca_file)!r})\n"
        "sys.exit(0 if r.status_code == 200 else r.status_code)\n",
    )
    assert posted.returncode == 0, posted.stderr

    # The core, in LGWAN: its own pull through the firewall, then its worker makes the ticket.
    core_env = role_env(
        "core",
        core_db,
        folders["core"],
        MADOGUCHI_RELAY_URL=f"https://{RELAY_IP}:{PORT}",
        MADOGUCHI_RELAY_CA_FILE=str(tls_pki.ca_file),
    )
    pulled = in_ns(core_ns, str(BIN / "madoguchi"), "transfer", "pull", env=core_env)
    assert pulled.returncode == 0, pulled.stderr
    worked = in_ns(core_ns, str(BIN / "madoguchi"), "worker", "--once", env=core_env)
    assert worked.returncode == 0, worked.stderr
    with sqlite3.connect(core_db) as conn:
        rows = conn.execute(
            "SELECT t.channel, e.body FROM ticket t JOIN timeline_entry e ON e.ticket_id = t.id"
            " WHERE e.kind = 'message_in'"
        ).fetchall()
    assert rows == [("line", "国民健康保険の手続きを教えてください")]

    # The relay keeps nothing of it once the core has taken it (the next round acknowledges).
    in_ns(core_ns, str(BIN / "madoguchi"), "transfer", "pull", env=core_env)
    with sqlite3.connect(relay_db) as conn:
        stored = conn.execute("SELECT count(*) FROM line_delivery").fetchone()[0]
        waiting = conn.execute("SELECT count(*) FROM transfer_item").fetchone()[0]
    assert (stored, waiting) == (0, 0)

    # A server on the core's address (its staff pages, say) answers inside LGWAN…
    listener_log = folders["core"] / "listener.log"
    start_in(
        zones,
        core_ns,
        [sys.executable, "-m", "http.server", "--bind", CORE_IP, "8000"],
        dict(os.environ),
        listener_log,
    )
    wait_until_listening(zones, core_ns, CORE_IP, 8000, listener_log)
    # …but the relay cannot open a connection to it, nor to anything else on the core.
    assert not connects(relay_ns, CORE_IP, 8000)
    assert not connects(relay_ns, CORE_IP, 22)
    # And the core reaches the relay's transfer port only: another service there is refused.
    extra_log = folders["relay"] / "extra.log"
    start_in(
        zones,
        relay_ns,
        [sys.executable, "-m", "http.server", "--bind", RELAY_IP, "8001"],
        dict(os.environ),
        extra_log,
    )
    wait_until_listening(zones, relay_ns, RELAY_IP, 8001, extra_log)
    assert connects(core_ns, RELAY_IP, PORT)
    assert not connects(core_ns, RELAY_IP, 8001)
