"""The email channel's rules: store first, then process; thread replies; answer; quarantine.

The order matters for never losing mail: `store_raw` writes the bytes under DATA_DIR and a row
keyed by Message-ID, sender and content (a second delivery of the same mail finds the row and
stops; another mail reusing the Message-ID is a row of its own), and commits;
only then does `process` parse and put the mail on a ticket, in a transaction of its own. A
failure there rolls back the ticket work and records the reason on the row (quarantine), so a
process killed at any point leaves a pending or quarantined row that the next run handles once.

The bulk path (`ingest_many`, `process_batch`: IMAP fetch, `mail process`, the worker) keeps that
order per group: all raw files fsynced, their rows stored and committed, then the group processed
in one transaction (see `process_batch`); `mail ingest` stays one message at a time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from channels.email import parse as mailparse
from channels.email.models import (
    EmailThread,
    ImapState,
    InboundMail,
    InboundStatus,
    MailAttachment,
    ReplyTemplate,
    ThreadMessage,
)
from consult import signals
from consult.extensions import db
from consult.models import (
    Channel,
    Citizen,
    CitizenEmail,
    EntryKind,
    OutboxMessage,
    OutboxStatus,
    Role,
    Ticket,
)
from consult.services import (
    audit,
    auto_answer,
    calendar,
    citizens,
    mail,
    merge,
    numbering,
    queue,
    safe_files,
    tickets,
)
from consult.services.actor import DESK_ROLES, SYSTEM, Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import normalize_email
from consult.timeline import Automatic, Delivery, DeliveryStatus
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.email")

MAX_REPLY = 20000
NUMBER_IN_SUBJECT = re.compile(r"\[#(\d{4}-\d{6})\]")
# Senders that never read an answer (RFC 3834 section 2: automatic responders' own addresses).
AUTO_SENDER = re.compile(r"^(no-?reply|do-?not-?reply|donotreply)([-+._].*)?$", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"(Undeliver|Undelivered|Returned mail|Delivery Status Notification|Mail Delivery|"
    r"DELIVERY FAILURE|failure notice|Mail System Error|配信できません|配送失敗|不達|"
    r"メールエラー|エラー通知|送信できません)",
    re.IGNORECASE,
)


def settings() -> Mapping:
    """Every setting by variable name, parsed once (channels.email.settings and the kernel's)."""
    return current_app.config["MADOGUCHI"]


# --- storage ---------------------------------------------------------------------------------


def _data_dir() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "email"


def _write(path: Path, data: bytes) -> None:
    """Write atomically and durably: a crash leaves either the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _write_many(items: list[tuple[Path, bytes]]) -> None:
    """`_write` for a batch: each file still fsynced before it is renamed into place, but the
    fsyncs run side by side, so the file system commits them in a few journal flushes instead
    of one flush after another."""
    opened: list[tuple[int, Path, Path]] = []
    try:
        for path, data in items:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            opened.append((fd, tmp, path))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        if len(opened) == 1:
            os.fsync(opened[0][0])
        elif opened:
            with ThreadPoolExecutor(max_workers=min(16, len(opened))) as pool:
                list(pool.map(os.fsync, [fd for fd, _tmp, _path in opened]))
    except BaseException:
        for fd, tmp, _path in opened:
            os.close(fd)
            tmp.unlink(missing_ok=True)
        raise
    for fd, tmp, path in opened:
        os.close(fd)
        os.replace(tmp, path)


def raw_path(inbound: InboundMail) -> Path:
    return _data_dir() / "raw" / inbound.storage_name


def read_raw(inbound: InboundMail) -> bytes:
    return raw_path(inbound).read_bytes()


def _insert_ignore(values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on both databases; True when the row is new."""
    table = InboundMail.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT through SQLAlchemy.
    result = db.session.execute(
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )
    return result.first() is not None


def _stored_row(raw: bytes, source: str, writes: list | None = None, claim: bool = False) -> dict:
    """Write the bytes durably (fsync) and describe the row that records them.

    With `writes`, the file is only listed there, for `_write_many` to write before any row.
    With `claim`, the row is stored already claimed by this process (consult.services.queue), so
    a worker never processes the mail that `mail ingest` or `mail fetch` is about to process."""
    digest = hashlib.sha256(raw).hexdigest()
    key = mailparse.dedupe_key(raw)  # Message-ID + sender + content: see its docstring
    storage_name = f"{digest[:2]}/{digest}.eml"
    path = _data_dir() / "raw" / storage_name
    if writes is not None:
        if not path.exists() and all(path != listed for listed, _data in writes):
            writes.append((path, raw))
    elif not path.exists():
        _write(path, raw)
    return {
        "dedupe_key": key[:255],
        "sha256": digest,
        "storage_name": storage_name,
        "size": len(raw),
        "source": source[:20],
        "status": InboundStatus.PENDING.value,
        "warnings": [],
        "attempts": 0,
        "received_at": utcnow(),
        "claimed_by": queue.worker_id() if claim else None,
        "claimed_at": utcnow() if claim else None,
    }


def _adopt_legacy_keys(pairs: list[tuple[bytes, dict]]) -> None:
    """Rows stored before issue 14 are keyed by the Message-ID alone (``mid:<id>``). When one of
    them holds the very mail arriving again (an IMAP fetch repeated after a restart across the
    upgrade), it takes the new key now, so that the INSERT below finds it and nothing doubles;
    another mail that merely reuses the Message-ID keeps its own new row."""
    legacy: dict[str, list[tuple[bytes, str]]] = {}
    for raw, row in pairs:
        message_id = mailparse.quick_message_id(raw)
        if message_id and row["dedupe_key"].startswith("msg:"):
            legacy.setdefault(f"mid:{message_id}"[:255], []).append((raw, row["dedupe_key"]))
    for chunk in _chunks(sorted(legacy)):
        for found in db.session.execute(
            sa.select(InboundMail.id, InboundMail.dedupe_key, InboundMail.storage_name).where(
                InboundMail.dedupe_key.in_(chunk)
            )
        ):
            try:
                stored = (_data_dir() / "raw" / found.storage_name).read_bytes()
            except OSError:
                continue  # unsure: the new mail gets a row (and a ticket) of its own
            key = mailparse.dedupe_key(stored)
            if any(key == new_key for _raw, new_key in legacy[found.dedupe_key]):
                db.session.execute(
                    sa.update(InboundMail)
                    .where(InboundMail.id == found.id, InboundMail.dedupe_key == found.dedupe_key)
                    .values(dedupe_key=key)
                )


def store_raw(raw: bytes, source: str = "stdin", claim: bool = False) -> tuple[InboundMail, bool]:
    """Keep the bytes and a row before any parsing; the same mail twice is one row.

    Commits, so that what was received survives whatever happens next.
    """
    values = _stored_row(raw, source, claim=claim)
    _adopt_legacy_keys([(raw, values)])
    created = _insert_ignore(values)
    db.session.commit()
    key = values["dedupe_key"]
    inbound = db.session.scalar(sa.select(InboundMail).where(InboundMail.dedupe_key == key))
    return inbound, created


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store_raw_many(
    raws: list[bytes], source: str = "imap", claim: bool = False
) -> list[tuple[int, str, bool]]:
    """The bulk form of `store_raw`: every file written with fsync, then one INSERT and one commit.

    Answers (inbound id, status, created) per message, in order; nothing is parsed yet, so a crash
    after this leaves pending rows that the next run processes once.
    """
    writes: list[tuple[Path, bytes]] = []
    rows = [_stored_row(raw, source, writes, claim) for raw in raws]
    _write_many(writes)
    _adopt_legacy_keys(list(zip(raws, rows, strict=True)))
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
    for chunk in _chunks(keys):
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


# --- processing ------------------------------------------------------------------------------


class Quarantine(Exception):
    """Processing cannot go on; the Japanese reason is shown to administrators."""


@dataclass
class Outcome:
    inbound: InboundMail
    ticket: Ticket | None
    duplicate: bool = False


def _describe(inbound: InboundMail) -> str:
    return f"{inbound.source_label}で受信したメール（{inbound.size:,}バイト）"


def _put_back(inbound: InboundMail) -> None:
    inbound.status = InboundStatus.PENDING


# Inbound mail as a work queue (consult.services.queue): a quarantined mail is its failed state.
INBOUND = queue.QueueSpec(
    name="email-inbound",
    label="受信メールの取込",
    model=InboundMail,
    pending=InboundStatus.PENDING,
    claimed=InboundStatus.PENDING,
    failed=InboundStatus.QUARANTINED,
    describe=_describe,
    time_column="received_at",
    due_column=None,
    error_column="reason",
    retry=_put_back,
)

WAIT_FOR_OTHER_SECONDS = 60.0


def _take_quarantined(ids: list[int]) -> None:
    """An administrator's retry of quarantined mail: claim it in the caller's transaction (the
    worker never takes quarantined mail, so only another retry could hold it)."""
    table = InboundMail.__table__
    db.session.execute(
        sa.update(table)
        .where(
            table.c.id.in_(ids),
            table.c.status == InboundStatus.QUARANTINED.value,
            table.c.claimed_by.is_(None),
        )
        .values(claimed_by=queue.worker_id(), claimed_at=utcnow())
    )


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


def _on_relay() -> bool:
    from consult.transfer.services import role

    return role() == "relay"


def ingest(raw: bytes, source: str = "stdin") -> Outcome:
    """Store, then process: what `madoguchi mail ingest` and the IMAP poller call per message.

    The row is stored claimed by this process, so the worker leaves it alone; a mail stored
    before (the MTA delivering it twice, a process killed in between) is claimed first.
    """
    if _on_relay():
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
    _take_quarantined([inbound_id])
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
        raw, parsed = _prepare(inbound, config)
        _process(inbound, raw, parsed, config, _Lookups())
        inbound.attempts += 1
        inbound.processed_at = utcnow()
        queue.release(inbound)
        db.session.commit()
    except Exception as exc:  # one bad mail must never stop the others
        db.session.rollback()
        inbound = db.session.get(InboundMail, inbound_id)
        _quarantine(inbound, exc)
        db.session.commit()
    return inbound


def _quarantine(inbound: InboundMail, exc: BaseException) -> None:
    if isinstance(exc, Quarantine | ValidationFailed):
        reason = str(exc)
    else:
        log.error("email processing failed: inbound=%s", inbound.id, exc_info=exc)
        reason = f"処理中に予期しないエラーが発生しました（{type(exc).__name__}）。"
    inbound.status = InboundStatus.QUARANTINED
    inbound.reason = reason
    inbound.attempts += 1
    inbound.processed_at = utcnow()
    queue.release(inbound)
    log.info("email quarantined: inbound=%s", inbound.id)


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
    for chunk in _chunks(list(inbound_ids)):
        # Only the mail this process claimed (and still holds: consult.services.queue).
        _take_quarantined(chunk)
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
            prepared.append((inbound, *_prepare(inbound, config), None))
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
    lookups = _Lookups()
    lookups.preload([parsed for _inbound, _raw, parsed, _error in prepared if parsed])
    if not isolate:  # a savepoint rollback would lose reserved numbers: only here
        lookups.numbers = numbering.Reservation("ticket", len(prepared))
    for inbound, raw, parsed, error in prepared:
        if not isolate:
            try:
                if error is not None:
                    raise error
                _process(inbound, raw, parsed, config, lookups)
            except _Refused as exc:
                _quarantine(inbound, exc)
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
            _process(inbound, raw, parsed, config, lookups)
            inbound.attempts += 1
            inbound.processed_at = utcnow()
            queue.release(inbound)
            savepoint.commit()
            lookups.settle()
        except Exception as exc:  # this message only: its savepoint is rolled back
            savepoint.rollback()  # a no-op when a failed flush already closed it
            lookups.discard()
            _quarantine(inbound, exc)
    if lookups.numbers is not None:
        lookups.numbers.release()
    db.session.commit()


class _Refused(Quarantine):
    """A quarantine decided before anything was written for the message."""


def _prepare(inbound: InboundMail, config: dict):
    """Read and parse the stored bytes: no database work, so it runs before any lock is taken."""
    if inbound.size > config["MAIL_MAX_MESSAGE_BYTES"]:
        limit = config["MAIL_MAX_MESSAGE_BYTES"] // 2**20
        raise _Refused(f"メールが大きすぎます（上限 {limit} MB）。原本は保存されています。")
    try:
        raw = read_raw(inbound)
    except OSError as exc:
        raise _Refused("保存したメールの原本を読み込めません。") from exc
    try:
        parsed = mailparse.parse(
            raw,
            max_parts=config["MAIL_MAX_PARTS"],
            max_attachment_bytes=config["MAIL_MAX_ATTACHMENT_BYTES"],
        )
    except Exception as exc:
        log.error("email parsing failed: inbound=%s", inbound.id, exc_info=exc)
        raise _Refused(
            f"メールを解析できませんでした（{type(exc).__name__}）。原本は保存されています。"
        ) from exc
    return raw, parsed


class _Lookups:
    """What processing looks up, asked once for a whole batch instead of once per message.

    Without `preload` every question goes to the database, as for a single message. Answers
    learnt while processing a message (its Message-ID now threads to its ticket) count only once
    its savepoint is released (`settle`); a rolled-back message's are dropped (`discard`).
    """

    def __init__(self) -> None:
        # message_id: (order, ticket id, or the Ticket itself when learnt before its flush)
        self.threads: dict[str, tuple[int, int | Ticket]] | None = None
        self.citizens: dict[str, Citizen | None] | None = None
        self.tickets: dict[int, Ticket] = {}
        self._pending: dict[str, tuple[int, int | Ticket]] = {}
        self._order = 2**62
        self.numbers: numbering.Reservation | None = None

    def preload(self, parsed_mails: list) -> None:
        ids, addresses = set(), set()
        for parsed in parsed_mails:
            ids.update(m[:255] for m in (*parsed.in_reply_to, *parsed.references))
            if parsed.message_id:
                ids.add(parsed.message_id[:255])
            if parsed.from_address:
                addresses.add(normalize_email(parsed.from_address) or parsed.from_address)
        self.threads = {}
        for chunk in _chunks(sorted(ids)):
            for row in db.session.execute(
                sa.select(ThreadMessage.id, ThreadMessage.message_id, ThreadMessage.ticket_id)
                .where(ThreadMessage.message_id.in_(chunk))
                .order_by(ThreadMessage.id)
            ):
                self.threads[row.message_id] = (row.id, row.ticket_id)
        ticket_ids = sorted({ticket_id for _order, ticket_id in self.threads.values()})
        for chunk in _chunks(ticket_ids):
            for ticket in db.session.scalars(sa.select(Ticket).where(Ticket.id.in_(chunk))):
                self.tickets[ticket.id] = ticket
        self.citizens = dict.fromkeys(addresses)
        for chunk in _chunks(sorted(addresses)):
            for address, citizen in db.session.execute(
                sa.select(CitizenEmail.address, Citizen)
                .join(Citizen, Citizen.id == CitizenEmail.citizen_id)
                .where(CitizenEmail.address.in_(chunk))
                .order_by(Citizen.id.desc())
            ):
                self.citizens[address] = citizen  # the lowest id wins, as for one message

    def thread_ticket(self, ids: list[str]) -> Ticket | None:
        if self.threads is None:
            ticket_id = db.session.scalar(
                sa.select(ThreadMessage.ticket_id)
                .where(ThreadMessage.message_id.in_(ids))
                .order_by(ThreadMessage.id.desc())
                .limit(1)
            )
            return db.session.get(Ticket, ticket_id) if ticket_id else None
        known = [self.threads[m[:255]] for m in ids if m[:255] in self.threads]
        if not known:
            return None
        found = max(known, key=lambda item: item[0])[1]
        if isinstance(found, Ticket):
            return found
        return self.tickets.get(found) or db.session.get(Ticket, found)

    def citizen(self, address: str) -> Citizen | None:
        if self.citizens is not None and address in self.citizens:
            return self.citizens[address]
        return db.session.scalar(
            sa.select(Citizen)
            .join(CitizenEmail)
            .where(CitizenEmail.address == address)
            .order_by(Citizen.id)
            .limit(1)
        )

    def knows_message(self, message_id: str) -> bool:
        if self.threads is None:
            return (
                db.session.scalar(
                    sa.select(ThreadMessage.id).where(ThreadMessage.message_id == message_id)
                )
                is not None
            )
        return message_id in self.threads or message_id in self._pending

    def learn(self, message_id: str, ticket: Ticket) -> None:
        self._order += 1
        self._pending[message_id] = (self._order, ticket)

    def settle(self) -> None:
        if self.threads is not None:
            self.threads.update(self._pending)
        self._pending = {}

    def discard(self) -> None:
        self._pending = {}


def _process(inbound: InboundMail, raw: bytes, parsed, config: dict, lookups: _Lookups) -> None:
    inbound.warnings = parsed.warnings
    if _is_bounce(parsed):
        inbound.kind = "bounce"
        _handle_bounce(inbound, parsed, raw)
        return
    if not parsed.from_address:
        raise _Refused("差出人（From）のメールアドレスがありません。")
    if _is_auto_reply(parsed):
        inbound.kind = "auto_reply"
        ticket = _thread_ticket(parsed, lookups)
        if ticket is None:
            inbound.status = InboundStatus.IGNORED
            inbound.reason = "自動応答のため相談票を作成しませんでした。"
            return
        _add_message(inbound, ticket, parsed, lookups, auto_reply=True)
        return
    ticket = _thread_ticket(parsed, lookups)
    if ticket is not None:
        inbound.kind = "reply"
        _add_message(inbound, ticket, parsed, lookups)
        return
    inbound.kind = "new"
    # No autoflush: the number allocation would otherwise flush this row's first changes as an
    # UPDATE of its own, and the end of processing would update it a second time.
    with db.session.no_autoflush:
        ticket = _new_ticket(inbound, parsed, lookups)
    if config["MAIL_AUTO_ACK"]:
        db.session.flush()  # the acknowledgement reads the thread back by the ticket's id
        send_ack(ticket)


def _is_auto_reply(parsed: mailparse.ParsedMail) -> bool:
    """Told by the headers automatic responders set (RFC 3834) and by their sender addresses,
    never by words in the subject: a citizen writing 「予約の自動返信メールが届きません」 is a
    citizen with a question (issue 14). Where unsure, the mail makes a ticket."""
    headers = parsed.headers
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return True
    if headers.get("precedence", "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return True
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    local = (parsed.from_address or "").split("@")[0]
    return bool(AUTO_SENDER.match(local))


def _is_bounce(parsed: mailparse.ParsedMail) -> bool:
    if parsed.message is not None and parsed.content_type == "multipart/report":
        return True
    local = (parsed.from_address or "").split("@")[0]
    if local in ("mailer-daemon", "postmaster") or parsed.headers.get("return-path", "") == "<>":
        return True
    return bool(
        parsed.report_parts
        and BOUNCE_SUBJECT.search(parsed.subject or "")
        and "x-failed-recipients" in parsed.headers
    ) or bool(parsed.headers.get("x-failed-recipients"))


def _thread_ticket(parsed: mailparse.ParsedMail, lookups: _Lookups) -> Ticket | None:
    """In-Reply-To and References against the Message-IDs we know; the subject's number last.

    The number in the subject counts only for the address the ticket corresponds with, so that
    a stranger cannot add mail to someone else's case by typing a number. A ticket merged into
    another gives way to its survivor: the citizen answers the old thread, the case goes on in
    the new one.
    """
    ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    if ids:
        ticket = lookups.thread_ticket(ids)
        if ticket is not None:
            return merge.resolve_ticket(ticket)
    match = NUMBER_IN_SUBJECT.search(parsed.subject or "")
    if match and parsed.from_address:
        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == match.group(1)))
        if ticket is not None and _corresponds_with(ticket, parsed.from_address):
            return merge.resolve_ticket(ticket)
    return None


