"""The one leased work queue: claims, heartbeats, attempts and back-off for every kind of work.

The outbox, LINE events, LINE media and inbound mail are rows in their own tables, but they are
claimed, kept, retried and given up in one way, here:

- A claim is one conditional UPDATE (`… WHERE id = ? AND status/claim still as read`) whose row
  count proves it ours; on PostgreSQL the candidates are picked with FOR UPDATE SKIP LOCKED, so
  two processes or machines never hold one row.
- A claim names its holder (`host:pid:random`), and every process that claims keeps a heartbeat
  row in `worker_heartbeat` fresh every HEARTBEAT_SECONDS. A claim whose holder has not beaten for
  STALE_SECONDS is due again: a killed worker's rows are taken back within seconds, not after a
  five-minute lease.
- The transaction that finishes a row first `hold()`s it (a conditional UPDATE on our claim), so
  a holder whose claim was taken back cannot finish the row too; on PostgreSQL the row stays
  locked until that transaction ends, so a second claimer waits and then finds it finished.
- Attempts and back-off: `backoff()` and `settle_failure()`, with a maximum, then FAILED with the
  reason.

Each plugin declares its queues (`QueueSpec`) in its `Plugin`, so the administrators' page of
failed work and `madoguchi queue` know every queue without knowing any channel.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from consult.extensions import db
from consult.models import WorkerHeartbeat
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.queue")

HEARTBEAT_SECONDS = 2.0
# A holder silent this long is dead: five missed beats, far above a pause of the database.
STALE_SECONDS = 10.0


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


# --- who holds a claim -----------------------------------------------------------------------

_worker_id: str | None = None
_worker_pid: int | None = None


def worker_id() -> str:
    """This process's holder name: host:pid:random (random: a pid is reused after a restart)."""
    global _worker_id, _worker_pid
    if _worker_id is None or _worker_pid != os.getpid():
        _worker_pid = os.getpid()
        _worker_id = f"{socket.gethostname()[:40]}:{_worker_pid}:{secrets.token_hex(4)}"
    return _worker_id


def beat(holder: str | None = None) -> None:
    """Record that this process is alive, on a connection of its own (never the session's)."""
    holder = holder or worker_id()
    now = utcnow()
    table = WorkerHeartbeat.__table__
    with db.engine.begin() as connection:
        updated = connection.execute(
            sa.update(table).where(table.c.worker_id == holder).values(beat_at=now)
        )
        if updated.rowcount == 0:
            connection.execute(
                sa.insert(table).values(worker_id=holder, started_at=now, beat_at=now)
            )


def _forget(holder: str) -> None:
    table = WorkerHeartbeat.__table__
    with db.engine.begin() as connection:
        connection.execute(sa.delete(table).where(table.c.worker_id == holder))


