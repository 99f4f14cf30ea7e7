"""Import throughput: N endpoints from one CSV file through an import job, against baselines from the same run.

    .venv/bin/python -m bench.imports [--rows 1000000] [--database-url postgresql://...]

(run as a module: a script run from bench/ would see bench/email.py in place of the standard library's email)

In one process, on a fresh store in a temporary folder:
  parse        reading and parsing the CSV alone (clarion.jobs.formats), no store: the ceiling
  batch        the same rows through Endpoints.update_endpoints_batch in 100-item calls, 32 in flight (what a
               client pushing the file through UpdateEndpointsBatch would cost the server, minus HTTP)
  import       CreateImportJob's work: the job's queue items run by a Worker (one file = one piece) into a
               second project, until the job is COMPLETED
Each prints rows/s; the goal is 1M rows in at most 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clarion.clock import SystemClock
from clarion.config import Settings
from clarion.context import CallContext
from clarion.endpoints import service as endpoints
from clarion.jobs import service as jobs
from clarion.jobs.formats import CsvFormat
from clarion.jobs.locations import lines
from clarion.jobs.service import IMPORT
from clarion.logs import configure_logging
from clarion.projects import service as projects
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker
from clarion.services import Services, open_services

HEADER = ["Id", "ChannelType", "Address", "Location.Country", "Demographic.Platform", "User.UserId", "Metrics.score"]
BATCH = 100
IN_FLIGHT = 32


def context() -> CallContext:
    return CallContext(uuid.uuid4().hex, "us-east-1", "000000000000", SystemClock().now())


def write_file(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for n in range(rows):
            writer.writerow(
                [f"ep-{n:08d}", "EMAIL", f"user{n}@example.com", "US", "ios", f"user-{n // 3}", str(n % 100)]
            )


async def parse_only(services: Services, app_id: str, path: Path) -> list[dict[str, Any]]:
    """The parse baseline; returns the parsed items for the batch baseline."""
    items: list[dict[str, Any]] = []
    csv_format: CsvFormat | None = None
    line = 0
    async for chunk in lines(services.locations.read(app_id, path.as_uri())):
        first, line = line + 1, line + len(chunk)
        if csv_format is None:
            csv_format, chunk, first = CsvFormat(chunk[0]), chunk[1:], first + 1
        items.extend({"Id": row.endpoint_id, **(row.request or {})} for row in csv_format.parse(first, chunk))
    return items


async def through_batches(services: Services, app_id: str, items: list[dict[str, Any]]) -> None:
    pending: set[asyncio.Task[None]] = set()
    for start in range(0, len(items), BATCH):
        if len(pending) >= IN_FLIGHT:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        batch = items[start : start + BATCH]
        write = endpoints.update_endpoints_batch(services.db, services.endpoint_writer, context(), app_id, batch)
        pending.add(asyncio.create_task(write))
    await asyncio.gather(*pending)


async def through_job(services: Services, app_id: str, path: Path) -> dict[str, Any]:
    job = await jobs.create_import_job(
        services.db,
        services.queue,
        services.locations,
        context(),
        app_id,
        {"S3Url": path.as_uri(), "RoleArn": "arn:aws:iam::0:role/bench", "Format": "CSV"},
    )
    worker = Worker(services.queue, services.queue_handlers, services.settings.queue)
    while True:
        await worker.run_once()
        status = await jobs.get_job(services.db, app_id, job["Id"], IMPORT)
        if status["JobStatus"] in ("COMPLETED", "FAILED"):
            return status


async def main(rows: int, database_url: str) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        settings = Settings(data_dir=data_dir, database_url=database_url, queue=QueueSettings(workers=0))
        services = await open_services(settings)
        try:
            job_app = (await projects.create_app(services.db, context(), "job", None))["Id"]
            path = data_dir / "imports" / job_app / "endpoints.csv"  # a project imports from its own folder only
            write_file(path, rows)
            size_mb = path.stat().st_size / 1e6

            def report(name: str, seconds: float) -> None:
                print(f"{name:<8} {rows:>9,} rows in {seconds:7.2f} s  = {rows / seconds:>9,.0f} rows/s")

            started = time.perf_counter()
            items = await parse_only(services, job_app, path)
            report("parse", time.perf_counter() - started)

            batch_app = (await projects.create_app(services.db, context(), "batch", None))["Id"]
            started = time.perf_counter()
            await through_batches(services, batch_app, items)
            report("batch", time.perf_counter() - started)
            del items

            started = time.perf_counter()
            job = await through_job(services, job_app, path)
            report("import", time.perf_counter() - started)
            assert job["JobStatus"] == "COMPLETED" and job["TotalProcessed"] == rows, job
            store = "PostgreSQL" if settings.uses_postgres else "SQLite"
            print(f"store {store}, file {size_mb:.0f} MB, {settings.jobs.import_batch_rows} rows per commit")
        finally:
            await services.aclose()
            services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="postgresql://... (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.database_url))
