"""The live channel: events written with the change that caused them, read by a cursor.

`publish()` adds a row inside the caller's transaction, so an event exists exactly when its
change committed. Readers never trust a message bus for content: the table is the truth, a bus
only says "read now". Each process has one `Hub` per engine with ONE watcher thread that reads
new rows for every stream of the process and then wakes them; a waiting stream costs no query
at all. What wakes the watcher:

- Redis, when `MADOGUCHI_REDIS_URL` is set (SQLite or PostgreSQL): after each commit that
  published, the committing process publishes the top id to the channel `madoguchi:live`; the
  watcher holds one SUBSCRIBE connection. If Redis is lost it says so in the log, watches the
  table instead, and tries Redis again every few seconds.
- PostgreSQL without Redis: `publish()` also runs `pg_notify('live', '')`, which PostgreSQL
  delivers only at commit (and drops on rollback); the watcher holds one LISTEN connection.
- Otherwise (SQLite, or a push connection that is down): the watcher reads `id > top` every
  `WATCH_SECONDS` (one tiny indexed query a process, empty when nothing happened); a commit in
  this process wakes it at once.
Under push the watcher still reads the table every `SAFETY_SECONDS`, so a lost message (a
publish that failed after its commit) delays an event, never loses it.

Ids must become visible in id order, or a reader whose cursor passed 11 would never see 10
committed later. SQLite has one writer at a time; on PostgreSQL `publish()` takes a
transaction-level advisory lock, so publishing transactions commit one after another. Publish
late in a transaction, after the slow work.

The hub keeps the last few thousand events in memory; a stream whose cursor is older reads the
table itself. It also keeps the registry of the sessions behind its streams and checks them all
in one query every `MADOGUCHI_LIVE_SESSION_CHECK_SECONDS`.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from consult.extensions import db
from consult.live.models import LiveEvent
from consult.models import Role, Staff, StaffSession
from consult.services.actor import DESK_ROLES
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.live")

CHANNEL = "live"
REDIS_CHANNEL = "madoguchi:live"
ADVISORY_LOCK = 0x6C697665  # "live"
KEEP = timedelta(days=1)
WATCH_SECONDS = 0.12  # the table watcher (SQLite, or push down): one query a process per tick
SAFETY_SECONDS = 5.0  # under push, the table is read this often anyway
RETRY_SECONDS = 5.0  # a lost Redis or LISTEN connection is tried again after this
SESSION_CHECK_SECONDS = 3.0
CACHE_SIZE = 2000
MAX_TEXT = 80  # payload strings are labels and numbers, never free text
REDIS_TIMEOUT = 0.5  # a commit never waits longer than this for Redis
REDIS_BACKOFF = 5.0  # after a failed publish, commits skip Redis this long


# --- writing ----------------------------------------------------------------------------------


def publish(kind: str, audience: Iterable[str], payload: dict | None = None) -> LiveEvent:
    """Add an event to the current transaction; it becomes visible when the caller commits.

    The payload carries ids, numbers, states and labels only (no names, no text a citizen
    wrote): events are kept a day and are not reached by disposal.
    """
    payload = dict(payload or {})
    for key, value in payload.items():
        if not isinstance(value, (int, float, bool, str, type(None))):
            raise ValueError(f"live payload {key!r}: only scalars")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ValueError(f"live payload {key!r}: labels only, no free text")
    audience = sorted(set(audience))
    if not audience:
        raise ValueError("a live event needs an audience")
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    item = LiveEvent(kind=kind, audience=audience, payload=payload, created_at=utcnow())
    db.session.add(item)
    db.session.flush()
    if postgres:
        db.session.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    info = db.session.info
    info["live_published"] = max(info.get("live_published") or 0, item.id)
    redis_url = _redis_url()
    if redis_url:
        info["live_redis"] = redis_url
    return item


SESSIONS_ENDED = "session.ended"


def sessions_ended() -> None:
    """Sessions were ended (logout, deactivation): every watcher checks its streams' sessions
    at once instead of at its next round. No page receives this event (no audience matches)."""
    publish(SESSIONS_ENDED, ["sessions"])


def _redis_url() -> str:
    from flask import current_app, has_app_context

    if not has_app_context():
        return ""
    return current_app.config["MADOGUCHI"].get("REDIS_URL") or ""


def latest_id() -> int:
    """The cursor of "now": a page rendered after this read misses nothing newer."""
    return db.session.scalar(sa.select(sa.func.max(LiveEvent.id))) or 0


def prune(now=None) -> int:
    """Worker task: events older than a day go (a page away that long reloads anyway)."""
    cutoff = (now or utcnow()) - KEEP
    result = db.session.execute(sa.delete(LiveEvent).where(LiveEvent.created_at < cutoff))
    return result.rowcount or 0


@sa_event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    top = session.info.pop("live_published", None)
    redis_url = session.info.pop("live_redis", None)
    if not top:
        return
    if redis_url:
        _publish_redis(redis_url, top)
    try:
        bind = session.get_bind()
    except Exception:  # pragma: no cover - a session without a bind published nothing
        return
    hub = _hubs.get(id(bind))
    if hub is not None:
        hub.wake()


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop("live_published", None)
    session.info.pop("live_redis", None)


class _RedisPublisher:
    """One client per Redis URL in this process; after a failure, commits skip Redis for a few
    seconds (the watchers read the table meanwhile), so a dead Redis never slows every commit."""

    def __init__(self) -> None:
        self.clients: dict[str, object] = {}
        self.failed_until = 0.0
        self.lock = threading.Lock()

    def send(self, url: str, top: int) -> bool:
        if time.monotonic() < self.failed_until:
            return False
        import redis

        with self.lock:
            client = self.clients.get(url)
            if client is None:
                client = self.clients[url] = redis.Redis.from_url(
                    url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
                )
        try:
            client.publish(REDIS_CHANNEL, str(top))
            return True
        except redis.RedisError as error:
            self.failed_until = time.monotonic() + REDIS_BACKOFF
            log.warning(
                "live: publishing to Redis failed (%s); streams learn of events from the table",
                type(error).__name__,
            )
            return False


_redis_publisher = _RedisPublisher()


def _publish_redis(url: str, top: int) -> None:
    try:
        _redis_publisher.send(url, top)
    except Exception:  # pragma: no cover - after a commit nothing may raise
        log.exception("live: publishing to Redis failed")


# --- who may receive what ---------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    staff_id: int
    role: Role
    department_id: int | None
    branch_office_id: int | None = None

    @classmethod
    def of(cls, staff: Staff) -> Viewer:
        return cls(staff.id, Role(staff.role), staff.department_id, staff.branch_office_id)

    def may_receive(self, audience: Iterable[str]) -> bool:
        for token in audience:
            kind, _, value = token.partition(":")
            if kind == "staff" and value == str(self.staff_id):
                return True
            if kind == "role" and value == self.role.value:
                return True
            if kind == "desk" and self.role in DESK_ROLES:
                return True
            if (
                kind == "department"
                and self.role == Role.OFFICER
                and self.department_id is not None
                and value == str(self.department_id)
            ):
                return True
            if (
                kind == "branch"
                and self.role == Role.BRANCH
                and self.branch_office_id is not None
                and value == str(self.branch_office_id)
            ):
                return True
            # Tickets are the desk's: an officer sees a case only through its handoff.
            if kind == "ticket" and self.role in DESK_ROLES:
                return True
        return False


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    audience: tuple[str, ...]
    payload: dict

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "payload": self.payload}


def _rows(engine, after: int, limit: int = 1000) -> list[Event]:
    table = LiveEvent.__table__
    query = (
        sa.select(table.c.id, table.c.kind, table.c.audience, table.c.payload)
        .where(table.c.id > after)
        .order_by(table.c.id)
        .limit(limit)
    )
    with _reader(engine) as connection:
        return [
            Event(row.id, row.kind, tuple(row.audience or ()), row.payload or {})
            for row in connection.execute(query)
        ]


def _reader(engine):
    """A connection that only reads: on SQLite a plain BEGIN, not the writers' IMMEDIATE."""
    return engine.connect().execution_options(madoguchi_read_only=True)