def _corresponds_with(ticket: Ticket, address: str) -> bool:
    thread = db.session.get(EmailThread, ticket.id)
    if thread is not None and thread.address == address:
        return True
    if ticket.citizen_id:
        return bool(
            db.session.scalar(
                sa.select(CitizenEmail.id).where(
                    CitizenEmail.citizen_id == ticket.citizen_id, CitizenEmail.address == address
                )
            )
        )
    return False


def _remember(message_id: str | None, ticket: Ticket, inbound: InboundMail, lookups) -> None:
    if not message_id:
        return
    message_id = message_id[:255]
    if not lookups.knows_message(message_id):
        db.session.add(ThreadMessage(message_id=message_id, ticket=ticket, inbound_id=inbound.id))
        lookups.learn(message_id, ticket)


def _store_attachments(inbound: InboundMail, ticket: Ticket, parsed) -> list[dict]:
    """Each attachment stored apart and queued for 無害化; one the relay converted already
    (MADOGUCHI_SANITISE_IN=relay: its bytes never crossed) takes the relay's outcome."""
    from consult.services import sanitise

    relayed = {entry["n"]: entry for entry in inbound.relay_files or []}
    listed = []
    for item in parsed.attachments:
        entry = relayed.get(item.relay_file) if item.relay_file is not None else None
        if item.relay_file is not None and entry is None:
            continue  # a mark without the relay's file (a sender's forgery): nothing to keep
        name = f"{uuid.uuid4().hex}"
        if entry is None:
            _write(_data_dir() / "attachments" / name[:2] / name, item.data)
        row = MailAttachment(
            inbound_id=inbound.id,
            ticket=ticket,
            filename=item.filename[:255],
            content_type=(entry["content_type"] if entry else item.content_type)[:127],
            size=entry["size"] if entry else len(item.data),
            inline=item.inline,
            storage_name=f"{name[:2]}/{name}",
        )
        db.session.add(row)
        db.session.flush()
        if entry is None:
            safe = safe_files.register(
                ticket,
                source="email_attachment",
                source_id=row.id,
                original=_data_dir() / "attachments" / row.storage_name,
                filename=row.filename,
                claimed_type=row.content_type,
                size=row.size,
            )
        else:
            safe = safe_files.register_converted(
                ticket,
                source="email_attachment",
                source_id=row.id,
                filename=row.filename,
                claimed_type=row.content_type,
                size=row.size,
                outcome=sanitise.outcome_from_dict(entry["outcome"]),
                stored_name=entry.get("stored_name"),
            )
        listed.append(
            {"id": row.id, "filename": row.filename, "size": row.size, "safe_file": safe.id}
        )
    return listed


