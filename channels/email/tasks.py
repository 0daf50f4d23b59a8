"""Email jobs that own their transactions: store (and commit) first, then process.

`mail ingest`, `mail fetch` (IMAP), `mail process` and the worker call these; the services they
use (channels.email.services) only flush. See the package's docstring for why the order matters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from channels.email.models import InboundMail, InboundStatus
from channels.email.services.common import log, on_relay, settings
from channels.email.services.processing import (
    INBOUND,
    Lookups,
    Refused,
    prepare,
    put_on_ticket,
    quarantine,
    take_quarantined,
)
from channels.email.services.storage import (
    adopt_legacy_keys,
    chunks,
    insert_ignore,
    stored_row,
    write_files,
)
from consult.extensions import db
from consult.models import Ticket
from consult.services import numbering, queue
from consult.timeutil import utcnow


def store_raw(raw: bytes, source: str = "stdin", claim: bool = False) -> tuple[InboundMail, bool]:
    """Keep the bytes and a row before any parsing; the same mail twice is one row.

    Commits, so that what was received survives whatever happens next.
    """
    values = stored_row(raw, source, claim=claim)
    adopt_legacy_keys([(raw, values)])
    created = insert_ignore(values)
    db.session.commit()
    key = values["dedupe_key"]
    inbound = db.session.scalar(sa.select(InboundMail).where(InboundMail.dedupe_key == key))
    return inbound, created


def store_raw_many(
    raws: list[bytes], source: str = "imap", claim: bool = False
) -> list[tuple[int, str, bool]]:
    """The bulk form of `store_raw`: every file written with fsync, then one INSERT and one commit.

    Answers (inbound id, status, created) per message, in order; nothing is parsed yet, so a crash
    after this leaves pending rows that the next run processes once.
    """
    writes: list[tuple[Path, bytes]] = []
    rows = [stored_row(raw, source, writes, claim) for raw in raws]
    write_files(writes)
    adopt_legacy_keys(list(zip(raws, rows, strict=True)))
    first_of: dict[str, dict] = {}
    for row in rows:  # in arrival order: a reply in the batch comes after what it answers
        first_of.setdefault(row["dedupe_key"], row)
    unique = list(first_of.values())
    table = InboundMail.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    created: set[str] = set()
    if unique:
        # executemany: one compiled statement, sent as multi-row INSERTs ("insertmanyvalues").
        result = db.session.execute(
            insert(table)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.dedupe_key),
            unique,
        )
        created.update(result.scalars())
    db.session.commit()
    keys = [row["dedupe_key"] for row in unique]
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(keys):
        for row in db.session.execute(
            sa.select(InboundMail.dedupe_key, InboundMail.id, InboundMail.status).where(
                InboundMail.dedupe_key.in_(chunk)
            )
        ):
            found[row.dedupe_key] = (row.id, row.status)
    db.session.commit()
    out, seen = [], set()
    for row in rows:
        key = row["dedupe_key"]
        inbound_id, status = found[key]
        out.append((inbound_id, status, key in created and key not in seen))
        seen.add(key)
    return out


@dataclass
class Outcome:
    inbound: InboundMail
    ticket: Ticket | None
    duplicate: bool = False


WAIT_FOR_OTHER_SECONDS = 60.0


def _wait_for_other(inbound_id: int) -> InboundMail:
    """The same mail is being processed by another process: wait for it to finish (or to stop
    beating, and then take it over), so the MTA gets the ticket number either way."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
    while time.monotonic() < deadline:
        db.session.expire_all()
        inbound = db.session.get(InboundMail, inbound_id)
        if inbound.status != InboundStatus.PENDING:
            return inbound
        db.session.commit()
        if queue.claim(INBOUND, 1, ids=[inbound_id]):
            return process(inbound_id)
        time.sleep(0.2)
    return db.session.get(InboundMail, inbound_id)


def ingest(raw: bytes, source: str = "stdin") -> Outcome:
    """Store, then process: what `madoguchi mail ingest` and the IMAP poller call per message.

    The row is stored claimed by this process, so the worker leaves it alone; a mail stored
    before (the MTA delivering it twice, a process killed in between) is claimed first.
    """
    if on_relay():
        # The relay keeps the bytes for the core, which takes and processes them
        # (channels.email.transfer); nothing is parsed in the internet zone.
        inbound, created = store_raw(raw, source)
        return Outcome(inbound, None, duplicate=not created)
    inbound, created = store_raw(raw, source, claim=True)
    if not created and inbound.status != InboundStatus.PENDING:
        return Outcome(inbound, inbound.ticket, duplicate=True)
    if created or queue.claim(INBOUND, 1, ids=[inbound.id]):
        process(inbound.id)
    else:
        _wait_for_other(inbound.id)
    db.session.expire_all()
    inbound = db.session.get(InboundMail, inbound.id)
    return Outcome(inbound, inbound.ticket, duplicate=not created)


def process(inbound_id: int) -> InboundMail:
    """Put one stored mail on a ticket, or quarantine it with the reason. Never raises."""
    take_quarantined([inbound_id])
    held = queue.hold(INBOUND, inbound_id)
    inbound = db.session.get(InboundMail, inbound_id)
    if inbound is None or inbound.status not in (InboundStatus.PENDING, InboundStatus.QUARANTINED):
        db.session.commit()
        return inbound
    if inbound.status == InboundStatus.PENDING and not held:
        db.session.commit()
        return inbound  # claimed by another process, which processes it
    try:
        config = settings()
        raw, parsed = prepare(inbound, config)
        put_on_ticket(inbound, raw, parsed, config, Lookups())
        inbound.attempts += 1
        inbound.processed_at = utcnow()
        queue.release(inbound)
        db.session.commit()
    except Exception as exc:  # one bad mail must never stop the others
        db.session.rollback()
        inbound = db.session.get(InboundMail, inbound_id)
        quarantine(inbound, exc)
        db.session.commit()
    return inbound


