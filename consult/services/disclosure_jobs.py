"""Disclosure bundles made by the worker (開示請求への対応): request, production, download, expiry.

A bundle of a citizen with hundreds of cases takes seconds to collect and print: it is never
made inside a web request. A supervisor asks for it (`request_bundle`: one row in
`disclosure_job`, audited); the worker (`build_due`, a leased work queue like the outbox's:
consult.services.queue) collects it as that supervisor, renders the PDF or the JSON and stores
it under DATA_DIR/disclosure/ by a generated name, outside anything the web server serves; the
page says 作成中… until then, and follows the live channel (the event `disclosure.changed`, to
the person who asked and the supervisors), or a reload. A failure is shown with its reason and
can be asked again (`retry`).

The file is served only to the roles that may produce it (`download`), each download audited;
it is deleted after KEEP_DAYS (`expire_due`) and with the citizen's disposal
(consult.services.retention). The row holds ids, times and sizes only. `madoguchi citizen
disclose` still produces the bundle at once, on the command line (consult.cli).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from consult.extensions import db
from consult.models import Citizen, DisclosureJob, DisclosureStatus
from consult.services import audit, disclosure, queue
from consult.services.actor import Actor
from consult.services.errors import NotFound, PermissionDenied, ValidationFailed
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.disclosure")

KEEP_DAYS = 7  # the produced file is kept this long, then deleted (a new one can be made)
MAX_ATTEMPTS = 3
FORMATS = {"pdf": ("application/pdf", "PDF（A4）"), "json": ("application/json", "JSON")}
LIVE_KIND = "disclosure.changed"


def _describe(row: DisclosureJob) -> str:
    return f"開示請求の書類 {row.id}（相談者番号 {row.citizen_id}、{row.fmt.upper()}）"


def _retry(row: DisclosureJob) -> None:
    row.status = DisclosureStatus.PENDING
    row.next_attempt_at = utcnow()
    row.attempts = 0
    row.last_error = None


QUEUE = queue.QueueSpec(
    name="disclosure",
    label="開示請求の書類作成",
    model=DisclosureJob,
    pending=DisclosureStatus.PENDING,
    claimed=DisclosureStatus.PENDING,
    failed=DisclosureStatus.FAILED,
    describe=_describe,
    retry=_retry,
)


def folder() -> Path:
    return Path(current_app.config["MADOGUCHI"]["DATA_DIR"]) / "disclosure"


def path_of(job: DisclosureJob) -> Path | None:
    if not job.stored_name:
        return None
    return folder() / job.stored_name[:2] / f"{job.stored_name}.{job.fmt}"


def _publish(job: DisclosureJob) -> None:
    from consult.live import services as live

    audience = ["role:supervisor"]
    if job.requested_by_id:
        audience.append(f"staff:{job.requested_by_id}")
    live.publish(
        LIVE_KIND,
        audience,
        {"job": job.id, "citizen": job.citizen_id, "status": str(job.status)},
    )


def request_bundle(actor: Actor, citizen: Citizen, fmt: str) -> DisclosureJob:
    """Ask the worker for the bundle; a request of the same format still waiting is reused
    (a double click makes one)."""
    staff = actor.require(*disclosure.DISCLOSE_ROLES)
    if fmt not in FORMATS:
        raise ValidationFailed("作成する形式（PDFまたはJSON）を選んでください。")
    waiting = db.session.scalar(
        sa.select(DisclosureJob).where(
            DisclosureJob.citizen_id == citizen.id,
            DisclosureJob.fmt == fmt,
            DisclosureJob.status == DisclosureStatus.PENDING,
        )
    )
    if waiting is not None:
        return waiting
    job = DisclosureJob(
        citizen_id=citizen.id,
        fmt=fmt,
        requested_by_id=staff.id if staff else None,
        status=DisclosureStatus.PENDING,
        attempts=0,
        downloads=0,
        next_attempt_at=utcnow(),
    )
    db.session.add(job)
    db.session.flush()
    audit.record(actor, "disclose_request", "citizen", citizen.id, f"format={fmt} job={job.id}")
    _publish(job)
    return job


def jobs_of(actor: Actor, citizen: Citizen, limit: int = 20) -> list[DisclosureJob]:
    actor.require(*disclosure.DISCLOSE_ROLES)
    return list(
        db.session.scalars(
            sa.select(DisclosureJob)
            .where(DisclosureJob.citizen_id == citizen.id)
            .order_by(DisclosureJob.id.desc())
            .limit(limit)
        )
    )


SLOW_AFTER = timedelta(minutes=10)  # a bundle still waiting this long: say so, name the worker


def slow_ids(actor: Actor, citizen: Citizen) -> set[int]:
    """The citizen's bundles still waiting after SLOW_AFTER (the worker may not be running)."""
    actor.require(*disclosure.DISCLOSE_ROLES)
    return set(
        db.session.scalars(
            sa.select(DisclosureJob.id).where(
                DisclosureJob.citizen_id == citizen.id,
                DisclosureJob.status == DisclosureStatus.PENDING,
                DisclosureJob.created_at < utcnow() - SLOW_AFTER,
            )
        )
    )