def latest_id_of(engine) -> int:
    with _reader(engine) as connection:
        return connection.scalar(sa.select(sa.func.max(LiveEvent.__table__.c.id))) or 0


# --- the sessions behind the streams ----------------------------------------------------------


@dataclass(frozen=True)
class SessionRule:
    idle: timedelta
    absolute: timedelta


def ended_sessions(engine, rules: dict[str, SessionRule]) -> set[str]:
    """Which of these sessions (by token hash) are no longer valid: one query for all of them.

    Reads only: a stream never keeps a session alive, or an unattended page would never idle
    out; the user's own requests do that."""
    if not rules:
        return set()
    table = StaffSession.__table__
    staff = Staff.__table__
    hashes = list(rules)
    found: dict[str, object] = {}
    with _reader(engine) as connection:
        for start in range(0, len(hashes), 500):
            query = (
                sa.select(
                    table.c.token_hash,
                    table.c.ended_at,
                    table.c.last_seen_at,
                    table.c.created_at,
                    staff.c.active,
                )
                .join(staff, staff.c.id == table.c.staff_id)
                .where(table.c.token_hash.in_(hashes[start : start + 500]))
            )
            for row in connection.execute(query):
                found[row.token_hash] = row
    now = utcnow()
    ended = set()
    for token_hash, rule in rules.items():
        row = found.get(token_hash)
        if (
            row is None
            or row.ended_at is not None
            or not row.active
            or now - row.last_seen_at > rule.idle
            or now - row.created_at > rule.absolute
        ):
            ended.add(token_hash)
    return ended