def _add_message(inbound, ticket: Ticket, parsed, lookups, *, auto_reply=False, at=None):
    attachments = _store_attachments(inbound, ticket, parsed)
    tickets.add_entry(
        ticket,
        EntryKind.MESSAGE_IN,
        body=parsed.text or "（本文なし）",
        data={
            "channel": "email",
            "inbound_id": inbound.id,
            "subject": parsed.subject,
            "from_name": parsed.from_name,
            "quoted": parsed.quoted,
            "attachments": attachments,
            "omitted": parsed.omitted,
            "warnings": parsed.warnings,
            "auto_reply": auto_reply,
        },
        at=at,
    )
    _remember(parsed.message_id, ticket, inbound, lookups)
    inbound.ticket = ticket
    inbound.status = InboundStatus.PROCESSED
    inbound.reason = None
    if not auto_reply and (parsed.text or parsed.subject):
        signals.message_received.send(
            ticket, text=f"{parsed.subject or ''}\n{parsed.text or ''}", at=at or utcnow()
        )


def _new_ticket(inbound: InboundMail, parsed, lookups: _Lookups) -> Ticket:
    address = normalize_email(parsed.from_address) or parsed.from_address
    citizen = lookups.citizen(address)
    subject = (parsed.subject or "").strip()[: tickets.MAX_SUBJECT] or "（件名なし）"
    ticket = tickets.create_ticket(
        SYSTEM,
        channel=Channel.EMAIL,
        subject=subject,
        citizen=citizen,
        flush=False,
        numbers=lookups.numbers,
    )
    db.session.add(EmailThread(ticket=ticket, address=address, sender_name=parsed.from_name[:120]))
    _add_message(inbound, ticket, parsed, lookups, at=ticket.created_at)
    return ticket


