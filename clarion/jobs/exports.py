"""Running an export job on the queue: endpoints in key order, written as gzip'd newline-delimited JSON parts
(`<prefix>/<job id>/part-00000.gz`, EndpointResponse-shaped lines, as Pinpoint's exports are).

Each part is written first, then its progress (parts written, last endpoint key, rows) commits with the lease
check. A job interrupted between the two rewrites that part whole, under the same name, and goes on.
"""

from __future__ import annotations

import gzip

import msgspec

from clarion.clock import Clock, iso_millis
from clarion.config import Settings
from clarion.endpoints.service import endpoint_response
from clarion.errors import NotFound
from clarion.jobs import progress
from clarion.jobs.imports import gave_up, is_permanent
from clarion.jobs.locations import Locations
from clarion.jobs.service import EXPORT, EXPORT_RUN
from clarion.queue.work_queue import BuriedItem, Lease, StoreQueue
from clarion.queue.worker import Handler
from clarion.segments.engine import SegmentEngine
from clarion.segments.plan import Node
from clarion.store import endpoints as endpoint_store
from clarion.store import jobs as jobs_store
from clarion.store import segment_sql
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.jobs import JobRow, PieceRow

CURSOR_PIECE = 0  # an export keeps its cursor in one job_pieces row


class ExportRunner:
    def __init__(
        self,
        db: Database,
        queue: StoreQueue,
        locations: Locations,
        engine: SegmentEngine,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.db = db
        self.queue = queue
        self.locations = locations
        self.settings = settings
        self.clock = clock
        self.engine = engine  # plans segments; the pages are read here with the SQL compiler
        queue.on_buried(EXPORT_RUN, self._buried)

    def handlers(self) -> dict[str, Handler]:
        return {EXPORT_RUN: self.run}

    @property
    def _visibility(self) -> float:
        return self.settings.queue.visibility_seconds

    async def run(self, lease: Lease) -> None:
        app_id, job_id = lease.payload["app_id"], lease.payload["job_id"]
        state = await self.db.write(lambda tx: self._start(tx, lease, app_id, job_id))
        if state is None:
            return
        job, cursor = state
        definition = msgspec.json.decode(job.definition)
        prefix = definition["S3UrlPrefix"]
        part, after = cursor.position, cursor.cursor or ""
        try:
            # A segment is planned once, when the export (re)starts: relative time windows hold still meanwhile.
            members = None
            if job.segment_id is not None:
                members = await self.engine.segment_plan(app_id, job.segment_id, definition.get("SegmentVersion"))
            done = False
            while not done:
                part, after, done = await self._export_part(lease, job, prefix, part, after, members)
        except Exception as error:
            if not (is_permanent(error) or isinstance(error, NotFound)):
                raise
            reason = f"{prefix}: {error}"
            await self.db.write(lambda tx: self._fail(tx, lease, job, reason))

    async def _export_part(
        self, lease: Lease, job: JobRow, prefix: str, part: int, after: str, members: Node | None
    ) -> tuple[int, str, bool]:
        """Write the part after `after` and commit it; (parts written, last key, whether that was the end)."""
        size = self.settings.jobs.export_part_rows
        rows, users = await self.db.read_long(lambda tx: self._page(tx, job.app_id, after, size, members))
        if rows:
            lines = [msgspec.json.encode(endpoint_response(job.app_id, r, users.get(r.user_id or ""))) for r in rows]
            body = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6)
            await self.locations.write(job.app_id, prefix, f"{job.id}/part-{part:05d}.gz", body)
            after, part = rows[-1].endpoint_key, part + 1
        done = len(rows) < size
        await self.db.write(lambda tx: self._advance(tx, lease, job, part, after, len(rows), done))
        return part, after, done

    def _start(self, tx: Transaction, lease: Lease, app_id: str, job_id: str) -> tuple[JobRow, PieceRow] | None:
        """Move a new job to PROCESSING with an empty cursor; answer the job and its cursor."""
        self.queue.hold_in(tx, lease, self._visibility)
        job = jobs_store.get(tx, app_id, job_id, EXPORT, lock=True)
        if job is None or job.status in progress.FINISHED:
            return None
        if job.status == progress.CREATED:
            jobs_store.add_pieces(tx, app_id, job_id, [msgspec.json.decode(job.definition)["S3UrlPrefix"]])
            jobs_store.set_total_pieces(tx, job_id, 0)  # pieces are the parts written, counted as they are
            jobs_store.set_status(tx, job_id, progress.PROCESSING)
        cursor = jobs_store.get_piece(tx, job_id, CURSOR_PIECE)
        return None if cursor is None else (job, cursor)

    @staticmethod
    def _page(
        tx: Transaction, app_id: str, after: str, size: int, members: Node | None
    ) -> tuple[list[EndpointRow], dict[str, dict[str, list[str]]]]:
        """The next page of endpoints to export: the project's, or the segment's members."""
        if members is None:
            rows = jobs_store.endpoints_after(tx, app_id, after, size)
        else:
            keys = [key for key, _id in segment_sql.page(tx, app_id, members, after, size)]
            rows = jobs_store.endpoints_by_key(tx, app_id, keys)
        user_ids = sorted({row.user_id for row in rows if row.user_id})
        users = {uid: msgspec.json.decode(a) for uid, a in endpoint_store.user_attributes(tx, app_id, user_ids).items()}
        return rows, users

    def _advance(
        self, tx: Transaction, lease: Lease, job: JobRow, parts: int, after: str, rows: int, done: bool
    ) -> None:
        self.queue.hold_in(tx, lease, self._visibility)
        current = jobs_store.get(tx, job.app_id, job.id, EXPORT)
        if current is None:
            return
        jobs_store.set_piece(
            tx, job.id, CURSOR_PIECE, progress.COMPLETED if done else progress.PROCESSING, parts, after
        )
        progress.record(tx, current, rows, [], completed_pieces=1 if rows else 0)
        jobs_store.set_total_pieces(tx, job.id, parts)
        if done:
            progress.end(tx, current, progress.COMPLETED, iso_millis(self.clock.now()))

    def _fail(self, tx: Transaction, lease: Lease, job: JobRow, reason: str) -> None:
        self.queue.hold_in(tx, lease, self._visibility)
        self._record_failure(tx, job.app_id, job.id, reason)

    def _buried(self, tx: Transaction, item: BuriedItem) -> None:
        """The queue gave up on the export: it fails, saying why."""
        job = jobs_store.get(tx, item.payload["app_id"], item.payload["job_id"], EXPORT)
        if job is not None:
            prefix = msgspec.json.decode(job.definition)["S3UrlPrefix"]
            self._record_failure(tx, job.app_id, job.id, f"{prefix}: {gave_up(item)}")

    def _record_failure(self, tx: Transaction, app_id: str, job_id: str, reason: str) -> None:
        current = jobs_store.get(tx, app_id, job_id, EXPORT)
        if current is not None and current.status not in progress.FINISHED:
            progress.fail_piece(tx, current, reason)
            jobs_store.set_total_pieces(tx, job_id, current.completed_pieces + 1)
            progress.end(tx, current, progress.FAILED, iso_millis(self.clock.now()))
