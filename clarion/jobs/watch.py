"""`clarion jobs watch`: an import or export job's progress, read from the store, until it ends."""

from __future__ import annotations

import orjson

from clarion.jobs import progress
from clarion.jobs.service import EXPORT, IMPORT
from clarion.store import jobs as jobs_store
from clarion.store.database import Database, Transaction
from clarion.store.jobs import JobRow
from clarion.watching import Reader, Snapshot


def _find(tx: Transaction, app_id: str, job_id: str) -> JobRow | None:
    return jobs_store.get(tx, app_id, job_id, IMPORT) or jobs_store.get(tx, app_id, job_id, EXPORT)


def job_reader(app_id: str, job_id: str) -> Reader:
    async def read(db: Database) -> Snapshot | None:
        job = await db.read(lambda tx: _find(tx, app_id, job_id))
        if job is None:
            return None
        return Snapshot(
            description=f"{job.job_type.lower()} {job.status}",
            completed=job.completed_pieces + job.failed_pieces,
            total=job.total_pieces or None,
            detail=f"pieces  {job.total_processed:,} rows, {job.total_failures:,} failed",
            finished=job.status in progress.FINISHED,
            succeeded=job.status == progress.COMPLETED,
            notes=orjson.loads(job.failures)[:10],
        )

    return read