@contextmanager
def heartbeat(app, interval: float = HEARTBEAT_SECONDS):
    """Keep this process's heartbeat fresh while the block runs (a worker, `mail ingest` …).

    A thread beats at once and then every `interval` seconds, and removes the row when the block
    ends (the claims still held, none normally, are then due at once). All of it in the thread,
    on connections of its own: on SQLite a beat waits for the write lock, and the caller's own
    open transaction must never make it wait for itself.
    """
    holder = worker_id()
    stop = threading.Event()

    def loop() -> None:
        with app.app_context():
            while True:
                try:
                    beat(holder)
                except Exception:  # a database hiccup: the next beat tries again
                    log.warning("heartbeat failed; trying again", exc_info=True)
                if stop.wait(interval):
                    break
            try:
                _forget(holder)
            except Exception:
                log.warning("could not remove the heartbeat", exc_info=True)

    thread = threading.Thread(target=loop, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        stop.set()
        thread.join(timeout=1)  # a process that exits sooner leaves a row that goes stale


def end_reads() -> None:
    """End the session's transaction before a `heartbeat` block ends; its work is committed.

    What a command reads after its task's commit opens another transaction, and on SQLite
    every transaction takes the write lock (BEGIN IMMEDIATE): the heartbeat's last write,
    removing this process's row, then waited for it until the join gave up (1 s of every
    `mail ingest`), and the row was left to go stale.
    """
    db.session.commit()


def prune_heartbeats() -> None:
    """Forget processes silent for an hour (the table stays a handful of rows)."""
    table = WorkerHeartbeat.__table__
    db.session.execute(sa.delete(table).where(table.c.beat_at < utcnow() - timedelta(hours=1)))


# --- what a queue is -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    """One queue: a table of work rows, declared by the plugin that owns it.

    The table has `status`, `attempts`, `claimed_by`, `claimed_at` and `last_error` (or the
    columns named here). `pending` is the status of waiting work, `claimed` the status a claim
    sets (the same as `pending` when the table has no in-progress status), `failed` the status of
    work given up. `describe(row)` says what the row is without any personal data (it is shown on
    the administrators' page); `retry(row)`, when given, puts a failed row back (default: pending
    and due now, attempts kept, so a row that fails again is given up at once).
    """

    name: str  # short, used in ids on the page and the command line: "line-event"
    label: str  # Japanese: 「LINE受信イベント」
    model: type
    pending: str
    claimed: str
    failed: str
    describe: Callable[[object], str]
    time_column: str = "created_at"  # when the work arrived, shown in the list
    due_column: str | None = "next_attempt_at"
    error_column: str = "last_error"
    retry: Callable[[object], None] | None = None

    @property
    def table(self) -> sa.Table:
        return self.model.__table__


def _live_holder(table: sa.Table, now: datetime) -> sa.ColumnElement:
    beats = WorkerHeartbeat.__table__
    return (
        sa.select(beats.c.worker_id)
        .where(
            beats.c.worker_id == table.c.claimed_by,
            beats.c.beat_at >= now - timedelta(seconds=STALE_SECONDS),
        )
        .exists()
    )


def abandoned(spec: QueueSpec, now: datetime | None = None) -> sa.ColumnElement:
    """A claim whose holder is gone: no heartbeat for STALE_SECONDS (nor the claim's age)."""
    now = now or utcnow()
    t = spec.table
    return sa.and_(
        t.c.claimed_by.is_not(None),
        t.c.status.in_({spec.pending, spec.claimed}),
        t.c.claimed_at < now - timedelta(seconds=STALE_SECONDS),
        ~_live_holder(t, now),
    )


def due(spec: QueueSpec, now: datetime | None = None) -> sa.ColumnElement:
    """Waiting work whose time has come, or work a dead holder left behind."""
    now = now or utcnow()
    t = spec.table
    waiting = [t.c.status == spec.pending, t.c.claimed_by.is_(None)]
    if spec.due_column is not None:
        waiting.append(t.c[spec.due_column] <= now)
    return sa.or_(sa.and_(*waiting), abandoned(spec, now))


def claim(
    spec: QueueSpec,
    limit: int,
    *,
    holder: str | None = None,
    where: Sequence[sa.ColumnElement] = (),
    order_by: Sequence = (),
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Claim up to `limit` due rows for `holder` and commit the claims; returns their ids.

    Each claim is a conditional UPDATE on the status and claim read with the candidate: a row
    another process claimed in between keeps its holder (row count 0).
    """
    holder = holder or worker_id()
    now = utcnow()
    t = spec.table
    query = sa.select(t.c.id, t.c.status, t.c.claimed_by).where(due(spec, now), *where)
    if ids is not None:
        query = query.where(t.c.id.in_(list(ids)))
    query = query.order_by(*(order_by or (t.c.id,))).limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=t, skip_locked=True)
    claimed = []
    taken_back = []
    for row in db.session.execute(query).all():
        previous = (
            t.c.claimed_by == row.claimed_by
            if row.claimed_by is not None
            else t.c.claimed_by.is_(None)
        )
        result = db.session.execute(
            sa.update(t)
            .where(t.c.id == row.id, t.c.status == row.status, previous)
            .values(status=spec.claimed, claimed_by=holder, claimed_at=now)
        )
        if result.rowcount == 1:
            claimed.append(row.id)
            if row.claimed_by is not None:
                taken_back.append(row.id)
    db.session.commit()
    if taken_back:
        log.warning("%s: took back %s claim(s) of a stopped process", spec.name, len(taken_back))
    return claimed


def hold(spec: QueueSpec, ids: int | Sequence[int], holder: str | None = None) -> list[int]:
    """Confirm (and on PostgreSQL lock, until the transaction ends) rows still claimed by us.

    The first statement of the transaction that finishes claimed work: a row whose claim was
    taken back is not among the answer, and must not be finished by us.
    """
    holder = holder or worker_id()
    wanted = [ids] if isinstance(ids, int) else list(ids)
    if not wanted:
        return []
    t = spec.table
    held = db.session.execute(
        sa.update(t)
        .where(t.c.id.in_(wanted), t.c.claimed_by == holder)
        .values(claimed_at=utcnow())
        .returning(t.c.id)
    )
    return sorted(held.scalars())


def release(row) -> None:
    """The row is finished (or waits for a retry): nobody holds it any more."""
    row.claimed_by = None
    row.claimed_at = None


def settle_failure(
    spec: QueueSpec, row, reason: str, max_attempts: int, *, count=True, final=False
) -> bool:
    """A failed attempt: back to waiting after `backoff()`, or FAILED once `max_attempts` were
    made (or at once when `final`: a refusal that no retry changes). Returns True when the row
    is given up. `count=False` when the attempt was counted before it started (the outbox
    records each attempt before handing the message over)."""
    if count:
        row.attempts = (row.attempts or 0) + 1
    release(row)
    setattr(row, spec.error_column, reason[: _length(spec, spec.error_column)])
    if final or row.attempts >= max_attempts:
        row.status = spec.failed
        return True
    row.status = spec.pending
    if spec.due_column is not None:
        setattr(row, spec.due_column, utcnow() + backoff(row.attempts))
    return False


def _length(spec: QueueSpec, column: str) -> int:
    length = getattr(spec.table.c[column].type, "length", None)
    return length or 2000


# --- failed work, for administrators -----------------------------------------------------------


def specs() -> list[QueueSpec]:
    from consult import plugins

    return plugins.registry().queues


def spec_named(name: str) -> QueueSpec | None:
    return next((spec for spec in specs() if spec.name == name), None)


_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def redact(text: str | None) -> str:
    """A reason without mail addresses (an SMTP server's answer may quote the recipient)."""
    return _ADDRESS.sub("（アドレス）", text or "")[:300]


@dataclass
class FailedItem:
    key: str  # "<queue>:<id>", what `madoguchi queue retry` takes
    queue: str
    label: str
    id: int
    at: datetime | None
    attempts: int
    reason: str
    description: str


def failed_items(limit: int = 200) -> list[FailedItem]:
    """Every given-up row of every queue, newest first; no personal data."""
    items = []
    for spec in specs():
        t = spec.model
        rows = db.session.scalars(
            sa.select(t).where(t.status == spec.failed).order_by(t.id.desc()).limit(limit)
        )
        for row in rows:
            items.append(
                FailedItem(
                    key=f"{spec.name}:{row.id}",
                    queue=spec.name,
                    label=spec.label,
                    id=row.id,
                    at=getattr(row, spec.time_column),
                    attempts=row.attempts or 0,
                    reason=redact(getattr(row, spec.error_column)),
                    description=spec.describe(row),
                )
            )
    items.sort(key=lambda item: item.at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return items[:limit]


def retry(actor, key: str) -> FailedItem:
    """An administrator puts a failed row back in its queue (audited); the worker does it."""
    from consult.models import Role
    from consult.services import audit
    from consult.services.errors import NotFound, ValidationFailed

    actor.require(Role.ADMIN)
    name, _, raw_id = key.partition(":")
    spec = spec_named(name)
    # Row ids are 32-bit integers on both databases: anything else names no row (and a larger
    # number would be a database error, not an answer).
    if spec is None or not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) >= 2**31:
        raise NotFound(f"「{key[:40]}」は見つかりません。")
    row = db.session.get(spec.model, int(raw_id))
    if row is None:
        raise NotFound(f"「{key}」は見つかりません。")
    if row.status != spec.failed:
        raise ValidationFailed(f"「{key}」は失敗したものではありません。")
    if spec.retry is not None:
        spec.retry(row)
    else:
        row.status = spec.pending
        if spec.due_column is not None:
            setattr(row, spec.due_column, utcnow())
    release(row)
    audit.record(actor, "update", "queue", key[:40], "retry")
    return FailedItem(
        key=key,
        queue=spec.name,
        label=spec.label,
        id=row.id,
        at=getattr(row, spec.time_column),
        attempts=row.attempts or 0,
        reason=redact(getattr(row, spec.error_column)),
        description=spec.describe(row),
    )
