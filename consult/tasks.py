"""The kernel's long-running jobs that own their transactions (as a worker task does).

Disposal (consult.services.retention) runs here in batches: each batch is one short transaction
(a few hundred tickets), committed before the next is read, so the desk never waits behind it
on either database; files are deleted only after the commit that removed their rows.
"""

from __future__ import annotations

import time
from datetime import date

from consult.extensions import db
from consult.services import retention
from consult.services.actor import Actor


def dispose_approved(
    actor: Actor,
    *,
    dry_run: bool = False,
    batch_size: int = 200,
    today: date | None = None,
    pause: float = 0.0,
    progress=None,
) -> retention.Outcome:
    """Dispose of every approved, not held back, still due ticket. With `dry_run`, each batch
    is rolled back and no file is touched: the counts are what a real run would remove."""
    started = time.perf_counter()
    outcome = retention.Outcome(dry_run=dry_run)
    last = 0
    while True:
        items = retention.next_items(last, batch_size)
        if not items:
            break
        last = items[-1].id
        try:
            batch, held, not_due = retention.dispose_batch(actor, items, today=today)
        except BaseException:
            db.session.rollback()
            raise
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
            files = retention.remove_files(batch.files)
            batch.count("file", retention.KERNEL_LABELS["file"], files, {})
        outcome.tickets += len(batch.ticket_ids)
        outcome.skipped_hold += held
        outcome.skipped_not_due += not_due
        outcome.add(batch)
        if dry_run:
            files = sum(1 for path in batch.files if path.exists())
            if files:
                outcome.counts["file"] = outcome.counts.get("file", 0) + files
                outcome.labels["file"] = retention.KERNEL_LABELS["file"]
        if progress is not None:
            progress(outcome)
        if pause:
            time.sleep(pause)
    outcome.unlinked = retention.dispose_unlinked(actor, dry_run=dry_run, outcome=outcome)
    orphans = retention.orphan_files()
    if orphans:
        swept = len(orphans) if dry_run else retention.remove_files(orphans)
        outcome.counts["orphan_file"] = swept
        outcome.labels["orphan_file"] = "どの記録にも属さないファイル"
    if outcome.tickets and not dry_run:
        _compact_search_index()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _compact_search_index() -> None:
    """SQLite's FTS5 keeps deleted documents' terms in its segments until they are merged:
    'optimize' merges them, so the disposed words leave the index's own tables too. (On
    PostgreSQL the rows are gone at once; VACUUM, run by autovacuum, reclaims their pages.)"""
    import sqlalchemy as sa

    if db.session.get_bind().dialect.name != "sqlite":
        return
    db.session.execute(
        sa.text("INSERT INTO ticket_search_fts(ticket_search_fts) VALUES('optimize')")
    )
    db.session.commit()


def dispose_audit(
    actor: Actor, *, dry_run: bool = False, batch_size: int = 5000, today: date | None = None
) -> int:
    """Delete audit rows older than the audit log's own retention, in batches; recorded in the
    廃棄簿 as one row. Returns how many went (or would go)."""
    if dry_run:
        return retention.count_old_audit(today)
    total = 0
    while True:
        deleted = retention.dispose_audit_batch(actor, today=today, limit=batch_size)
        if not deleted:
            break
        total += deleted
        db.session.commit()
    retention.record_audit_disposal(actor, total, today)
    db.session.commit()
    return total


def prepare_monthly_list(today: date | None = None) -> int:
    """The worker's monthly job: on the first round of a month, draw up its 廃棄予定一覧 when
    there are candidates, for a supervisor to review and approve. Returns the items listed."""
    import sqlalchemy as sa

    from consult.models import DisposalItem, DisposalList, Ticket
    from consult.services.actor import SYSTEM
    from consult.timeutil import tokyo_today

    today = today or tokyo_today()
    month = retention.month_of(today)
    if db.session.scalar(sa.select(DisposalList.id).where(DisposalList.month == month)):
        db.session.rollback()
        return 0
    if not db.session.scalar(
        sa.select(Ticket.id).where(retention._due_condition(today)).limit(1)
    ) and not any(row.count for row in retention.unlinked_due(SYSTEM, today)):
        db.session.rollback()
        return 0
    try:
        listing = retention.prepare_list(SYSTEM, today)
        db.session.commit()
    except sa.exc.IntegrityError:  # another worker drew it up at the same moment
        db.session.rollback()
        return 0
    from consult.models import DisposalUnlinked

    listed = db.session.scalar(sa.select(sa.func.count()).where(DisposalItem.list_id == listing.id))
    unlinked = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(DisposalUnlinked.count), 0)).where(
            DisposalUnlinked.list_id == listing.id
        )
    )
    return listed + unlinked
