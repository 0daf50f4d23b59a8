"""Counts shared by every process: rate limits (booking, FAQ votes) and login failures.

Why the database: gunicorn runs several workers and production may run several servers; a count
kept in process memory lets each of them grant the whole limit (four workers let 40 bookings
through a "10 per minute" limit). Here every hit is one statement, an upsert that adds one and
returns the new count (`INSERT … ON CONFLICT (scope, key) DO UPDATE SET hits = hits + 1 …
RETURNING`), so the increment and the answer are one atomic step on SQLite and PostgreSQL alike:
concurrent requests queue on the row and each sees a different count.

A counter row is a window that starts at its first hit and lasts `period`; a hit after the window
ended starts a new one at 1 (in the same statement, so no reset can race with a hit). `hold_at`
lets a caller keep the row for `hold` from the hit that reaches a threshold (a login lock lasts 15
minutes from the failure that locks it, whenever the window began).

With MADOGUCHI_REDIS_URL set, the counts live in Redis instead (the same windows, one Lua
script per hit, atomic on the Redis server; keys expire by themselves); the database is the
default and needs nothing more.

In the database, the hit is written in the caller's session and flushed, never committed: a
caller that must keep the count although its request answers with an error (429) commits it
itself, in the web layer.
Keys are stored as SHA-256 digests, so the table holds no address or login (nothing here for
disposal or disclosure to reach).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context

from consult.extensions import db
from consult.models import RateLimitCounter
from consult.timeutil import utcnow
from consult.upsert import insert as upsert_insert

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Limit:
    amount: int
    seconds: int


@dataclass(frozen=True)
class Count:
    hits: int
    window_ends: datetime

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least 1, for a Retry-After header)."""
        return max(1, int((self.window_ends - now).total_seconds() + 0.999))


def parse(text: str) -> tuple[Limit, ...]:
    """Limits written as in the settings: "30 per hour;10 per minute" (also "5/10 minutes")."""
    limits = []
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        match = _LIMIT.match(part)
        if not match or int(match[1]) < 1:
            raise ValueError(f"rate limit not understood: {part!r} (e.g. '10 per minute')")
        limits.append(Limit(int(match[1]), int(match[2] or 1) * _UNITS[match[3]]))
    if not limits:
        raise ValueError("rate limit is empty (e.g. '10 per minute')")
    return tuple(limits)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# KEYS[1]: the counter; ARGV: now, period, hold_at (0: none), hold (seconds since the epoch and
# seconds). The same rule as the database's upsert, in one atomic script.
_REDIS_HIT = """
local now, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local hold_at, hold = tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('HGET', KEYS[1], 'ends')
local ends = raw and tonumber(raw) or 0
local hits
if ends <= now then
  hits = 1
  ends = now + period
else
  hits = tonumber(redis.call('HGET', KEYS[1], 'hits')) + 1
  if hold_at > 0 and hits == hold_at then ends = now + hold end
end
redis.call('HSET', KEYS[1], 'hits', hits, 'ends', ends)
redis.call('EXPIRE', KEYS[1], ends - now + 60)
return {hits, ends}
"""


def _redis():
    """The Redis client when MADOGUCHI_REDIS_URL is configured (one per app), else None."""
    if not has_app_context():
        return None
    url = current_app.config["MADOGUCHI"].get("REDIS_URL")
    if not url:
        return None
    client = current_app.extensions.get("madoguchi_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        current_app.extensions["madoguchi_redis"] = client
    return client


def _redis_key(scope: str, key: str) -> str:
    return f"madoguchi:ratelimit:{scope}:{_digest(key)}"


def hit(
    scope: str,
    key: str,
    period: timedelta,
    *,
    now: datetime | None = None,
    hold_at: int | None = None,
    hold: timedelta | None = None,
) -> Count:
    """Count one hit for `key` in `scope` and answer the count including it, atomically."""
    now_s = _epoch(now or utcnow())
    period_s = max(1, int(period.total_seconds()))
    redis = _redis()
    if redis is not None:
        hold_s = int(hold.total_seconds()) if hold is not None else 0
        args = (now_s, period_s, hold_at or 0, hold_s)
        hits, ends = redis.eval(_REDIS_HIT, 1, _redis_key(scope, key), *args)
        return Count(hits=int(hits), window_ends=_moment(int(ends)))
    table = RateLimitCounter.__table__
    c = table.c
    insert = upsert_insert(table)
    ended = c.window_ends <= now_s
    whens = [(ended, now_s + period_s)]
    if hold_at is not None and hold is not None:
        whens.append((c.hits + 1 == hold_at, now_s + int(hold.total_seconds())))
    statement = (
        insert.values(
            scope=scope, key=_digest(key), hits=1, window_ends=now_s + period_s, last_hit=now_s
        )
        .on_conflict_do_update(
            index_elements=["scope", "key"],
            set_={
                "hits": sa.case((ended, 1), else_=c.hits + 1),
                "window_ends": sa.case(*whens, else_=c.window_ends),
                "last_hit": now_s,
            },
        )
        .returning(c.hits, c.window_ends)
    )
    hits, window_ends = db.session.execute(statement).one()
    return Count(hits=hits, window_ends=_moment(window_ends))


def over(scope: str, key: str, limits: tuple[Limit, ...], now: datetime | None = None) -> int:
    """Count one hit against every limit; the seconds to wait when one is exceeded, else 0."""
    now = now or utcnow()
    wait = 0
    for limit in limits:  # always the same order, so two requests never lock rows crosswise
        count = hit(
            f"{scope}:{limit.amount}/{limit.seconds}",
            key,
            timedelta(seconds=limit.seconds),
            now=now,
        )
        if count.hits > limit.amount:
            # Never more than the window: another process may have opened it a second after
            # this request read the clock, and "61 seconds" for "10 per minute" reads as a bug.
            wait = max(wait, min(limit.seconds, count.seconds_left(now)))
    return wait


def clear(scope: str, key: str) -> None:
    redis = _redis()
    if redis is not None:
        redis.delete(_redis_key(scope, key))
        return
    db.session.execute(
        sa.delete(RateLimitCounter).where(
            RateLimitCounter.scope == scope, RateLimitCounter.key == _digest(key)
        )
    )


def purge(now: datetime | None = None) -> int:
    """Drop the ended windows: they count as zero anyway (Redis keys expire by themselves)."""
    result = db.session.execute(
        sa.delete(RateLimitCounter).where(RateLimitCounter.window_ends <= _epoch(now or utcnow()))
    )
    return result.rowcount or 0


PURGE_EVERY_SECONDS = 600
_last_purge = {"at": float("-inf")}


def purge_task() -> None:
    """Worker task: every ten minutes, drop the ended windows (they would only grow the table)."""
    now = time.monotonic()
    if now - _last_purge["at"] < PURGE_EVERY_SECONDS:
        return
    _last_purge["at"] = now
    purge()  # the worker commits the round