# --- bounces -----------------------------------------------------------------------------------

_DIAGNOSTIC = re.compile(r"(?im)^(?:Diagnostic-Code|Status):\s*(.+)$")
_SMTP_LINE = re.compile(r"\b([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^\n]*|[45]\d\d [^\n]{3,})")


def _handle_bounce(inbound: InboundMail, parsed, raw: bytes) -> None:
    """Attach the bounce to the outgoing message it refers to and mark that one failed."""
    domain = re.escape(current_app.config["MADOGUCHI"]["MAIL_DOMAIN"])
    candidates = re.findall(rf"<[^<>\s]+@{domain}>".encode(), raw)
    ours = None
    for candidate in dict.fromkeys(c.decode("ascii", "replace") for c in candidates):
        ours = db.session.scalar(
            sa.select(ThreadMessage).where(
                ThreadMessage.message_id == candidate, ThreadMessage.outgoing.is_(True)
            )
        )
        if ours is not None:
            break
    if ours is None:
        inbound.status = InboundStatus.IGNORED
        inbound.reason = "不達通知ですが、センターが送ったメールと対応づけられませんでした。"
        return
    reason = _bounce_reason(parsed, raw)
    ticket = db.session.get(Ticket, ours.ticket_id)
    if ours.outbox_id:
        message = db.session.get(OutboxMessage, ours.outbox_id)
        message.status = OutboxStatus.FAILED
        message.last_error = f"不達通知: {reason}"[:2000]
    tickets.add_entry(
        ticket,
        EntryKind.DELIVERY,
        body=f"送信したメールが届きませんでした（不達通知）：{reason}",
        data=Delivery(DeliveryStatus.FAILED, outbox_id=ours.outbox_id, inbound_id=inbound.id),
    )
    inbound.ticket_id = ticket.id
    inbound.status = InboundStatus.PROCESSED