BATCH_SIZE = 100


def process_batch(inbound_ids: list[int]) -> list[InboundMail]:
    """Process stored mail in one transaction: a SAVEPOINT per message, one commit for all.

    A message that fails rolls back to its savepoint alone and is quarantined in the same
    transaction; the others go on. Everything that needs no lock (reading and parsing the raw
    files, the lookups of thread Message-IDs, tickets and citizens, each one query for the whole
    batch) happens before the first write, so the ticket-number row lock, taken by the first new
    ticket, is held only for the inserts of the batch and its commit. If the commit itself
    fails, nothing of the batch is lost (the rows are still pending): each message is then
    processed in a transaction of its own.
    """
    rows = []
    for chunk in chunks(list(inbound_ids)):
        # Only the mail this process claimed (and still holds: consult.services.queue).
        take_quarantined(chunk)
        held = queue.hold(INBOUND, chunk)
        if not held:
            continue
        rows.extend(
            db.session.scalars(
                sa.select(InboundMail)
                .where(
                    InboundMail.id.in_(held),
                    InboundMail.status.in_((InboundStatus.PENDING, InboundStatus.QUARANTINED)),
                )
                .order_by(InboundMail.id)
            )
        )
    if not rows:
        db.session.commit()
        return []
    config = settings()
    prepared = []
    for inbound in rows:
        try:
            prepared.append((inbound, *prepare(inbound, config), None))
        except Exception as exc:  # quarantined below, in its savepoint
            prepared.append((inbound, None, None, exc))
    try:
        _run_batch(prepared, config, isolate=False)
        return rows
    except Exception:
        # Something failed after it had written: none of the batch is committed (all still
        # pending). Again, with a savepoint per message, so that only the broken one fails.
        log.info("email batch: a message failed; processing again with a savepoint each")
        db.session.rollback()
    try:
        _run_batch(prepared, config, isolate=True)
    except Exception:
        log.exception("email batch failed; processing its messages one by one")
        db.session.rollback()
        return [process(inbound_id) for inbound_id in [row.id for row in rows]]
    return rows


def _run_batch(prepared: list, config: dict, *, isolate: bool) -> None:
    """All of a batch in the session, then one commit.

    Fast (isolate=False): no savepoints, so the ORM flushes the whole batch at once, each table
    with one multi-row INSERT; only failures known before anything was written (unreadable,
    too large, no sender) are quarantined here, any other raises for the isolated run.
    Isolated: a SAVEPOINT per message; a failure rolls back that message alone.
    """
    lookups = Lookups()
    lookups.preload([parsed for _inbound, _raw, parsed, _error in prepared if parsed])
    if not isolate:  # a savepoint rollback would lose reserved numbers: only here
        lookups.numbers = numbering.Reservation("ticket", len(prepared))
    for inbound, raw, parsed, error in prepared:
        if not isolate:
            try:
                if error is not None:
                    raise error
                put_on_ticket(inbound, raw, parsed, config, lookups)
            except Refused as exc:
                quarantine(inbound, exc)
                continue
            inbound.attempts += 1
            inbound.processed_at = utcnow()
            queue.release(inbound)
            lookups.settle()
            continue
        savepoint = db.session.begin_nested()
        try:
            if error is not None:
                raise error
            put_on_ticket(inbound, raw, parsed, config, lookups)
            inbound.attempts += 1
            inbound.processed_at = utcnow()
            queue.release(inbound)
            savepoint.commit()
            lookups.settle()
        except Exception as exc:  # this message only: its savepoint is rolled back
            savepoint.rollback()  # a no-op when a failed flush already closed it
            lookups.discard()
            quarantine(inbound, exc)
    if lookups.numbers is not None:
        lookups.numbers.release()
    db.session.commit()


def process_pending(limit: int = 100) -> int:
    """Stored but unprocessed mail (a process died in between): handled once, oldest first.

    Claimed through the work queue: never a mail that `mail ingest`, `mail fetch` or another
    worker holds, unless that process stopped beating."""
    ids = queue.claim(INBOUND, limit)
    for chunk in chunks(ids, BATCH_SIZE):
        process_batch(chunk)
    return len(ids)


def ingest_many(raws: list[bytes], source: str = "imap") -> list[Outcome]:
    """The bulk path (IMAP fetch, benchmark): store all durably and commit, then process in
    batches (a savepoint per message, a commit per batch). Per message, in order."""
    if on_relay():
        stored = store_raw_many(raws, source)
        todo = []
    else:
        stored = store_raw_many(raws, source, claim=True)
        todo = [i for i, _status, created in stored if created]
    # Stored before (by an earlier fetch that died, say): ours only if nobody else holds it.
    earlier = [
        i
        for i, status, created in stored
        if not created and status == InboundStatus.PENDING and not on_relay()
    ]
    for chunk in chunks(list(dict.fromkeys(earlier))):
        todo.extend(queue.claim(INBOUND, len(chunk), ids=chunk))
    for chunk in chunks(sorted(set(todo)), BATCH_SIZE):  # in arrival order
        process_batch(chunk)
    rows = {}
    for chunk in chunks(sorted({i for i, _s, _c in stored})):
        rows.update(
            (row.id, row)
            for row in db.session.scalars(
                sa.select(InboundMail)
                .where(InboundMail.id.in_(chunk))
                .options(selectinload(InboundMail.ticket))
            )
        )
    return [
        Outcome(rows[i], rows[i].ticket, duplicate=not created) for i, _status, created in stored
    ]
