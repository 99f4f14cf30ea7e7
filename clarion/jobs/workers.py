"""The queue handlers import and export jobs register, by kind."""

from __future__ import annotations

from clarion.clock import Clock
from clarion.config import Settings
from clarion.endpoints.service import EndpointWriter
from clarion.jobs.exports import ExportRunner
from clarion.jobs.imports import ImportRunner
from clarion.jobs.locations import Locations
from clarion.queue.work_queue import StoreQueue
from clarion.queue.worker import Handler
from clarion.segments.engine import SegmentEngine
from clarion.store.database import Database


def job_handlers(
    db: Database,
    queue: StoreQueue,
    locations: Locations,
    writer: EndpointWriter,
    engine: SegmentEngine,
    settings: Settings,
    clock: Clock,
) -> dict[str, Handler]:
    return {
        **ImportRunner(db, queue, locations, writer, settings, clock).handlers(),
        **ExportRunner(db, queue, locations, engine, settings, clock).handlers(),
    }
