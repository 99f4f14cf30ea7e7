"""Running an import job on the queue: `import.prepare` lists the files (one piece each), `import.piece` reads
one file and upserts its rows in batches.

Each batch commits, in one transaction, the endpoints it upserts, the segment members it adds, the job's
counters and the line the piece has reached, with the queue lease checked in the same transaction. A job
interrupted anywhere (a killed process, a lost lease) resumes after the last committed line, so nothing is
counted twice and no later row is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from clarion.clock import Clock, iso_millis
from clarion.config import Settings
from clarion.context import CallContext
from clarion.domain_events import Change, SegmentChanged
from clarion.endpoints.service import EndpointWriter, endpoint_key
from clarion.errors import NotFound
from clarion.jobs import progress
from clarion.jobs.formats import CsvFormat, HeaderError, ImportRow, parse_json_lines
from clarion.jobs.locations import Locations, SourceError, lines
from clarion.jobs.s3 import S3Error
from clarion.jobs.service import IMPORT, IMPORT_PIECE, IMPORT_PREPARE, import_definition
from clarion.outbound.client import OutboundError
from clarion.queue.work_queue import BuriedItem, Lease, StoreQueue
from clarion.queue.worker import Handler
from clarion.store import endpoints as endpoint_store
from clarion.store import jobs as jobs_store
from clarion.store import segments as segment_store
from clarion.store.database import Database, Transaction
from clarion.store.jobs import JobRow

NEW_ENDPOINT_NEEDS = "a new endpoint needs Address and ChannelType"


def is_permanent(error: Exception) -> bool:
    """Errors a retry cannot fix: the location refused, the file unreadable as the format says. Other errors go
    back to the queue, which retries them and, when they keep failing, buries the item (`on_buried` below)."""
    if isinstance(error, (SourceError, HeaderError)):
        return True
    if isinstance(error, OutboundError):
        return error.permanent
    if isinstance(error, S3Error):
        return 400 <= error.status < 500
    return False


def gave_up(item: BuriedItem) -> str:
    """A buried item's reason, as a job's Failures entry says it."""
    return f"gave up after {item.attempts} attempts: {item.reason}"


class JobGone(Exception):
    """The job (or its project) was deleted while it ran."""


@dataclass(frozen=True, slots=True)
class _Piece:
    app_id: str
    job: JobRow
    number: int
    source: str
    position: int  # the last line already committed
    definition: dict[str, Any]


class ImportRunner:
    def __init__(
        self,
        db: Database,
        queue: StoreQueue,
        locations: Locations,
        writer: EndpointWriter,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.db = db
        self.queue = queue
        self.locations = locations
        self.writer = writer
        self.settings = settings
        self.clock = clock
        queue.on_buried(IMPORT_PREPARE, self._prepare_buried)
        queue.on_buried(IMPORT_PIECE, self._piece_buried)

    def handlers(self) -> dict[str, Handler]:
        return {IMPORT_PREPARE: self.prepare, IMPORT_PIECE: self.run_piece}

    @property
    def _visibility(self) -> float:
        return self.settings.queue.visibility_seconds

    async def prepare(self, lease: Lease) -> None:
        app_id, job_id = lease.payload["app_id"], lease.payload["job_id"]
        job = await self.db.read(lambda tx: jobs_store.get(tx, app_id, job_id, IMPORT))
        if job is None or job.status != progress.CREATED:
            return  # deleted, or prepared by an earlier delivery
        definition = msgspec.json.decode(job.definition)
        try:
            files = await self.locations.list_files(app_id, definition["S3Url"], definition["Format"])
            if not files:
                raise SourceError(f"{definition['S3Url']} holds no {definition['Format']} files")
        except Exception as error:
            if not is_permanent(error):
                raise
            reason = str(error) if isinstance(error, SourceError) else f"{definition['S3Url']}: {error}"
            await self.db.write(lambda tx: self._fail_job(tx, lease, app_id, job_id, reason))
            return

        def work(tx: Transaction) -> None:
            self.queue.hold_in(tx, lease, self._visibility)
            current = jobs_store.get(tx, app_id, job_id, IMPORT, lock=True)
            if current is None or current.status != progress.CREATED:
                return
            jobs_store.add_pieces(tx, app_id, job_id, [file.url for file in files])
            jobs_store.set_status(tx, job_id, progress.PROCESSING)
            if current.segment_id is not None:  # the import defines the segment's members afresh
                jobs_store.clear_members(tx, app_id, current.segment_id)
            for number in range(len(files)):
                payload = {"app_id": app_id, "job_id": job_id, "piece": number}
                self.queue.enqueue_in(tx, IMPORT_PIECE, payload, key=f"import:{job_id}:{number}", project=app_id)

        await self.db.write(work)
        self.queue.wake()

    def _fail_job(self, tx: Transaction, lease: Lease, app_id: str, job_id: str, reason: str) -> None:
        self.queue.hold_in(tx, lease, self._visibility)
        self._record_failed_job(tx, app_id, job_id, reason)

    def _record_failed_job(self, tx: Transaction, app_id: str, job_id: str, reason: str) -> None:
        job = jobs_store.get(tx, app_id, job_id, IMPORT, lock=True)
        if job is not None and job.status not in progress.FINISHED:
            progress.fail_job(tx, job, reason, iso_millis(self.clock.now()))

    def _prepare_buried(self, tx: Transaction, item: BuriedItem) -> None:
        """The queue gave up listing the files: the job fails, saying why."""
        app_id, job_id = item.payload["app_id"], item.payload["job_id"]
        job = jobs_store.get(tx, app_id, job_id, IMPORT)
        source = msgspec.json.decode(job.definition)["S3Url"] if job is not None else job_id
        self._record_failed_job(tx, app_id, job_id, f"{source}: {gave_up(item)}")

    async def run_piece(self, lease: Lease) -> None:
        piece = await self.db.read(lambda tx: self._load_piece(tx, lease.payload))
        if piece is None:
            return
        try:
            await self._import(lease, piece)
        except JobGone:
            return
        except Exception as error:
            if not is_permanent(error):
                raise
            reason = str(error)
            await self.db.write(lambda tx: self._fail_piece(tx, lease, piece, reason))

    @staticmethod
    def _load_piece(tx: Transaction, payload: dict[str, Any]) -> _Piece | None:
        app_id, job_id, number = payload["app_id"], payload["job_id"], payload["piece"]
        job = jobs_store.get(tx, app_id, job_id, IMPORT)
        row = jobs_store.get_piece(tx, job_id, number)
        if job is None or row is None or row.status != progress.PROCESSING:
            return None
        return _Piece(app_id, job, number, row.source, row.position, msgspec.json.decode(job.definition))

    async def _import(self, lease: Lease, piece: _Piece) -> None:
        batch_rows = self.settings.jobs.import_batch_rows
        csv_format: CsvFormat | None = None
        pending: list[ImportRow] = []
        line = 0  # lines read so far
        # One batch commits in the writer thread while the next is parsed; commits stay in file order.
        committing: asyncio.Future[None] | None = None
        try:
            async for chunk in lines(self.locations.read(piece.app_id, piece.source)):
                first = line + 1
                line += len(chunk)
                if piece.definition["Format"] == "CSV" and csv_format is None:
                    csv_format = CsvFormat(chunk[0])  # line 1 is the header
                    chunk, first = chunk[1:], first + 1
                skip = piece.position - first + 1  # lines committed by an earlier delivery
                if skip > 0:
                    chunk, first = chunk[skip:], first + skip
                if not chunk:
                    continue
                pending.extend(csv_format.parse(first, chunk) if csv_format else parse_json_lines(first, chunk))
                while len(pending) >= batch_rows:
                    batch, pending = pending[:batch_rows], pending[batch_rows:]
                    if committing is not None:
                        await committing
                    committing = asyncio.ensure_future(self._commit(lease, piece, batch, batch[-1].line, done=False))
            if committing is not None:
                await committing
        finally:
            if committing is not None and not committing.done():
                committing.cancel()  # its write still lands or not as a whole; a redelivery resumes from it
        await self._commit(lease, piece, pending, max(line, piece.position), done=True)

    async def _commit(self, lease: Lease, piece: _Piece, rows: list[ImportRow], position: int, *, done: bool) -> None:
        ctx = CallContext(piece.job.id, self.settings.region, self.settings.account_id, self.clock.now())
        await self.db.write(lambda tx: self._apply(tx, lease, ctx, piece, rows, position, done))

    def _apply(
        self,
        tx: Transaction,
        lease: Lease,
        ctx: CallContext,
        piece: _Piece,
        rows: list[ImportRow],
        position: int,
        done: bool,
    ) -> None:
        self.queue.hold_in(tx, lease, self._visibility)
        app_id = piece.app_id
        job = jobs_store.get(tx, app_id, piece.job.id, IMPORT)
        if job is None:
            raise JobGone(piece.job.id)
        failures: list[tuple[int, str]] = []

        def fail(row: ImportRow, reason: str) -> None:
            failures.append((row.line, f"{piece.source} line {row.line}: {reason}"))

        endpoints: list[tuple[ImportRow, str]] = []
        for row in rows:
            if row.error is not None:
                fail(row, row.error)
            elif row.user_id is None:
                endpoints.append((row, row.endpoint_id or self._generated_id(piece, row)))
        endpoints = self._drop_unknown_incomplete(tx, app_id, endpoints, fail)

        members: list[str] = []
        if piece.definition.get("RegisterEndpoints", True) and endpoints:
            try:
                outcomes = self.writer.apply(
                    tx, ctx, app_id, [(eid, row.request or {}) for row, eid in endpoints], all_or_nothing=False
                )
            except NotFound as gone:
                raise JobGone(str(gone)) from None
            for (row, eid), outcome in zip(endpoints, outcomes, strict=True):
                if outcome is None:
                    members.append(endpoint_key(eid))
                else:
                    fail(row, outcome)
        else:
            members = [endpoint_key(eid) for _row, eid in endpoints]
        if job.segment_id is not None:
            members += jobs_store.user_endpoint_keys(tx, app_id, [r.user_id for r in rows if r.user_id])
            jobs_store.add_members(tx, app_id, job.segment_id, members)

        reasons = [reason for _line, reason in sorted(failures)]
        progress.record(tx, job, len(rows), reasons, completed_pieces=1 if done else 0)
        jobs_store.set_piece(
            tx, job.id, piece.number, progress.COMPLETED if done else progress.PROCESSING, position, None
        )
        if done:
            self._finish_if_done(tx, app_id, job.id)

    @staticmethod
    def _generated_id(piece: _Piece, row: ImportRow) -> str:
        """A row without Id gets one derived from where it is, so a resumed job gives it the same id again."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{piece.job.id}/{piece.number}/{row.line}").hex

    @staticmethod
    def _drop_unknown_incomplete(
        tx: Transaction, app_id: str, endpoints: list[tuple[ImportRow, str]], fail: Callable[[ImportRow, str], None]
    ) -> list[tuple[ImportRow, str]]:
        """Rows without Address or ChannelType may only update endpoints that exist."""
        incomplete = [endpoint_key(eid) for row, eid in endpoints if not row.is_new_ready]
        if not incomplete:
            return endpoints
        existing = endpoint_store.fetch(tx, app_id, sorted(set(incomplete)))
        kept = []
        for row, eid in endpoints:
            if row.is_new_ready or endpoint_key(eid) in existing:
                kept.append((row, eid))
            elif row.endpoint_id is None:
                fail(row, f"no Id, and {NEW_ENDPOINT_NEEDS}")
            else:
                fail(row, f"endpoint {eid!r} does not exist and {NEW_ENDPOINT_NEEDS}")
        return kept

    def _finish_if_done(self, tx: Transaction, app_id: str, job_id: str) -> None:
        job = progress.finish_if_done(tx, app_id, job_id, IMPORT, iso_millis(self.clock.now()))
        if job is None or job.segment_id is None:
            return
        segment = segment_store.get(tx, app_id, job.segment_id)
        if segment is None:
            return
        size, channels = jobs_store.member_channel_counts(tx, app_id, job.segment_id)
        definition = import_definition(msgspec.json.decode(job.definition), job.id, size, channels)
        segment_store.set_definition(tx, app_id, job.segment_id, segment.version, definition)
        tx.record(SegmentChanged(app_id, job.segment_id, Change.UPDATED))  # its members are in

    def _fail_piece(self, tx: Transaction, lease: Lease, piece: _Piece, reason: str) -> None:
        self.queue.hold_in(tx, lease, self._visibility)
        self._record_failed_piece(tx, piece.app_id, piece.job.id, piece.number, reason)

    def _piece_buried(self, tx: Transaction, item: BuriedItem) -> None:
        """The queue gave up on a file: its piece fails (and the job, once its other pieces are done)."""
        app_id, job_id, number = item.payload["app_id"], item.payload["job_id"], item.payload["piece"]
        self._record_failed_piece(tx, app_id, job_id, number, gave_up(item))

    def _record_failed_piece(self, tx: Transaction, app_id: str, job_id: str, number: int, reason: str) -> None:
        """The piece fails with `reason`, kept among the job's Failures after the file it read."""
        job = jobs_store.get(tx, app_id, job_id, IMPORT)
        row = jobs_store.get_piece(tx, job_id, number)
        if job is None or row is None or row.status != progress.PROCESSING:
            return
        progress.fail_piece(tx, job, f"{row.source}: {reason}")
        jobs_store.set_piece(tx, job.id, number, progress.FAILED, row.position, None)
        self._finish_if_done(tx, app_id, job.id)
