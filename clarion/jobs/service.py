"""Import and export jobs as the API sees them: create (validated, then queued), get, list.

The work itself runs on the queue (imports.py, exports.py); creating a job commits the job row and its first
queue item in one transaction, so a job is never created without the work that will run it.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import msgspec

from clarion import paging
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, SegmentChanged
from clarion.errors import BadRequest, NotFound
from clarion.jobs.locations import Locations
from clarion.projects.service import require_app
from clarion.queue.work_queue import StoreQueue
from clarion.segments.service import require_segment
from clarion.store import jobs as jobs_store
from clarion.store import segments as segment_store
from clarion.store.database import Database, Transaction
from clarion.store.jobs import JobRow

IMPORT = "IMPORT"
EXPORT = "EXPORT"
IMPORT_SEGMENT = "IMPORT"  # SegmentType of segments import jobs define
IMPORT_PREPARE = "import.prepare"
IMPORT_PIECE = "import.piece"
EXPORT_RUN = "export.run"


def job_response(row: JobRow) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ApplicationId": row.app_id,
        "CompletedPieces": row.completed_pieces,
        "CreationDate": row.created_at,
        "Definition": msgspec.json.decode(row.definition),
        "FailedPieces": row.failed_pieces,
        "Failures": msgspec.json.decode(row.failures),
        "Id": row.id,
        "JobStatus": row.status,
        "TotalFailures": row.total_failures,
        "TotalPieces": row.total_pieces,
        "TotalProcessed": row.total_processed,
        "Type": row.job_type,
    }
    if row.completed_at:
        response["CompletionDate"] = row.completed_at
    return response


def import_definition(definition: dict[str, Any], job_id: str, size: int, channel_counts: dict[str, int]) -> str:
    """An IMPORT segment's stored definition: SegmentImportResource as GetSegment shows it."""
    resource = {
        "ChannelCounts": channel_counts,
        "ExternalId": definition.get("ExternalId") or job_id,
        "Format": definition["Format"],
        "RoleArn": definition["RoleArn"],
        "S3Url": definition["S3Url"],
        "Size": size,
    }
    return msgspec.json.encode({"ImportDefinition": resource}).decode()


