"""Signed requests and batch files between the relay and the core (HMAC-SHA256, shared key).

A request carries its time (unix seconds), a random nonce and a signature over the method, the
path, both of those and the SHA-256 of the body. The relay refuses a request without them, with
a wrong signature, a time outside the allowed skew, or a nonce it has seen (kept for twice the
skew, so a replay is refused for as long as its time would pass). The answer is signed too,
bound to the request's nonce, so the core knows it talks to its relay and not to whoever
answers at that address. Batch files carry the same nonce and time, signed over their JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import sqlalchemy as sa

from consult import upsert
from consult.extensions import db
from consult.timeutil import utcnow
from consult.transfer.models import TransferNonce

VERSION = b"madoguchi-transfer-v1"
TIMESTAMP = "X-Madoguchi-Timestamp"
NONCE = "X-Madoguchi-Nonce"
SIGNATURE = "X-Madoguchi-Signature"
FILE_FORMAT = "madoguchi-transfer-batch/1"


class Refused(Exception):
    """A request or file that is not from the other side, or not fresh. The reason is for the
    log; the answer to the sender says only that it was refused."""


def _digest(key: str, *parts: bytes) -> str:
    return hmac.new(key.encode(), b"\n".join((VERSION, *parts)), hashlib.sha256).hexdigest()


def _body_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest().encode()


def request_signature(key: str, method: str, path: str, stamp: str, nonce: str, body: bytes) -> str:
    return _digest(
        key,
        method.upper().encode(),
        path.encode(),
        stamp.encode(),
        nonce.encode(),
        _body_hash(body),
    )


def sign_request(key: str, method: str, path: str, body: bytes, now: float | None = None) -> dict:
    stamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    return {
        TIMESTAMP: stamp,
        NONCE: nonce,
        SIGNATURE: request_signature(key, method, path, stamp, nonce, body),
    }


def response_signature(key: str, nonce: str, body: bytes) -> str:
    return _digest(key, b"response", nonce.encode(), _body_hash(body))


def check_response(key: str, nonce: str, body: bytes, signature: str | None) -> None:
    if not signature or not hmac.compare_digest(response_signature(key, nonce, body), signature):
        raise Refused("the answer is not signed with the shared key")


def _fresh(stamp: str | None, max_skew: int, now: float | None) -> int:
    try:
        value = int(stamp or "")
    except ValueError:
        raise Refused("no time stamp") from None
    if abs((now if now is not None else time.time()) - value) > max_skew:
        raise Refused("time stamp outside the allowed clock skew")
    return value


def remember_nonce(nonce: str, max_skew: int) -> None:
    """Keep the nonce (in the caller's transaction); Refused if it was seen before."""
    if not nonce or len(nonce) > 64:
        raise Refused("no nonce")
    db.session.execute(
        sa.delete(TransferNonce).where(
            TransferNonce.seen_at < utcnow() - timedelta(seconds=2 * max_skew)
        )
    )
    added = upsert.insert_ignore(
        TransferNonce.__table__,
        {"nonce": nonce, "seen_at": utcnow()},
        ["nonce"],
        returning=TransferNonce.__table__.c.nonce,
    ).first()
    if added is None:
        raise Refused("nonce seen before (a replayed request)")


def verify_request(
    key: str,
    method: str,
    path: str,
    headers,
    body: bytes,
    max_skew: int,
    now: float | None = None,
) -> str:
    """The request's nonce if it is signed with the key, fresh and new; Refused otherwise."""
    signature = headers.get(SIGNATURE)
    nonce = headers.get(NONCE) or ""
    stamp = headers.get(TIMESTAMP)
    if not signature:
        raise Refused("unsigned request")
    expected = request_signature(key, method, path, stamp or "", nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise Refused("wrong signature")
    _fresh(stamp, max_skew, now)
    remember_nonce(nonce, max_skew)
    return nonce


# --- batch files -----------------------------------------------------------------------------


def _canonical(batch: dict) -> bytes:
    return json.dumps(batch, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign_file(key: str, batch: dict) -> bytes:
    batch = {
        **batch,
        "format": FILE_FORMAT,
        "created": int(time.time()),
        "nonce": secrets.token_hex(16),
    }
    signature = _digest(key, b"file", _canonical(batch))
    return json.dumps({"batch": batch, "signature": signature}, ensure_ascii=False).encode()


def open_file(key: str, data: bytes) -> dict:
    """The batch of a file signed with the key; Refused if it is not one (no freshness check:
    a file may travel for days through a city's file-transfer system; items dedupe replays)."""
    try:
        document = json.loads(data)
        batch, signature = document["batch"], document["signature"]
    except (ValueError, KeyError, TypeError):
        raise Refused("not a transfer batch file") from None
    if not isinstance(batch, dict) or batch.get("format") != FILE_FORMAT:
        raise Refused("not a transfer batch file")
    if not isinstance(signature, str) or not hmac.compare_digest(
        _digest(key, b"file", _canonical(batch)), signature
    ):
        raise Refused("wrong signature")
    return batch
