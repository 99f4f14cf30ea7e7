"""Parquet export of the who/when/what dataset (`clarion analytics export`): time, rows/s, file sizes per day and in
total, and peak memory for --events events, on the embedded store (SQLite) or PostgreSQL, against what the same run
measures for its two halves alone.

    .venv/bin/python bench/dataset_export.py [--events 10000000] [--days 30] [--threads 2] [--store sqlite|postgres]

1. check: --check-events events filled both ways into two small stores, in bulk by SQL and through the store's write
   path (bench/bulk_fill.py); both stores must hold the same events, indexes and change feed, and their exports the
   same rows;
2. fill: --events events (90 % app events with attributes, metrics and a session, 10 % `_email.delivered` outcomes
   naming a message) on 10,000 endpoints, spread evenly over --days days, inserted in bulk by SQL;
3. scan (baseline, skipped with --no-baselines): the export's own keyset pages of the events table read from the
   store, nothing written: what reading alone costs;
4. write (baseline, likewise): DuckDB writing the same number of rows, already in memory, to Parquet by day;
5. export: `export_dataset` for the whole range (events, their outcomes, endpoints, users, messages), timed, with the
   process's peak resident memory during it; the files are read back with DuckDB and their rows counted.

Prints a table and saves bench/results/dataset-export[-postgres].json (or --out).
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
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import duckdb

from bench.bulk_fill import EventsSql, FreshStore, check, fill, fresh_store, iso_ms
from clarion.analytics.dataset import PAGE_ROWS, export_dataset
from clarion.clock import SystemClock
from clarion.store import apps as app_store
from clarion.store import dataset
from clarion.store.database import Database, Dialect

APP = "d" * 32
ENDPOINTS = 10_000
BATCH = 10_000  # events per append of the write path the bulk fill stands for
FIRST_DAY = date(2026, 10, 1)
ORIGIN_MS = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp() * 1000)
POSTGRES_URL = os.environ.get("CLARION_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OUTCOME = "_email.delivered"


def events_sql(total: int, days: int) -> EventsSql:
    """Event number i: every tenth an email delivery (an outcome naming its message, as Clarion records one), the
    others app events as PutEvents stores them (msgspec's compact JSON of the event, arriving 2 s after its time)."""
    step = days * 86_400_000 // total

    def spell(dialect: Dialect) -> str:
        at = f"({ORIGIN_MS} + i * {step})"
        stamp = iso_ms(dialect, at)
        outcome = "i % 10 = 9"
        app_doc = (
            f"""'{{"EventType":"' || CASE WHEN i % 10 = 0 THEN '_session.start' ELSE 'level.done' END || """
            f"""'","Timestamp":"' || {stamp} || '","Attributes":{{"level":"' || (i % 50) || """
            f"""'","mode":"ranked"}},"Metrics":{{"score":' || (i % 1000) || '.0}},"Session":{{"Id":"s-' || (i / 20) """
            """|| '"}}'"""
        )
        outcome_doc = (
            f"""'{{"EventType":"{OUTCOME}","Timestamp":"' || {stamp} || '","Attributes":{{"message_id":"m-' || i """
            f"""|| '","channel_type":"EMAIL","destination":"user' || (i % {ENDPOINTS}) || """
            """'@example.com","campaign_id":"c' || (i / 1000 % 20) || '"}}'"""
        )
        return (
            f"'{APP}', 'device-' || (i % {ENDPOINTS}), 'e-' || i, "
            f"CASE WHEN {outcome} THEN '{OUTCOME}' WHEN i % 10 = 0 THEN '_session.start' ELSE 'level.done' END, "
            f"{at}, CASE WHEN {outcome} THEN {at} ELSE {at} + 2000 END, "
            f"CASE WHEN {outcome} THEN NULL ELSE 's-' || (i / 20) END, "
            f"CASE WHEN {outcome} THEN {outcome_doc} ELSE {app_doc} END"
        )

    return spell


def prepare(store: FreshStore) -> None:
    with store.tx_of() as tx:
        app_store.insert(tx, APP, "bench", "2026-10-01T00:00:00.000Z", "{}")


async def scan(db: Database, last_day: date) -> tuple[int, float]:
    started = time.perf_counter()
    end = ORIGIN_MS + ((last_day - FIRST_DAY).days + 1) * 86_400_000
    after, rows = None, 0
    while True:
        page, after = await db.read_long(
            lambda tx, after=after: dataset.page(tx, dataset.EVENTS, APP, after, PAGE_ROWS, ORIGIN_MS, end)
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


def read_back(folder: Path) -> dict[str, int]:
    """Rows per table as DuckDB reads the exported files."""
    counts = {}
    with duckdb.connect() as con:
        for table in dataset.TABLES:
            files = list((folder / table.name).glob("*/*/*.parquet"))
            pattern = f"{folder / table.name}/*/*/*.parquet"
            counts[table.name] = (
                int(con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()[0]) if files else 0
            )
    return counts


def exported_rows(folder: Path) -> dict[str, list[tuple]]:
    """Every exported row of the timed tables, in order, with its partition columns."""
    with duckdb.connect() as con:
        return {
            name: con.execute(
                f"SELECT COLUMNS(*)::VARCHAR FROM read_parquet('{folder / name}/*/*/*.parquet', "
                "hive_partitioning = true) ORDER BY ALL"
            ).fetchall()
            for name in ("events", "outcomes")
        }


def day_sizes(folder: Path) -> dict[str, int]:
    """Bytes of Parquet per day partition, every table together (endpoints and users are under the export's day)."""
    sizes: dict[str, int] = {}
    for path in folder.glob("*/app_id=*/day=*/*.parquet"):
        day = path.parent.name.removeprefix("day=")
        sizes[day] = sizes.get(day, 0) + path.stat().st_size
    return dict(sorted(sizes.items()))


def peak_rss_reset() -> None:
    """Start the process's peak resident memory (VmHWM) again from its current size."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def check_both_ways(kind: str, folder: Path, total: int, days: int, url: str) -> dict[str, int]:
    """A small fill in bulk and through the write path: same store content, same exported rows."""
    last_day = FIRST_DAY + timedelta(days=days - 1)
    with (
        fresh_store(kind, folder, url, "export_bulk") as bulk,
        fresh_store(kind, folder, url, "export_appended") as ref,
    ):
        prepare(bulk)
        prepare(ref)
        compared = check(bulk.tx_of, ref.tx_of, events_sql(total, days), total, BATCH)
        rows = []
        for store, name in ((bulk, "bulk"), (ref, "appended")):
            db = store.database()
            try:
                await export_dataset(db, folder / f"check-{name}", FIRST_DAY, last_day, SystemClock())
            finally:
                db.close()
            rows.append(exported_rows(folder / f"check-{name}"))
    assert rows[0] == rows[1], "the bulk-filled store exports other rows than the one filled through the write path"
    return {**compared, **{f"exported_{name}": len(table) for name, table in rows[0].items()}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="a server the run may create databases on")
    parser.add_argument("--check-events", type=int, default=20_000, help="the both-ways check's size (0: skip)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the scan and write baselines")
    parser.add_argument("--out", help="the results' file name under bench/results")
    args = parser.parse_args()
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    load_before = os.getloadavg()
    result: dict = {"events": args.events, "days": args.days, "store": args.store}
    with tempfile.TemporaryDirectory(prefix="clarion-bench-export-") as temp:
        folder = Path(temp)
        if args.check_events:
            result["check"] = await check_both_ways(args.store, folder, args.check_events, args.days, args.postgres_url)
            print(f"check: bulk fill and write path agree ({result['check']})", flush=True)
        with fresh_store(args.store, folder, args.postgres_url, "export_bench") as store:
            prepare(store)
            started = time.perf_counter()
            result["fill_steps"] = fill(store.tx_of, events_sql(args.events, args.days), args.events, BATCH)
            if store.kind == "postgres":
                store.conn.execute("ANALYZE events")  # what autovacuum would have done by then
            result["fill_seconds"] = round(time.perf_counter() - started, 2)
            with store.tx_of() as tx:
                outcomes = int(tx.scalar("SELECT count(*) FROM events WHERE event_type = ?", (OUTCOME,)))
                if store.kind == "postgres":
                    result["store_bytes"] = int(tx.scalar("SELECT pg_database_size(current_database())"))
            db = store.database()
            try:
                if not args.no_baselines:
                    scanned, scan_seconds = await scan(db, last_day)
                    assert scanned == args.events, scanned
                    result["scan_seconds"] = round(scan_seconds, 2)
                    result["write_seconds"] = round(write_only(args.events, args.days, folder / "raw", args.threads), 2)
                peak_rss_reset()
                report = await export_dataset(
                    db, folder / "dataset", FIRST_DAY, last_day, SystemClock(), threads=args.threads
                )
                result["peak_rss_mb"] = round(peak_rss_mb(), 1)
            finally:
                db.close()  # SQLite: checkpoints the WAL into the file
            if store.path is not None:
                result["store_bytes"] = sum(p.stat().st_size for p in folder.glob(f"{store.path.name}*"))
        counted = read_back(folder / "dataset")
        sizes = day_sizes(folder / "dataset")
    assert counted["events"] == report.rows["events"] == args.events, (counted, report.rows)
    assert counted["outcomes"] == report.rows["outcomes"] == outcomes, (counted, report.rows, outcomes)
    event_days = [size for day, size in sizes.items() if day <= last_day.isoformat()]
    result.update(
        {
            "export_seconds": round(report.seconds, 2),
            "rows": report.rows,
            "read_back": counted,
            "rows_per_second": round(sum(report.rows.values()) / report.seconds),
            "events_per_second": round(args.events / report.seconds),
            "export_bytes": report.bytes,
            "export_files": report.files,
            "bytes_per_event": round(report.bytes / args.events, 1),
            "day_bytes": {"min": min(event_days), "median": statistics.median(event_days), "max": max(event_days)},
            "bytes_by_day": sizes,
            "parquet_vs_store_size": round(report.bytes / result["store_bytes"], 3),
        }
    )
    if "scan_seconds" in result:
        result["export_vs_scan_plus_write"] = round(
            report.seconds / (result["scan_seconds"] + result["write_seconds"]), 2
        )
    print(f"{'store':>8} {'events':>12} {'export s':>9} {'rows/s':>9} {'peak MB':>8} {'parquet MB':>11} "
          f"{'per day MB':>11} {'store MB':>9} {'scan s':>7} {'write s':>8}")  # fmt: skip
    print(
        f"{args.store:>8} {args.events:>12,} {report.seconds:>9.1f} {result['rows_per_second']:>9,} "
        f"{result['peak_rss_mb']:>8.0f} {report.bytes / 1e6:>11.1f} {result['day_bytes']['median'] / 1e6:>11.1f} "
        f"{result['store_bytes'] / 1e6:>9.1f} {result.get('scan_seconds', float('nan')):>7.1f} "
        f"{result.get('write_seconds', float('nan')):>8.1f}"
    )
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load": load_before,
               "load_after": os.getloadavg()}  # fmt: skip
    name = args.out or ("dataset-export.json" if args.store == "sqlite" else "dataset-export-postgres.json")
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "machine": machine, **result}, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    asyncio.run(main())
