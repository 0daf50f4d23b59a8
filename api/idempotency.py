"""`Idempotency-Key` on the API's POSTs (issue 20): a client that is not sure its request
arrived (a timeout, a dropped connection) sends it again with the same key, and gets the first
answer instead of a second ticket.

- The same key with the same request (method, path and body) within KEEP_FOR: the first
  answer, as it was (status and body), marked `Idempotent-Replayed: true`.
- The same key with another request: refused (422, `idempotency_key_reused`).
- Keys are per token: two integrations never see each other's.
- Concurrency: the key's row is inserted first, in the request's own transaction, with
  ON CONFLICT DO NOTHING on a unique constraint. On PostgreSQL a second transaction inserting
  the same key waits for the first to end and then finds its row; SQLite takes its write lock
  at BEGIN, so the second request starts after the first has committed. A request that fails
  rolls its key back with everything else, so the client may try again with it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from api.models import ApiIdempotencyKey
from consult import upsert
from consult.extensions import db
from consult.services.errors import ValidationFailed
from consult.timeutil import utcnow

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


class KeyReused(ValidationFailed):
    """The key was used for another request."""


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: str
    location: str | None


def check_key(raw: str) -> str:
    if not KEY_PATTERN.fullmatch(raw):
        raise ValidationFailed(
            f"{HEADER} は、1〜255文字の英数字と記号（空白を含まない）で指定してください。"
        )
    return raw


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A digest of the request: JSON bodies compared by their content (key order and spacing
    do not count), anything else byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body or b"null"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8", "surrogatepass")
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode("utf-8", "surrogatepass"), b"\0", canonical):
        digest.update(part)
    return digest.hexdigest()


def claim(integration_id: int, key: str, print_: str) -> Stored | None:
    """Take the key for this request (None: go on and answer it) or give the first answer.

    Raises KeyReused when the key belongs to another request. Keys older than KEEP_FOR are
    deleted first (this one included: after a day the key is new again)."""
    now = utcnow()
    db.session.execute(
        sa.delete(ApiIdempotencyKey).where(ApiIdempotencyKey.created_at < now - KEEP_FOR)
    )
    added = upsert.insert_ignore(
        ApiIdempotencyKey.__table__,
        {
            "integration_id": integration_id,
            "key": key,
            "fingerprint": print_,
            "created_at": now,
        },
        ("integration_id", "key"),
        returning=ApiIdempotencyKey.__table__.c.id,
    ).scalar()
    if added is not None:
        return None
    row = db.session.execute(
        sa.select(
            ApiIdempotencyKey.fingerprint,
            ApiIdempotencyKey.status_code,
            ApiIdempotencyKey.body,
            ApiIdempotencyKey.location,
        ).where(ApiIdempotencyKey.integration_id == integration_id, ApiIdempotencyKey.key == key)
    ).one()
    if row.fingerprint != print_ or row.status_code is None:
        raise KeyReused(
            f"この {HEADER} は別の内容のリクエストに使われています。"
            "新しいリクエストには新しいキーを使ってください。"
        )
    return Stored(row.status_code, row.body or "", row.location)


def store(integration_id: int, key: str, status_code: int, body: str, location: str | None):
    """The first answer, kept with the key in the same transaction as what it reports."""
    db.session.execute(
        sa.update(ApiIdempotencyKey)
        .where(ApiIdempotencyKey.integration_id == integration_id, ApiIdempotencyKey.key == key)
        .values(status_code=status_code, body=body, location=location)
    )
