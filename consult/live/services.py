"""The live channel: events written with the change that caused them, read by a cursor.

`publish()` adds a row inside the caller's transaction, so an event exists exactly when its
change committed. Readers never trust a message bus for content: the table is the truth. A
`Hub` per engine and process wakes the streams waiting in that process:

- PostgreSQL: `publish()` also runs `pg_notify('live', '')`, which PostgreSQL delivers only at
  commit (and drops on rollback); one LISTEN connection per process wakes the hub.
- SQLite (one server): a commit in this process wakes the hub at once; other processes' events
  are found by reading the table every ~0.5 s.

Ids must become visible in id order, or a reader whose cursor passed 11 would never see 10
committed later. SQLite has one writer at a time; on PostgreSQL `publish()` takes a
transaction-level advisory lock, so publishing transactions commit one after another. Publish
late in a transaction, after the slow work.

The hub reads new rows once per wake for all its streams (not once per stream) and keeps the
last few thousand in memory; a stream whose cursor is older reads the table itself.
"""

from __future__ import annotations

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
ADVISORY_LOCK = 0x6C697665  # "live"
KEEP = timedelta(days=1)
POLL_SECONDS = 0.5  # SQLite, or PostgreSQL while its LISTEN connection is down
CACHE_SIZE = 2000
MAX_TEXT = 80  # payload strings are labels and numbers, never free text


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
    db.session.info["live_published"] = True
    return item


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
    if session.info.pop("live_published", False):
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


# --- who may receive what ---------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    staff_id: int
    role: Role
    department_id: int | None

    @classmethod
    def of(cls, staff: Staff) -> Viewer:
        return cls(staff.id, Role(staff.role), staff.department_id)

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


# --- the session behind a stream --------------------------------------------------------------


def session_alive(engine, token_hash: str, idle: timedelta, absolute: timedelta) -> bool:
    """Is the stream's session still valid? Reads only: a stream never keeps a session alive,
    or an unattended page would never idle out; the user's own requests do that."""
    table = StaffSession.__table__
    staff = Staff.__table__
    query = (
        sa.select(table.c.ended_at, table.c.last_seen_at, table.c.created_at, staff.c.active)
        .join(staff, staff.c.id == table.c.staff_id)
        .where(table.c.token_hash == token_hash)
    )
    with _reader(engine) as connection:
        row = connection.execute(query).first()
    if row is None or row.ended_at is not None or not row.active:
        return False
    now = utcnow()
    return now - row.last_seen_at <= idle and now - row.created_at <= absolute


# --- waking the streams of one process --------------------------------------------------------


class Hub:
    """Wakes the streams of one process and reads new events once for all of them."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.condition = threading.Condition()
        self.generation = 0
        self.listening = False
        self._lock = threading.Lock()
        self._cache: list[Event] = []
        self._floor: int | None = None  # the cache holds every event with id > floor
        self._top = 0
        self._read_generation = -1
        self._read_at = 0.0
        self._listener: threading.Thread | None = None
        self.stopped = threading.Event()

    # waking

    def wake(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def wait(self, generation: int, timeout: float) -> int:
        """Block until woken after `generation`, or `timeout` seconds; the new generation."""
        with self.condition:
            if self.generation == generation:
                self.condition.wait(timeout)
            return self.generation

    @property
    def poll_seconds(self) -> float:
        """How often a waiting stream looks at the table without being woken."""
        return 5.0 if self.postgres and self.listening else POLL_SECONDS

    # reading

    def events_after(self, after: int) -> list[Event]:
        with self._lock:
            fresh = time.monotonic() - self._read_at < POLL_SECONDS * 0.8
            if self._read_generation != self.generation or not fresh:
                self._read()
            if self._floor is not None and after >= self._floor:
                return [item for item in self._cache if item.id > after]
        return _rows(self.engine, after)  # an old cursor: read the table itself

    def _read(self) -> None:
        generation = self.generation
        if self._floor is None:
            self._top = self._floor = latest_id_of(self.engine)
        while True:
            rows = _rows(self.engine, self._top)
            self._cache.extend(rows)
            if rows:
                self._top = rows[-1].id
            if len(rows) < 1000:
                break
        if len(self._cache) > CACHE_SIZE:
            dropped = self._cache[: len(self._cache) - CACHE_SIZE]
            self._cache = self._cache[len(dropped) :]
            self._floor = dropped[-1].id
        self._read_generation = generation
        self._read_at = time.monotonic()

    # PostgreSQL

    def start_listening(self) -> None:
        if not self.postgres or self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, name="live-listen", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        while not self.stopped.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    self.wake()  # anything committed while we were not listening
                    while not self.stopped.is_set():
                        for _note in connection.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except Exception:
                log.warning("live: LISTEN connection lost; polling until it is back")
            self.listening = False
            self.stopped.wait(1.0)


_hubs: dict[int, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(engine) -> Hub:
    """The hub of an engine in this process (each app has its own engine, so its own hub)."""
    with _hubs_lock:
        hub = _hubs.get(id(engine))
        if hub is None or hub.engine is not engine:
            hub = _hubs[id(engine)] = Hub(engine)
            sa_event.listen(engine, "engine_disposed", lambda _engine: _drop(id(engine)))
        hub.start_listening()
        return hub


def end_streams(engine) -> None:
    """End this process's streams over `engine` and its LISTEN thread (shutdown, tests); the
    pages reconnect with their cursor, to this process (a new hub) or another."""
    _drop(id(engine))


def _drop(key: int) -> None:
    """The app's engine was disposed (tests, shutdown): stop its LISTEN thread."""
    with _hubs_lock:
        hub = _hubs.pop(key, None)
    if hub is not None:
        hub.stopped.set()
        hub.wake()  # streams waiting on it end
        if hub._listener is not None and hub._listener is not threading.current_thread():
            hub._listener.join(timeout=3)