def get_job(citizen: Citizen, job_id: int) -> DisclosureJob:
    job = db.session.get(DisclosureJob, job_id)
    if job is None or job.citizen_id != citizen.id:
        raise NotFound("その書類はありません。")
    return job


def retry(actor: Actor, job: DisclosureJob) -> DisclosureJob:
    """A failed (or expired) bundle, asked again."""
    actor.require(*disclosure.DISCLOSE_ROLES)
    if job.status not in (DisclosureStatus.FAILED, DisclosureStatus.EXPIRED):
        raise ValidationFailed("この書類は作成中か、作成済みです。")
    citizen = db.session.get(Citizen, job.citizen_id)
    return request_bundle(actor, citizen, job.fmt)


def download(actor: Actor, job: DisclosureJob) -> tuple[Path, str, str]:
    """(file, download name, media type) of a ready bundle; audited each time."""
    actor.require(*disclosure.DISCLOSE_ROLES)
    path = path_of(job)
    if job.status != DisclosureStatus.READY or path is None or not path.exists():
        raise NotFound("この書類はまだ作成されていないか、保管期間が過ぎて削除されました。")
    if job.expires_at is not None and job.expires_at <= utcnow():
        raise NotFound("この書類は保管期間が過ぎました。もう一度作成してください。")
    db.session.execute(
        sa.update(DisclosureJob)
        .where(DisclosureJob.id == job.id)
        .values(downloads=DisclosureJob.downloads + 1)
    )
    audit.record(
        actor, "disclose_download", "citizen", job.citizen_id, f"format={job.fmt} job={job.id}"
    )
    mimetype = FORMATS[job.fmt][0]
    return path, f"disclosure-{job.citizen_id}-{job.id}.{job.fmt}", mimetype


# --- the worker ------------------------------------------------------------------------------


def _render(actor: Actor, job: DisclosureJob) -> tuple[bytes, int, int]:
    bundle = disclosure.produce(actor, job.citizen_id, job.fmt)
    counts = len(bundle.items), bundle.review_count
    if job.fmt == "pdf":
        return disclosure.render_pdf(bundle), *counts
    return bundle.to_json().encode("utf-8"), *counts


def build_one(job_id: int) -> bool:
    """Produce one claimed job; True when it is ready."""
    from consult.models import Staff

    job = db.session.get(DisclosureJob, job_id)
    requester = db.session.get(Staff, job.requested_by_id) if job.requested_by_id else None
    actor = Actor(requester, "worker")
    error: str | None = None
    final = False
    data, items, review = b"", 0, 0
    try:
        data, items, review = _render(actor, job)
    except PermissionDenied:
        error = "依頼した職員に作成の権限がなくなったため、作成できませんでした。"
        final = True
    except NotFound:
        error = "相談者の記録が見つからないため、作成できませんでした。"
        final = True
    except Exception as exc:  # retried with back-off: the reason, never the data
        log.exception("disclosure job %s failed", job_id)
        error = f"作成中にエラーが発生しました（{type(exc).__name__}）。"
    if error is not None:
        db.session.rollback()
        if queue.hold(QUEUE, job_id):
            job = db.session.get(DisclosureJob, job_id)
            if queue.settle_failure(QUEUE, job, error, MAX_ATTEMPTS, final=final):
                _publish(job)
        db.session.commit()
        return False
    stored_name = secrets.token_hex(16)
    target = folder() / stored_name[:2] / f"{stored_name}.{job.fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if not queue.hold(QUEUE, job_id):
        target.unlink(missing_ok=True)
        db.session.rollback()
        return False
    job = db.session.get(DisclosureJob, job_id)
    queue.release(job)
    now = utcnow()
    job.attempts = (job.attempts or 0) + 1
    job.status = DisclosureStatus.READY
    job.stored_name = stored_name
    job.size = len(data)
    job.items, job.review_count = items, review
    job.last_error = None
    job.finished_at = now
    job.expires_at = now + timedelta(days=KEEP_DAYS)
    _publish(job)
    db.session.commit()
    return True


def build_due(limit: int = 1) -> int:
    """The worker's task: one bundle a round (each may take seconds)."""
    done = 0
    for job_id in queue.claim(QUEUE, limit):
        if build_one(job_id):
            done += 1
    return done


def expire_due(now=None) -> int:
    """Delete the files kept past KEEP_DAYS; the row stays, marked expired."""
    now = now or utcnow()
    expired = 0
    for job in db.session.scalars(
        sa.select(DisclosureJob).where(
            DisclosureJob.status == DisclosureStatus.READY, DisclosureJob.expires_at <= now
        )
    ):
        path = path_of(job)
        if path is not None:
            path.unlink(missing_ok=True)
        job.status = DisclosureStatus.EXPIRED
        job.stored_name = None
        expired += 1
    db.session.commit()
    return expired


def files_of_citizens(connection, citizen_ids: list[int]) -> list[Path]:
    """For disposal: the stored bundles of these citizens (their rows go in the same batch)."""
    table = DisclosureJob.__table__
    found = []
    for stored_name, fmt in connection.execute(
        sa.select(table.c.stored_name, table.c.fmt).where(
            table.c.citizen_id.in_(citizen_ids), table.c.stored_name.is_not(None)
        )
    ):
        found.append(folder() / stored_name[:2] / f"{stored_name}.{fmt}")
    return found