# --- waking the streams of one process --------------------------------------------------------


class Hub:
    """The streams of one process over one engine: one watcher thread reads new events and the
    sessions' state for all of them, then wakes them."""

    def __init__(self, engine, redis_url: str = "") -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.redis_url = redis_url
        self.condition = threading.Condition()
        self.generation = 0
        self.mode = "table"  # what wakes the watcher now: "redis", "listen" or "table"
        self.session_check_seconds = SESSION_CHECK_SECONDS
        self.reads = 0  # table reads and session checks by this hub (diagnostics, tests)
        self.session_checks = 0
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._ids: list[int] = []
        self._floor: int | None = None  # the cache holds every event with id > floor
        self._top = 0
        self._dirty = threading.Event()  # a commit in this process published
        self._sessions: dict[str, SessionRule] = {}
        self._streams: dict[str, int] = {}
        self._ended: set[str] = set()
        self._check_now = False  # a session.ended event was read: check before the round
        self._thread: threading.Thread | None = None
        self.stopped = threading.Event()

    @property
    def listening(self) -> bool:
        return self.mode != "table"

    @property
    def poll_seconds(self) -> float:
        """How long a waiting stream sleeps without being woken: the watcher wakes it."""
        return 60.0

    # waking

    def wake(self) -> None:
        """A commit of this process published: read at once (the next reader, or the watcher)."""
        self._dirty.set()

    def _notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def wait(self, generation: int, timeout: float) -> int:
        """Block until woken after `generation`, or `timeout` seconds; the new generation."""
        with self.condition:
            if self.generation == generation and not self.stopped.is_set():
                self.condition.wait(timeout)
            return self.generation

    # reading

    def events_after(self, after: int, *, fresh: bool = False) -> list[Event]:
        """Events with id > after, in id order. `fresh`: read the table first (a poll)."""
        grew = False
        found = None
        with self._lock:
            if fresh or self._floor is None or self._dirty.is_set():
                grew = self._read()
            if self._floor is not None and after >= self._floor:
                found = self._events[bisect.bisect_right(self._ids, after) :]
        if grew:
            self._notify()  # the other streams learn of what this reader found
        if found is None:
            found = _rows(self.engine, after)  # an old cursor: read the table itself
        return found

    def _read(self) -> bool:
        """New rows into the cache (the caller holds the lock); True when there were any."""
        self._dirty.clear()
        self.reads += 1
        if self._floor is None:
            self._top = self._floor = latest_id_of(self.engine)
            return False
        grew = False
        while True:
            rows = _rows(self.engine, self._top)
            if rows:
                grew = True
                if any(item.kind == SESSIONS_ENDED for item in rows):
                    self._check_now = True
                self._events.extend(rows)
                self._ids.extend(item.id for item in rows)
                self._top = rows[-1].id
            if len(rows) < 1000:
                break
        if len(self._events) > CACHE_SIZE:
            cut = len(self._events) - CACHE_SIZE
            self._floor = self._ids[cut - 1]
            del self._events[:cut]
            del self._ids[:cut]
        return grew

    def refresh(self) -> None:
        """Read new rows and wake the streams if there were any (the watcher's step)."""
        with self._lock:
            grew = self._read()
        if grew:
            self._notify()

    # sessions

    def register(self, token_hash: str, rule: SessionRule) -> None:
        with self._lock:
            self._sessions[token_hash] = rule
            self._streams[token_hash] = self._streams.get(token_hash, 0) + 1

    def unregister(self, token_hash: str) -> None:
        with self._lock:
            left = self._streams.get(token_hash, 0) - 1
            if left > 0:
                self._streams[token_hash] = left
            else:
                self._streams.pop(token_hash, None)
                self._sessions.pop(token_hash, None)
                self._ended.discard(token_hash)

    def session_ended(self, token_hash: str) -> bool:
        return token_hash in self._ended

    def check_sessions(self) -> None:
        with self._lock:
            rules = {h: r for h, r in self._sessions.items() if h not in self._ended}
        if not rules:
            return
        self.session_checks += 1
        ended = ended_sessions(self.engine, rules)
        if ended:
            with self._lock:
                self._ended |= ended & set(self._sessions)
            self._notify()

    # the watcher

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="live-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        source = None
        retry_at = 0.0
        last_read = last_check = 0.0
        down_said = False
        while not self.stopped.is_set():
            try:
                now = time.monotonic()
                wants_push = bool(self.redis_url) or self.postgres
                if source is None and wants_push and now >= retry_at:
                    try:
                        source = _RedisSource(self.redis_url) if self.redis_url else _Listen(self)
                    except Exception as error:
                        retry_at = now + RETRY_SECONDS
                        if not down_said:  # once, not every retry
                            down_said = True
                            log.warning(
                                "live: %s unavailable (%s); watching the table",
                                "Redis" if self.redis_url else "LISTEN",
                                type(error).__name__,
                            )
                        self.mode = "table"
                    else:
                        down_said = False
                        self.mode = source.name
                        log.info("live: woken by %s", source.name)
                        last_read = 0.0  # anything committed while nobody listened
                if source is not None:
                    try:
                        arrived = source.wait(1.0)
                    except Exception as error:
                        log.warning(
                            "live: %s connection lost (%s); watching the table until it is back",
                            source.name,
                            type(error).__name__,
                        )
                        source.close()
                        source = None
                        down_said = True
                        self.mode = "table"
                        retry_at = time.monotonic() + RETRY_SECONDS
                        arrived = True
                    if arrived or time.monotonic() - last_read >= SAFETY_SECONDS:
                        self.refresh()
                        last_read = time.monotonic()
                    elif self._dirty.is_set():
                        self.refresh()
                else:
                    self._dirty.wait(WATCH_SECONDS)
                    self.refresh()
                    last_read = time.monotonic()
                if self._check_now or time.monotonic() - last_check >= self.session_check_seconds:
                    self._check_now = False
                    last_check = time.monotonic()
                    self.check_sessions()
            except Exception as error:  # the database away for a moment: try again shortly
                log.warning("live: the watcher could not read (%s)", type(error).__name__)
                self.stopped.wait(1.0)
        if source is not None:
            source.close()


