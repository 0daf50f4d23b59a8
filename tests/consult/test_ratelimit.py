"""The kernel's shared counts (consult.services.ratelimit), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import RateLimitCounter
from consult.services import ratelimit
from consult.settings import override as override_settings
from consult.timeutil import utcnow


@pytest.fixture(params=["database", "redis"])
def store(request, app):
    """Where the counts live: the database (the default) or Redis (MADOGUCHI_REDIS_URL)."""
    if request.param == "redis":
        override_settings(app, REDIS_URL=request.getfixturevalue("redis_url"))
    return request.param


def test_parse_reads_the_settings_and_refuses_nonsense():
    assert ratelimit.parse("30 per hour;10 per minute") == (
        ratelimit.Limit(30, 3600),
        ratelimit.Limit(10, 60),
    )
    assert ratelimit.parse("3/day") == (ratelimit.Limit(3, 86400),)
    assert ratelimit.parse("5 per 10 minutes") == (ratelimit.Limit(5, 600),)
    for bad in ("", "lots", "0 per minute", "10 per fortnight"):
        with pytest.raises(ValueError):
            ratelimit.parse(bad)


def test_a_bad_setting_stops_the_app_at_start(app_factory):
    with pytest.raises(ValueError):
        app_factory(BOOKING_RATE_LIMIT="as many as you like")
    with pytest.raises(ValueError):
        app_factory(FAQ_VOTE_RATE_LIMIT="10 per fortnight")


def test_hits_count_up_and_a_new_window_starts_at_one(app, store):
    now = utcnow()
    counts = [
        ratelimit.hit("test", "10.0.0.1", timedelta(minutes=1), now=now).hits for _ in range(3)
    ]
    assert counts == [1, 2, 3]
    # Another key and another scope count apart.
    assert ratelimit.hit("test", "10.0.0.2", timedelta(minutes=1), now=now).hits == 1
    assert ratelimit.hit("other", "10.0.0.1", timedelta(minutes=1), now=now).hits == 1
    later = now + timedelta(seconds=61)
    fresh = ratelimit.hit("test", "10.0.0.1", timedelta(minutes=1), now=later)
    assert fresh.hits == 1
    assert fresh.window_ends.timestamp() == int(later.timestamp()) + 60


def test_the_hit_that_reaches_the_threshold_holds_the_window(app, store):
    start = utcnow()
    for minute in range(4):
        count = ratelimit.hit(
            "t",
            "k",
            timedelta(minutes=15),
            now=start + timedelta(minutes=minute * 4),
            hold_at=4,
            hold=timedelta(minutes=15),
        )
    assert count.hits == 4
    # Held for 15 minutes from the fourth hit, not from the window's first.
    assert count.window_ends.timestamp() == int((start + timedelta(minutes=27)).timestamp())


def test_over_answers_the_wait_once_a_limit_is_used_up(app, store):
    now = utcnow()
    limits = ratelimit.parse("3 per minute;100 per hour")
    assert [ratelimit.over("s", "a", limits, now=now) for _ in range(3)] == [0, 0, 0]
    wait = ratelimit.over("s", "a", limits, now=now + timedelta(seconds=20))
    assert 39 <= wait <= 41


def test_the_wait_is_never_longer_than_the_window(app, store):
    """Another process can open the window a moment after this request read the clock (CI saw
    "Retry-After: 61" for "10 per minute"): the answer is at most the window's length."""
    now = utcnow().replace(microsecond=900_000)
    limits = ratelimit.parse("1 per minute")
    assert ratelimit.over("s", "late", limits, now=now + timedelta(seconds=1)) == 0
    assert ratelimit.over("s", "late", limits, now=now) == 60


def test_keys_are_stored_as_digests_and_ended_windows_are_purged(app):
    now = utcnow()
    ratelimit.hit("s", "192.0.2.7", timedelta(minutes=1), now=now - timedelta(minutes=5))
    ratelimit.hit("s", "192.0.2.8", timedelta(minutes=10), now=now)
    db.session.commit()
    keys = list(db.session.scalars(sa.select(RateLimitCounter.key)))
    assert len(keys) == 2
    assert not any("192.0.2" in key for key in keys)
    assert ratelimit.purge(now) == 1
    ratelimit.clear("s", "192.0.2.8")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter)) == 0


def test_in_redis_keys_are_digests_that_expire_and_the_table_stays_empty(app, redis_url):
    import redis

    override_settings(app, REDIS_URL=redis_url)
    now = utcnow()
    assert ratelimit.hit("s", "192.0.2.7", timedelta(minutes=1), now=now).hits == 1
    assert ratelimit.hit("s", "192.0.2.7", timedelta(minutes=1), now=now).hits == 2
    server = redis.Redis.from_url(redis_url)
    [key] = server.keys("*")
    assert b"192.0.2" not in key
    assert 60 < server.ttl(key) <= 120
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter)) == 0
    ratelimit.clear("s", "192.0.2.7")
    assert server.keys("*") == []


def test_the_worker_drops_ended_windows(app, monkeypatch):
    from consult import worker

    now = utcnow()
    ratelimit.hit("s", "192.0.2.7", timedelta(minutes=1), now=now - timedelta(minutes=5))
    ratelimit.hit("s", "192.0.2.8", timedelta(minutes=10), now=now)
    db.session.commit()
    monkeypatch.setitem(ratelimit._last_purge, "at", float("-inf"))
    worker.run_once(app, {"alerts"})
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter)) == 1
