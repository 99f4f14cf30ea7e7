"""Job statuses and the bookkeeping every job shares: counting rows and pieces, keeping the first failures,
and ending a job once its last piece is done. Called inside the transaction that commits the work counted, so a
restarted job never counts anything twice."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from clarion.domain_events import JobFinished
from clarion.store import jobs as jobs_store
from clarion.store.database import Transaction
from clarion.store.jobs import MAX_FAILURES_KEPT, JobRow

# The JobStatus values Clarion passes through; Pinpoint's intermediate ones (PREPARING_FOR_INITIALIZATION,
# INITIALIZING, PENDING_JOB, COMPLETING, FAILING) are never observed: each such step commits with the next one.
CREATED = "CREATED"
PROCESSING = "PROCESSING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
FINISHED = frozenset({COMPLETED, FAILED})


def _kept(job: JobRow, reasons: Sequence[str]) -> str:
    """The job's failure list with `reasons` added, up to the first MAX_FAILURES_KEPT."""
    kept: list[str] = msgspec.json.decode(job.failures)
    kept.extend(reasons[: max(0, MAX_FAILURES_KEPT - len(kept))])
    return msgspec.json.encode(kept).decode()


def record(tx: Transaction, job: JobRow, processed: int, failures: Sequence[str], *, completed_pieces: int = 0) -> None:
    """Rows processed, rows failed (with their reasons) and pieces completed, in one step."""
    jobs_store.add_progress(tx, job, processed, len(failures), _kept(job, failures), completed_pieces=completed_pieces)


def fail_piece(tx: Transaction, job: JobRow, reason: str) -> None:
    """A whole piece failed (its file unreadable): counted as a failed piece, its reason kept."""
    jobs_store.add_progress(tx, job, 0, 0, _kept(job, [reason]), failed_pieces=1)


def end(tx: Transaction, job: JobRow, status: str, now: str) -> None:
    """The one way a job ends (COMPLETED or FAILED): recorded as JobFinished, which the process logs and counts."""
    jobs_store.set_status(tx, job.id, status, now)
    ended = jobs_store.get(tx, job.app_id, job.id, job.job_type) or job
    failures = tuple(msgspec.json.decode(ended.failures))
    tx.record(JobFinished(job.app_id, job.id, job.job_type, status, failures))


def finish_if_done(tx: Transaction, app_id: str, job_id: str, job_type: str, now: str) -> JobRow | None:
    """End the job once every piece is done: FAILED if any piece failed (as Pinpoint). The job ended, or None."""
    job = jobs_store.get(tx, app_id, job_id, job_type)
    if job is None or job.status != PROCESSING or job.completed_pieces + job.failed_pieces < job.total_pieces:
        return None
    end(tx, job, FAILED if job.failed_pieces else COMPLETED, now)
    return job


def fail_job(tx: Transaction, job: JobRow, reason: str, now: str) -> None:
    """The job cannot run at all (its source is missing, say): FAILED with the reason as its failure."""
    jobs_store.add_progress(tx, job, 0, 0, _kept(job, [reason]))
    end(tx, job, FAILED, now)