def _bounce_reason(parsed, raw: bytes) -> str:
    for part in parsed.report_parts:
        if part.get_content_type() == "message/delivery-status":
            text = part.as_string() if not part.is_multipart() else ""
            if part.is_multipart():
                text = "\n".join(p.as_string() for p in part.get_payload())
            found = _DIAGNOSTIC.findall(text)
            if found:
                return max(found, key=len).strip()[:300]
    match = _SMTP_LINE.search(parsed.text or "")
    if match:
        return match.group(1).strip()[:300]
    return (parsed.subject or "宛先に届きませんでした")[:300]


# --- outgoing ----------------------------------------------------------------------------------


def remember_outgoing(message: OutboxMessage, ticket: Ticket | None = None, **_kw) -> None:
    """Every mail queued for a ticket (replies, acknowledgements, confirmations) threads back."""
    if ticket is None or not message.headers.get("message_id"):
        return
    db.session.flush()
    db.session.add(
        ThreadMessage(
            message_id=message.headers["message_id"][:255],
            ticket_id=ticket.id,
            outgoing=True,
            outbox_id=message.id,
        )
    )


def _thread_headers(ticket: Ticket) -> tuple[str | None, list[str]]:
    ids = list(
        db.session.scalars(
            sa.select(ThreadMessage.message_id)
            .where(ThreadMessage.ticket_id == ticket.id)
            .order_by(ThreadMessage.id)
        )
    )
    last_in = db.session.scalar(
        sa.select(ThreadMessage.message_id)
        .where(ThreadMessage.ticket_id == ticket.id, ThreadMessage.outgoing.is_(False))
        .order_by(ThreadMessage.id.desc())
        .limit(1)
    )
    # References: the first and the latest twenty, as long threads otherwise grow without bound.
    refs = ids if len(ids) <= 21 else [ids[0], *ids[-20:]]
    return last_in or (ids[-1] if ids else None), refs