async def create_import_job(
    db: Database, queue: StoreQueue, locations: Locations, ctx: CallContext, app_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Pinpoint's rules (API Reference, "Import Jobs"): SegmentId updates that imported segment; DefineSegment makes a
    new one named SegmentName. RegisterEndpoints left out means true (an import that neither registers endpoints nor
    defines a segment would do nothing)."""
    locations.check(app_id, request["S3Url"], export=False, member="S3Url")
    segment_id = request.get("SegmentId")
    define = bool(request.get("DefineSegment")) or segment_id is not None
    if define and segment_id is None and not (request.get("SegmentName") or "").strip():
        raise BadRequest("SegmentName is required when DefineSegment is true")
    job_id = uuid.uuid4().hex
    now = iso_millis(ctx.now)
    definition = {"RegisterEndpoints": True, **request, "DefineSegment": define}

    def work(tx: Transaction) -> dict[str, Any]:
        nonlocal segment_id
        require_app(tx, app_id)
        if segment_id is not None:
            current = require_segment(tx, app_id, segment_id, lock=True)
            if current.segment_type != IMPORT_SEGMENT:
                raise BadRequest(f"Segment {segment_id!r} is {current.segment_type}; an import updates IMPORT ones")
            name = definition.get("SegmentName") or current.name
            segment_store.add_version(
                tx, app_id, segment_id, current.latest + 1, name, now, import_definition(definition, job_id, 0, {})
            )
            tx.record(SegmentChanged(app_id, segment_id, Change.UPDATED))
        elif define:
            segment_id = uuid.uuid4().hex
            segment_store.insert(
                tx,
                app_id,
                segment_id,
                IMPORT_SEGMENT,
                now,
                definition["SegmentName"],
                import_definition(definition, job_id, 0, {}),
            )
            tx.record(SegmentChanged(app_id, segment_id, Change.CREATED))
        if segment_id is not None:
            definition["SegmentId"] = segment_id
        jobs_store.insert(tx, app_id, job_id, IMPORT, segment_id, msgspec.json.encode(definition).decode(), now)
        queue.enqueue_in(
            tx, IMPORT_PREPARE, {"app_id": app_id, "job_id": job_id}, key=f"import:{job_id}", project=app_id
        )
        return job_response(_require(tx, app_id, job_id, IMPORT))

    response = await db.write(work)
    queue.wake()
    return response


async def create_export_job(
    db: Database, queue: StoreQueue, locations: Locations, ctx: CallContext, app_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    locations.check(app_id, request["S3UrlPrefix"], export=True, member="S3UrlPrefix")
    segment_id = request.get("SegmentId")
    job_id = uuid.uuid4().hex
    now = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        if segment_id is not None:
            require_segment(tx, app_id, segment_id)
            version = request.get("SegmentVersion")
            if version is not None and segment_store.get_version(tx, app_id, segment_id, version) is None:
                raise NotFound(f"Segment {segment_id!r} has no version {version}")
        jobs_store.insert(tx, app_id, job_id, EXPORT, segment_id, msgspec.json.encode(request).decode(), now)
        queue.enqueue_in(tx, EXPORT_RUN, {"app_id": app_id, "job_id": job_id}, key=f"export:{job_id}", project=app_id)
        return job_response(_require(tx, app_id, job_id, EXPORT))

    response = await db.write(work)
    queue.wake()
    return response


# A name kept in a file path: plain characters only, and one of the text formats an import reads (no gzip: the
# content arrives as text).
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(csv|json|jsonl|ndjson)", re.IGNORECASE)


async def upload_import_file(
    db: Database, locations: Locations, app_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """ClarionUploadImportFile: a CSV or JSON file's text, kept where the project's import jobs may read it."""
    name = request["FileName"]
    if not UPLOAD_NAME.fullmatch(name):
        raise BadRequest(
            f"FileName {name!r} must be letters, digits, '.', '_' or '-' (at most 100) ending in .csv, .json, "
            ".jsonl or .ndjson"
        )
    content = request["Content"].encode()
    if not content.strip():
        raise BadRequest(f"The file {name!r} is empty")
    await db.read(lambda tx: require_app(tx, app_id))
    return {"S3Url": await locations.keep_upload(app_id, name, content), "Size": len(content)}


# What one download may hold: an export part of 10,000 endpoints is about 1 MB of gzip; a part this large means the
# operator raised export_part_rows far enough that the file belongs in S3 or a folder rather than in a JSON answer.
EXPORT_FILE_BYTES = 32 << 20


async def export_file(
    db: Database, locations: Locations, app_id: str, job_id: str | None, part: str | None
) -> dict[str, Any]:
    """ClarionGetExportFile: part `part` (0, 1, ...) of what an export job wrote, read back from where it wrote it."""
    if not job_id:
        raise BadRequest("job-id is required: the export job whose file to read")
    if part is None or not part.isdigit() or len(part) > 6:
        raise BadRequest(f"part must be the number of one of the job's files (0, 1, ...), not {part!r}")
    number = int(part)
    job = await db.read(lambda tx: _require(tx, app_id, job_id, EXPORT))
    written = job.total_pieces - job.failed_pieces
    if number >= written:
        raise NotFound(f"Export job {job_id!r} wrote {written} file(s); there is no part {number}")
    name = f"{job.id}/part-{number:05d}.gz"
    prefix = msgspec.json.decode(job.definition)["S3UrlPrefix"]
    body = await locations.read_written(app_id, prefix, name, EXPORT_FILE_BYTES)
    return {
        "JobId": job.id,
        "Part": number,
        "FileName": f"{job.id}-part-{number:05d}.gz",
        "Size": len(body),
        "Content": base64.b64encode(body).decode(),
    }


def _require(tx: Transaction, app_id: str, job_id: str, job_type: str) -> JobRow:
    require_app(tx, app_id)
    row = jobs_store.get(tx, app_id, job_id, job_type)
    if row is None:
        raise NotFound(f"{job_type.capitalize()} job {job_id!r} not found in application {app_id!r}")
    return row


async def get_job(db: Database, app_id: str, job_id: str, job_type: str) -> dict[str, Any]:
    return await db.read(lambda tx: job_response(_require(tx, app_id, job_id, job_type)))


async def list_jobs(
    db: Database, app_id: str, job_type: str, page_size: str | None, token: str | None, segment_id: str | None = None
) -> dict[str, Any]:
    """Newest first, like Pinpoint's job lists."""
    size = paging.page_size(page_size)
    before = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        if segment_id is not None:
            require_segment(tx, app_id, segment_id)
        else:
            require_app(tx, app_id)
        rows = jobs_store.page(tx, app_id, job_type, segment_id, before, size + 1)
        return paging.page_response(rows, size, job_response, lambda row: row.seq)

    return await db.read(work)
