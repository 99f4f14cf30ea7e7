"""The who/when/what dataset (clarion/store/dataset.py) written as Parquet files partitioned by project and day:
`clarion analytics export`, and the scheduled export a server runs once a day (docs/analytics.md).

Layout: `<folder>/<table>/app_id=<project>/day=<YYYY-MM-DD>/part-<uuid>.parquet` (Hive partitioning, which DuckDB,
Spark, Trino, pandas and most BI tools read as two more columns). Events, messages and outcomes go in the day of
their time (UTC); endpoints and users are a snapshot of the project, filed under the day the export ran. An export
replaces the partitions it covers, so exporting a day again (late events, a rerun) leaves one copy of it. Beside
the tables, `<folder>/clarion.duckdb` holds one view per table over its files, for tools that open a DuckDB file.

Rows are read from the store in keyset pages, loaded into DuckDB through a JSON file per page (the replica's
ingestion path, clarion/analytics/replica.py), and written by DuckDB's Parquet writer (zstd).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from clarion.clock import Clock, iso_millis
from clarion.logs import get_logger
from clarion.queue.work_queue import Lease, StoreQueue
from clarion.store import apps as app_store
from clarion.store import dataset
from clarion.store.database import Database, Transaction
from clarion.store.dataset import Table

log = get_logger("clarion.analytics.export")

PAGE_ROWS = 50_000
FLUSH_ROWS = 1_000_000  # rows held in DuckDB before they are written out
EXPORT_KIND = "analytics.export"
_TYPES = {"text": "VARCHAR", "integer": "INTEGER", "ms": "BIGINT", "iso": "VARCHAR", "json": "VARCHAR"}
_DAY_MS = 86_400_000


@dataclass(slots=True)
class ExportReport:
    folder: Path
    first_day: date
    last_day: date
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


def _output(table: Table, snapshot_day: str) -> str:
    """The staged rows as the files hold them: times typed, `<name>_ms` beside millisecond times, and `day`."""
    columns = []
    for column in table.columns:
        if column.kind == "ms":
            columns += [f"{column.name} AS {column.name}_ms", f"epoch_ms({column.name})::TIMESTAMPTZ AS {column.name}"]
        elif column.kind == "iso":
            columns.append(f"CAST({column.name} AS TIMESTAMPTZ) AS {column.name}")
        else:
            columns.append(column.name)
    time = table.timed
    if time is None:
        day = f"'{snapshot_day}'"
    elif time.kind == "ms":
        day = f"strftime(epoch_ms({time.name}), '%Y-%m-%d')"
    else:
        day = f"substr({time.name}, 1, 10)"
    return f"SELECT {', '.join(columns)}, {day} AS day FROM staged"


# The outcomes table (clarion/store/dataset.py, OUTCOMES: the events that name a message), from staged events, so the
# export reads the events once for both tables.
_MESSAGE = "json_extract_string(attributes, '$.message_id')"
_OUTCOMES_FROM_EVENTS = (
    f"SELECT app_id, {_MESSAGE} AS message_id, endpoint_id, event_type AS outcome, event_at AS occurred_at_ms, "
    "epoch_ms(event_at)::TIMESTAMPTZ AS occurred_at, attributes, strftime(epoch_ms(event_at), '%Y-%m-%d') AS day "
    f"FROM staged WHERE {_MESSAGE} IS NOT NULL"
)


class _Writer:
    """One table's staging table in DuckDB, flushed into partitioned Parquet files under `root`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: Table, root: Path, snapshot_day: str) -> None:
        self.con, self.table, self.root = con, table, root
        self.output = _output(table, snapshot_day)
        self.held = 0
        self.rows = 0
        self.columns = ", ".join(f"{c.name} {_TYPES[c.kind]}" for c in table.columns)
        self._empty()
        self.names = [c.name for c in table.columns]
        self.json_columns = "{" + ", ".join(f"'{c.name}': '{_TYPES[c.kind]}'" for c in table.columns) + "}"

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        fd, name = tempfile.mkstemp(suffix=".json", prefix="clarion-export-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(msgspec.json.encode([dict(zip(self.names, row, strict=True)) for row in rows]))
            self.con.execute(
                f"INSERT INTO staged SELECT * FROM read_json('{name}', format = 'array', "
                f"columns = {self.json_columns}, maximum_object_size = 268435456)"
            )
        finally:
            os.unlink(name)
        self.held += len(rows)
        self.rows += len(rows)
        if self.held >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.held:
            return
        self._copy(self.output, self.table.name)
        if self.table is dataset.EVENTS:  # outcomes are events about a message: written from the same rows
            self._copy(_OUTCOMES_FROM_EVENTS, dataset.OUTCOMES.name)
        self._empty()
        self.held = 0

    def _empty(self) -> None:
        """A new staging table: DuckDB keeps the memory of a table's deleted rows, so emptying one with DELETE made
        the export grow by each million rows it wrote."""
        self.con.execute("DROP TABLE IF EXISTS staged")
        self.con.execute(f"CREATE TEMP TABLE staged ({self.columns})")

    def _copy(self, query: str, name: str) -> None:
        self.con.execute(
            f"COPY ({query}) TO '{self.root / name}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (app_id, day), "
            "OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'part-{uuid}')"
        )


def _bounds(table: Table, first_day: date, last_day: date) -> tuple[Any, Any]:
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    end = start + timedelta(days=(last_day - first_day).days + 1)
    if table.time == "created_at":  # ISO text, ordered like the instants
        return iso_millis(start), iso_millis(end)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


async def export_dataset(
    db: Database,
    folder: Path,
    first_day: date,
    last_day: date,
    clock: Clock,
    app_ids: Sequence[str] | None = None,
    threads: int = 2,
    progress: Callable[[], Awaitable[None]] | None = None,
) -> ExportReport:
    """Write the dataset's days [first_day, last_day] (and today's snapshot of people) for these projects (all when
    None) under `folder`, replacing the partitions written before for them; `progress` is awaited after each page."""
    started = time.perf_counter()
    report = ExportReport(folder, first_day, last_day)
    if app_ids is None:
        apps = await db.read(lambda tx: [app.id for app in app_store.page(tx, 0, 1_000_000, None)])
    else:
        apps = list(app_ids)
    snapshot_day = clock.now().astimezone(UTC).date().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = false")
        for table in dataset.TABLES:
            if table is dataset.OUTCOMES:
                report.rows[table.name] = outcomes_written(con, staging)
                continue
            writer = _Writer(con, table, staging, snapshot_day)
            start, end = _bounds(table, first_day, last_day) if table.time else (None, None)
            for app_id in apps:
                async for rows in _pages(db, table, app_id, start, end):
                    await asyncio.to_thread(writer.add, rows)
                    if progress is not None:
                        await progress()
            await asyncio.to_thread(writer.flush)
            report.rows[table.name] = writer.rows
        _replace_partitions(folder, staging, apps, first_day, last_day)
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    for path in folder.glob("*/app_id=*/day=*/*.parquet"):
        report.files += 1
        report.bytes += path.stat().st_size
    _write_duckdb_views(folder)
    report.seconds = time.perf_counter() - started
    log.info(
        "analytics dataset exported",
        folder=str(folder),
        first_day=first_day.isoformat(),
        last_day=last_day.isoformat(),
        rows=report.rows,
        seconds=round(report.seconds, 3),
    )
    return report


def outcomes_written(con: duckdb.DuckDBPyConnection, staging: Path) -> int:
    files = staging / dataset.OUTCOMES.name
    if not any(files.glob("*/*/*.parquet")):
        return 0
    row = con.execute(f"SELECT count(*) FROM read_parquet('{files}/*/*/*.parquet')").fetchone()
    return int(row[0]) if row else 0


async def _pages(db: Database, table: Table, app_id: str, start: Any, end: Any) -> AsyncIterator[list[tuple[Any, ...]]]:
    """One project's rows of a table, page by page."""
    after: Sequence[Any] | None = None
    while True:
        read = functools.partial(
            dataset.page, table=table, app_id=app_id, after=after, limit=PAGE_ROWS, start=start, end=end
        )
        rows, after = await db.read_long(read)
        yield rows
        if after is None:
            return


def _replace_partitions(folder: Path, staging: Path, apps: Sequence[str], first_day: date, last_day: date) -> None:
    """Move the staged partitions into place; an exported project-day that produced no rows loses its old files."""
    days = [(first_day + timedelta(days=n)).isoformat() for n in range((last_day - first_day).days + 1)]
    for table in dataset.TABLES:
        covered = {staged.relative_to(staging) for staged in staging.glob(f"{table.name}/app_id=*/day=*")}
        if table.time is not None:
            covered |= {Path(table.name, f"app_id={app}", f"day={day}") for app in apps for day in days}
        for partition in sorted(covered):
            target, staged = folder / partition, staging / partition
            if target.exists():
                shutil.rmtree(target)
            if staged.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                staged.rename(target)


def _write_duckdb_views(folder: Path) -> None:
    """`clarion.duckdb`: a view per table over its Parquet files, for tools that open a DuckDB database."""
    path = folder / "clarion.duckdb"
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as error:  # a BI tool holds it open: the files are written, only the views wait
        log.warning("analytics dataset views not refreshed", path=str(path), error=str(error))
        return
    try:
        for table in dataset.TABLES:
            files = folder / table.name
            if any(files.glob("app_id=*/day=*/*.parquet")):
                pattern = str(files / "*" / "*" / "*.parquet").replace("'", "''")
                con.execute(
                    f"CREATE OR REPLACE VIEW {table.name} AS SELECT * FROM "
                    f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"
                )
    finally:
        con.close()


class ScheduledExport:
    """Once a day, after `hour` UTC, the last `days` full days go to `folder` (late events included on the next
    days' runs), as one queued item per day: several processes enqueue it once, and a failure is retried."""

    def __init__(
        self, db: Database, queue: StoreQueue, clock: Clock, folder: Path, hour: int, days: int, threads: int
    ) -> None:
        self.db, self.queue, self.clock = db, queue, clock
        self.folder, self.hour, self.days, self.threads = folder, hour, days, threads

    async def tick(self) -> bool:
        """Enqueue today's export when it is due and not done; True if enqueued."""
        now = self.clock.now().astimezone(UTC)
        run_day = now.date().isoformat()
        if now.hour < self.hour or await self.db.read(lambda tx: dataset.export_done(tx, run_day)):
            return False
        return await self.queue.enqueue(EXPORT_KIND, {"run_day": run_day}, key=f"{EXPORT_KIND}:{run_day}")

    async def run(self, poll_seconds: float = 60.0) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup: logged, tried again at the next poll
                log.exception("scheduled analytics export not enqueued")
            await asyncio.sleep(poll_seconds)

    async def handle(self, lease: Lease) -> None:
        run_day = date.fromisoformat(lease.payload["run_day"])
        first, last = run_day - timedelta(days=self.days), run_day - timedelta(days=1)

        async def still_mine() -> None:  # a long export keeps its lease, so no other worker starts it again
            await self.queue.extend(lease)

        await export_dataset(self.db, self.folder, first, last, self.clock, threads=self.threads, progress=still_mine)
        now = iso_millis(self.clock.now())

        def done(tx: Transaction) -> None:
            dataset.record_export(tx, run_day.isoformat(), now)
            self.queue.ack_in(tx, lease)

        await self.db.write(done)