def recipient_for(ticket: Ticket) -> str | None:
    thread = db.session.get(EmailThread, ticket.id)
    if thread is not None:
        return thread.address
    if ticket.citizen is not None and ticket.citizen.emails:
        return ticket.citizen.emails[0].address
    return None


def _record_mail(
    ticket: Ticket,
    to: str,
    text: str,
    *,
    author=None,
    sender_name: str | None = None,
    automatic: Automatic | None = None,
    faq_entry_id: int | None = None,
):
    """A mail to the citizen on this ticket, threaded under the last message, through the
    kernel's tickets.record_outgoing (outbox row and timeline entry together); an automatic one
    says so in its headers (RFC 3834), so the citizen's own responder does not answer it."""
    in_reply_to, references = _thread_headers(ticket)
    message, entry = tickets.record_outgoing(
        ticket,
        channel=mail.CHANNEL,
        recipient=to,
        subject=mail.reply_subject(ticket.subject, ticket.number),
        body=mail.with_signature(text),
        entry_body=text,
        headers=mail.mail_headers(
            in_reply_to=in_reply_to,
            references=references,
            sender_name=sender_name,
            extra_headers={"Auto-Submitted": "auto-replied"} if automatic else None,
        ),
        author=author,
        automatic=automatic,
        faq_entry_id=faq_entry_id,
    )
    mail.queued(message, ticket)
    return message, entry


