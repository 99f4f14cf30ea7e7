"""What shipping one record costs: one stream drains a backlog of app events from a SQLite store to a JSON-lines
file, nothing else running in the process, and the process's CPU time per record is printed with the rate.

    .venv/bin/python bench/streams_drain.py [--events 60000] [--sink file|redis] [--batch 2000]

On a shared machine CPU time per record still moves with the load (other work evicts caches), so the count of
instructions is the steadier figure: run it under callgrind at two sizes and divide the difference by the
difference in events (startup and loading are the same in both and cancel out; loading is done in a child
process, which callgrind does not follow):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/streams_drain.py --events 20000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/streams_drain.py --events 60000

The events, endpoints and sink are those of bench/streams.py.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid

from bench.streams import APP, ARN, event_rows, prepare, sink_settings
from clarion.clock import SystemClock
from clarion.jobs.config import S3Settings
from clarion.metrics import Metrics
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings
from clarion.store import events as event_store
from clarion.store import streams as stream_store
from clarion.store.database import SqliteDatabase
from clarion.streams.config import StreamSettings
from clarion.streams.shipper import ShipperParts, StreamShipper
from clarion.streams.sink import SinkContext


def load(path: Path, events: int) -> None:
    """The store with its endpoints, `events` app events and the stream, cursor at the start."""

    async def work() -> None:
        db = SqliteDatabase(path)
        await db.write(prepare)
        for start in range(0, events, 5000):
            rows = event_rows(start, min(5000, events - start))
            await db.write(lambda tx, rows=rows: event_store.append(tx, rows))
        await db.write(
            lambda tx: stream_store.put(tx, APP, ARN, "arn:aws:iam::123456789012:role/r", "now", "bench", (0, 0))
        )
        db.close()

    asyncio.run(work())


async def drain(path: Path, folder: Path, events: int, sink: str, batch: int) -> tuple[float, float]:
    db = SqliteDatabase(path)
    settings = StreamSettings(
        sinks=[sink_settings(sink, folder, f"clarion:bench:{uuid.uuid4().hex}", batch)],
        read_batch=batch,
        poll_seconds=0.05,
    )
    outbound = OutboundClient(OutboundSettings())
    context = SinkContext(outbound, SystemClock(), folder, S3Settings())
    shipper = StreamShipper(ShipperParts(db, settings, "123456789012", SystemClock(), Metrics(), context))
    started, cpu_started = time.perf_counter(), time.process_time()
    task = asyncio.create_task(shipper.run())
    last = (await db.read(lambda tx: tx.scalar("SELECT max(seq) FROM events"))) or 0
    while True:
        row = await db.read(lambda tx: stream_store.get(tx, APP))
        if row is not None and row.cursor_seq >= last:
            break
        await asyncio.sleep(0.005)
    rate, cpu = events / (time.perf_counter() - started), (time.process_time() - cpu_started) / events
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await outbound.close()
    if sink == "redis":
        import redis

        client = redis.Redis()
        client.delete(settings.sinks[0].key)  # type: ignore[union-attr]
        client.close()
    db.close()
    return rate, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--sink", choices=["file", "redis"], default="file")
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clarion-bench-drain-") as name:
        folder = Path(name)
        loader = multiprocessing.get_context("spawn").Process(target=load, args=(folder / "store.sqlite3", args.events))
        loader.start()
        loader.join()
        rate, cpu = asyncio.run(drain(folder / "store.sqlite3", folder, args.events, args.sink, args.batch))
    print(f"{args.events:,} records drained to {args.sink}: {rate:,.0f} records/s, {cpu * 1e6:.1f} µs CPU per record")


if __name__ == "__main__":
    main()