class _Listen:
    """PostgreSQL LISTEN on one autocommit connection."""

    name = "listen"

    def __init__(self, hub: Hub) -> None:
        import psycopg

        conninfo = hub.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        self.connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        arrived = False
        for _note in self.connection.notifies(timeout=timeout, stop_after=1):
            arrived = True
        return arrived

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already broken
            self.connection.close()


class _RedisSource:
    """SUBSCRIBE madoguchi:live on one connection (with a health check, so a silently dead
    connection is found within seconds)."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=5
        )
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(REDIS_CHANNEL)
        # The subscription's confirmation: proves the connection now, not at the first event.
        deadline = time.monotonic() + 2
        while True:
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise redis.ConnectionError("no subscription confirmation")

    def wait(self, timeout: float) -> bool:
        arrived = False
        message = self.pubsub.get_message(timeout=timeout)
        while message is not None:  # a burst makes one read
            arrived = arrived or message["type"] == "message"
            message = self.pubsub.get_message(timeout=0)
        return arrived

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already broken
            self.pubsub.close()
            self.client.close()


_hubs: dict[int, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(engine, redis_url: str | None = None) -> Hub:
    """The hub of an engine in this process (each app has its own engine, so its own hub).

    `redis_url` defaults to the current app's MADOGUCHI_REDIS_URL."""
    if redis_url is None:
        redis_url = _redis_url()
    with _hubs_lock:
        hub = _hubs.get(id(engine))
        if hub is None or hub.engine is not engine:
            hub = _hubs[id(engine)] = Hub(engine, redis_url)
            sa_event.listen(
                engine, "engine_disposed", lambda _engine: _drop(id(engine), disposed=True)
            )
        hub.start()
        return hub


def end_streams(engine) -> None:
    """End this process's streams over `engine` and its watcher (shutdown, tests); the pages
    reconnect with their cursor, to this process (a new hub) or another."""
    _drop(id(engine))


def _drop(key: int, disposed: bool = False) -> None:
    """Stop a hub's watcher; its streams end."""
    with _hubs_lock:
        hub = _hubs.pop(key, None)
    if hub is not None:
        hub.stopped.set()
        hub._dirty.set()
        hub._notify()  # streams waiting on it end
        if hub._thread is not None and hub._thread is not threading.current_thread():
            hub._thread.join(timeout=3)
        if disposed:
            # The engine was disposed (tests, shutdown) while the watcher may have taken a
            # connection from its fresh pool: give that one back too.
            hub.engine.dispose()