def send_reply(actor: Actor, ticket: Ticket, text: str):
    """The consultant's answer: a MESSAGE_OUT entry and an outbox row in one transaction."""
    staff = actor.require(*DESK_ROLES)
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise ValidationFailed("返信の本文を入力してください。")
    if len(text) > MAX_REPLY:
        raise ValidationFailed(f"返信の本文は{MAX_REPLY}文字以内で入力してください。")
    if not ticket.is_open:
        raise ValidationFailed("完了した相談には返信できません。再開してから返信してください。")
    to = recipient_for(ticket)
    if not to:
        raise ValidationFailed("この相談には返信先のメールアドレスがありません。")
    _message, entry = _record_mail(
        ticket, to, text, author=staff, sender_name=staff.display_name if staff else None
    )
    tickets.take_if_unowned(actor, ticket)
    audit.record(actor, "create", "ticket", ticket.number, "email_reply")
    return entry


def send_ack(ticket: Ticket) -> OutboxMessage | None:
    """The automatic acknowledgement of a new ticket, when the kernel's automatic-answer policy
    allows it (once per ticket, never to an automatic reply)."""
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None or not auto_answer.may_answer_automatically(
        ticket, Automatic.ACK, utcnow(), first_message=True
    ):
        return None
    config = current_app.config["MADOGUCHI"]
    # The app's Jinja environment without request context processors: the worker has no request.
    body = current_app.jinja_env.get_template("email/mail/ack.txt").render(
        ticket=ticket,
        centre=config["CENTRE_NAME"],
        days=settings()["MAIL_ACK_ANSWER_DAYS"],
        hours=calendar.hours_summary(),
    )
    queued, _entry = _record_mail(ticket, thread.address, body, automatic=Automatic.ACK)
    thread.ack_outbox_id = queued.id
    return queued


def ask_satisfaction(ticket: Ticket, **_kwargs) -> OutboxMessage | None:
    """The ticket-closed receiver: a mail case's citizen gets one mail with the link to the
    satisfaction question (signed, single-use: consult.voice), through the outbox."""
    from consult import urls
    from consult.voice import services as voice

    thread = db.session.get(EmailThread, ticket.id)
    if thread is None or ticket.channel != Channel.EMAIL:
        return None
    token = voice.ask(ticket, mail.CHANNEL)
    if token is None:
        return None
    config = current_app.config["MADOGUCHI"]
    body = current_app.jinja_env.get_template("email/mail/satisfaction.txt").render(
        ticket=ticket,
        centre=config["CENTRE_NAME"],
        url=urls.public_url("voice.satisfaction", token=token),
    )
    queued, _entry = _record_mail(ticket, thread.address, body)
    return queued


def send_automatic(
    ticket: Ticket, text: str, *, automatic: Automatic, faq_entry_id: int | None = None
) -> OutboxMessage | None:
    """An automatic message to the citizen (e.g. an FAQ link out of hours), marked as such.

    The caller asked the automatic-answer policy first (consult.plugins.Channel)."""
    to = recipient_for(ticket)
    if not to or not ticket.is_open:
        return None
    message, _entry = _record_mail(ticket, to, text, automatic=automatic, faq_entry_id=faq_entry_id)
    return message


# --- staff side -------------------------------------------------------------------------------


def list_templates(active_only: bool = True) -> list[ReplyTemplate]:
    query = sa.select(ReplyTemplate).order_by(ReplyTemplate.name)
    if active_only:
        query = query.where(ReplyTemplate.active.is_(True))
    return list(db.session.scalars(query))


