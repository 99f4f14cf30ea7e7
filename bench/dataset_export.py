"""Parquet export of the who/when/what dataset (`clarion analytics export`) on the embedded store: time and size for
--events events, against what the same run measures for its two halves alone.

    .venv/bin/python bench/dataset_export.py [--events 10000000] [--days 30] [--threads 2]

1. fill: --events app events (PutEvents-like: attributes, metrics, a session) on 10,000 endpoints, spread evenly over
   --days days, appended through the store in 10,000-row batches;
2. scan (baseline): the export's own keyset pages of the events table read from the store, nothing written: what
   reading alone costs;
3. write (baseline): DuckDB writing the same number of rows, already in memory, to Parquet partitioned by day;
4. export: `export_dataset` for the whole range (events, their outcomes, endpoints, users, messages), timed, with the
   Parquet files' total size against the SQLite file's (which holds the events and little else).

Prints a table and saves bench/results/dataset-export.json.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import duckdb

from clarion.analytics.dataset import PAGE_ROWS, export_dataset
from clarion.clock import SystemClock
from clarion.store import apps as app_store
from clarion.store import dataset
from clarion.store import events as event_store
from clarion.store.database import SqliteDatabase, Transaction
from clarion.store.events import EventRow
from clarion.store.migrations import migrate

APP = "d" * 32
ENDPOINTS = 10_000
BATCH = 10_000
FIRST_DAY = date(2026, 10, 1)


def event_rows(start: int, count: int, total: int, days: int) -> list[EventRow]:
    origin = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp() * 1000)
    step = days * 86_400_000 // total
    rows = []
    for n in range(start, start + count):
        at = origin + n * step
        doc = json.dumps(
            {
                "EventType": "level.done",
                "Timestamp": "",
                "Attributes": {"level": str(n % 50), "mode": "ranked"},
                "Metrics": {"score": float(n % 1000)},
                "Session": {"Id": f"s-{n // 20}"},
            }
        )
        rows.append(EventRow(APP, f"device-{n % ENDPOINTS}", f"e-{n}", "level.done", at, at, f"s-{n // 20}", doc))
    return rows


async def fill(db: SqliteDatabase, total: int, days: int) -> float:
    started = time.perf_counter()

    def prepare(tx: Transaction) -> None:
        migrate(tx)
        app_store.insert(tx, APP, "bench", "2026-10-01T00:00:00.000Z", "{}")

    await db.write(prepare)
    for start in range(0, total, BATCH):
        rows = event_rows(start, min(BATCH, total - start), total, days)
        await db.write(lambda tx, rows=rows: event_store.append(tx, rows))
    return time.perf_counter() - started


async def scan(db: SqliteDatabase, last_day: date) -> tuple[int, float]:
    started = time.perf_counter()
    start = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC).timestamp() * 1000) + 86_400_000
    after, rows = None, 0
    while True:
        page, after = await db.read_long(
            lambda tx, after=after: dataset.page(tx, dataset.EVENTS, APP, after, PAGE_ROWS, start, end)
        )
        rows += len(page)
        if after is None:
            return rows, time.perf_counter() - started


def write_only(total: int, days: int, folder: Path, threads: int) -> float:
    with duckdb.connect() as con:
        con.execute(f"SET threads = {threads}")
        con.execute(
            f"""CREATE TABLE staged AS SELECT '{APP}' AS app_id, 'e-' || i AS event_id, 'device-' || (i % {ENDPOINTS})
                AS endpoint_id, 'level.done' AS event_type, i AS event_at_ms, i AS arrival_at_ms,
                's-' || (i // 20) AS session_id, '{{"level":"' || (i % 50) || '","mode":"ranked"}}' AS attributes,
                '{{"score":' || (i % 1000) || '.0}}' AS metrics, (i * {days} // {total})::VARCHAR AS day
                FROM range({total}) t(i)"""
        )
        started = time.perf_counter()
        con.execute(
            f"COPY staged TO '{folder}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (app_id, day), "
            "FILENAME_PATTERN 'part-{uuid}')"
        )
        return time.perf_counter() - started


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.parquet"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="clarion-bench-export-") as temp:
        folder = Path(temp)
        db = SqliteDatabase(folder / "clarion.sqlite3", "NORMAL")
        try:
            fill_seconds = await fill(db, args.events, args.days)
            scanned, scan_seconds = await scan(db, last_day)
            write_seconds = write_only(args.events, args.days, folder / "raw", args.threads)
            raw_bytes = size_of(folder / "raw")
            report = await export_dataset(
                db, folder / "dataset", FIRST_DAY, last_day, SystemClock(), threads=args.threads
            )
        finally:
            db.close()  # checkpoints the WAL into the file
        store_bytes = sum(p.stat().st_size for p in folder.glob("clarion.sqlite3*"))
    assert scanned == args.events == report.rows["events"], (scanned, report.rows)
    export_bytes = report.bytes
    result = {
        "events": args.events,
        "days": args.days,
        "fill_seconds": round(fill_seconds, 2),
        "store_bytes": store_bytes,
        "scan_seconds": round(scan_seconds, 2),
        "write_seconds": round(write_seconds, 2),
        "raw_parquet_bytes": raw_bytes,
        "export_seconds": round(report.seconds, 2),
        "export_bytes": export_bytes,
        "export_files": report.files,
        "events_per_second": round(args.events / report.seconds),
        "export_vs_scan_plus_write": round(report.seconds / (scan_seconds + write_seconds), 2),
        "parquet_vs_store_size": round(export_bytes / store_bytes, 3),
    }
    print(f"{'events':>12} {'export s':>9} {'events/s':>10} {'scan s':>7} {'write s':>8} {'ratio':>6} "
          f"{'parquet MB':>11} {'store MB':>9} {'size ratio':>10}")  # fmt: skip
    print(
        f"{args.events:>12,} {report.seconds:>9.1f} {result['events_per_second']:>10,} {scan_seconds:>7.1f} "
        f"{write_seconds:>8.1f} {result['export_vs_scan_plus_write']:>6} {export_bytes / 1e6:>11.1f} "
        f"{store_bytes / 1e6:>9.1f} {result['parquet_vs_store_size']:>10}"
    )
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}
    out = Path(__file__).parent / "results" / "dataset-export.json"
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "machine": machine, **result}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
