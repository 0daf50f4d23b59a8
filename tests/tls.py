"""A throwaway PKI for TLS tests, made with the `openssl` binary into a temporary folder.

Two certificate authorities: `ca_file` signed the servers' certificates, `other_ca_file` signed
nothing we serve (what a server with a certificate from somewhere else looks like). The server
certificate names 127.0.0.1 and localhost; a second one, from the same CA, names another host
only. Keys and certificates live for a day and are never written inside the repository.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SERVER_NAMES = "IP:127.0.0.1,DNS:localhost"
OTHER_HOST = "mail.example.lg.jp"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    other_ca_file: Path
    cert_file: Path
    key_file: Path
    wrong_name_cert_file: Path
    wrong_name_key_file: Path

    def server_context(self, *, wrong_name: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if wrong_name:
            context.load_cert_chain(self.wrong_name_cert_file, self.wrong_name_key_file)
        else:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _openssl(*args: str | Path) -> None:
    subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN=madoguchi test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _server(folder: Path, name: str, ca: tuple[Path, Path], alt_names: str) -> tuple[Path, Path]:
    cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={alt_names}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n",
        encoding="ascii",
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", request, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", "2",
        "-days", "1", "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> Pki:
    assert Path(OPENSSL).exists(), "openssl is missing: run `make system-deps`"
    ca = _ca(folder, "ca")
    other_ca, _ = _ca(folder, "other-ca")
    cert, key = _server(folder, "server", ca, SERVER_NAMES)
    wrong_cert, wrong_key = _server(folder, "wrong-name", ca, f"DNS:{OTHER_HOST}")
    return Pki(ca[0], other_ca, cert, key, wrong_cert, wrong_key)


def server_cert(pki: Pki, name: str, alt_names: str) -> tuple[Path, Path]:
    """Another server certificate from the same CA, for other names (e.g. "IP:10.231.0.1")."""
    ca = (pki.ca_file, pki.ca_file.with_suffix(".key"))
    return _server(pki.ca_file.parent, name, ca, alt_names)