def save_template(actor: Actor, template_id: int | None, name: str, body: str, active=True):
    actor.require(Role.ADMIN, Role.CONSULTANT, Role.SUPERVISOR)
    name, body = (name or "").strip(), (body or "").replace("\r\n", "\n").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("定型文の名前を80文字以内で入力してください。")
    if not body or len(body) > MAX_REPLY:
        raise ValidationFailed(f"定型文の本文を{MAX_REPLY}文字以内で入力してください。")
    clash = db.session.scalar(sa.select(ReplyTemplate).where(ReplyTemplate.name == name))
    if template_id:
        template = db.session.get(ReplyTemplate, template_id)
        if template is None:
            raise NotFound("定型文が見つかりません。")
    else:
        template = ReplyTemplate()
        db.session.add(template)
    if clash is not None and clash is not template:
        raise ValidationFailed("同じ名前の定型文があります。別の名前にしてください。")
    template.name, template.body, template.active = name, body, bool(active)
    template.updated_at = utcnow()
    db.session.flush()
    return template


def register_proposed_citizen(actor: Actor, ticket: Ticket) -> Citizen:
    """The sender of a mail from an unknown address, registered as a citizen on request."""
    actor.require(*DESK_ROLES)
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None:
        raise NotFound("メールの相談ではありません。")
    if ticket.citizen is not None:
        raise ValidationFailed("この相談には既に相談者が紐付いています。")
    # Through the intake's choice: a citizen already known by this address (or name) is
    # offered first, never duplicated silently.
    return tickets.save_citizen(
        actor, ticket, citizens.CitizenInput(name=thread.sender_name or None, email=thread.address)
    )


def proposed_sender(ticket: Ticket) -> dict:
    """The sender's name and address as received, to fill the citizen form."""
    thread = db.session.get(EmailThread, ticket.id)
    if thread is None:
        return {}
    return {"name": thread.sender_name or "", "email": thread.address}


def list_inbound(status: str | None = None, limit: int = 200) -> list[InboundMail]:
    query = sa.select(InboundMail).order_by(InboundMail.id.desc()).limit(limit)
    if status:
        query = query.where(InboundMail.status == InboundStatus(status))
    return list(db.session.scalars(query))


def retry(actor: Actor, inbound_id: int) -> InboundMail:
    """An administrator retries a quarantined mail after a fix (in its own transaction)."""
    actor.require(Role.ADMIN)
    inbound = db.session.get(InboundMail, inbound_id)
    if inbound is None:
        raise NotFound("受信メールが見つかりません。")
    if inbound.status != InboundStatus.QUARANTINED:
        raise ValidationFailed("再処理できるのは隔離中のメールだけです。")
    audit.record(actor, "update", "email", inbound.id, "retry")
    db.session.commit()
    return process(inbound.id)


def process_pending(limit: int = 100) -> int:
    """Stored but unprocessed mail (a process died in between): handled once, oldest first.

    Claimed through the work queue: never a mail that `mail ingest`, `mail fetch` or another
    worker holds, unless that process stopped beating."""
    ids = queue.claim(INBOUND, limit)
    for chunk in _chunks(ids, BATCH_SIZE):
        process_batch(chunk)
    return len(ids)


def ingest_many(raws: list[bytes], source: str = "imap") -> list[Outcome]:
    """The bulk path (IMAP fetch, benchmark): store all durably and commit, then process in
    batches (a savepoint per message, a commit per batch). Per message, in order."""
    if _on_relay():
        stored = store_raw_many(raws, source)
        todo = []
    else:
        stored = store_raw_many(raws, source, claim=True)
        todo = [i for i, _status, created in stored if created]
    # Stored before (by an earlier fetch that died, say): ours only if nobody else holds it.
    earlier = [
        i
        for i, status, created in stored
        if not created and status == InboundStatus.PENDING and not _on_relay()
    ]
    for chunk in _chunks(list(dict.fromkeys(earlier))):
        todo.extend(queue.claim(INBOUND, len(chunk), ids=chunk))
    for chunk in _chunks(sorted(set(todo)), BATCH_SIZE):  # in arrival order
        process_batch(chunk)
    rows = {}
    for chunk in _chunks(sorted({i for i, _s, _c in stored})):
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


def ticket_panel(ticket: Ticket):
    if ticket.channel != Channel.EMAIL:
        return None
    thread = db.session.get(EmailThread, ticket.id)
    attachments = list(
        db.session.scalars(
            sa.select(MailAttachment)
            .where(MailAttachment.ticket_id == ticket.id)
            .order_by(MailAttachment.id)
        )
    )
    outgoing = {
        m.id: m
        for m in db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == "email"
            )
        )
    }
    from channels.email.forms import ReplyForm

    return "email/_panel.html", {
        "safe": safe_files.for_source("email_attachment", [a.id for a in attachments]),
        "thread": thread,
        "recipient": recipient_for(ticket),
        "attachments": attachments,
        "outgoing": sorted(outgoing.values(), key=lambda m: m.id),
        "templates": list_templates(),
        "form": ReplyForm(),
    }


def imap_state(mailbox: str) -> ImapState | None:
    return db.session.get(ImapState, mailbox)
