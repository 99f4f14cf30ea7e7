"""Event stream throughput on each store: records/s a stream ships to a JSON-lines file and to Redis Streams, and
how far behind the sink is, as a ratio of each sink's raw write rate measured in the same run.

    .venv/bin/python bench/streams.py [--backlog 300000] [--rate 50000] [--seconds 20] [--sinks file,redis]
                                      [--store sqlite|postgres|both]

For each sink:
1. raw: the sink itself (clarion/streams/json_lines.py, redis_streams.py) writing ready-made records in batches of
   --batch records, nothing else running: the most the sink can take from one Python process; for Redis also
   Redis' own XADD rate for records of that size (redis-benchmark, pipelined, a C client) and the Redis server's
   CPU per XADD, against the sink's;
2. backlog: --backlog events already in the store (PutEvents-like app events on 1,000 endpoints with demographics)
   when the stream starts; the time until its cursor has passed the last one gives records/s;
3. sustained: a producer appends --rate events/s to the store for --seconds while the stream ships, open loop:
   the events of each 100 ms step (one transaction) are due at a fixed moment and stamped as arriving then,
   whatever happened before (a producer that falls behind writes the next step at once; its delay counts in the
   lag). Records/s acknowledged over the window, and each record's lag (the sink's acknowledgement minus the event's
   due arrival), whose p99 is the goal's second half; beside it the shipper's part alone (acknowledgement minus the
   end of the commit that wrote the event). The producer is
   a process of its own (--producer process, the default: this process only ships, as a shipping process of a
   multi-process deployment does) or runs in this process beside the shipper (--producer inline).

Beside the rates, the CPU time this process spent per record (raw writes, and the backlog drain: reading, building,
encoding, writing and moving the cursor), and the load average before and after each run: on a shared machine the
rates say what the run got of the cores, the CPU time what a record costs whatever the load. For the sustained
window, where the two cores went, in CPU µs per event: the producer process, this (shipping) process, the Redis
server, the PostgreSQL server's processes, and the rest of the machine; and how long the producer's commits and
the shipper's cursor writes took (p50/p99).

The sink is wrapped only to stamp when each batch was acknowledged. Prints a table and saves
bench/results/streams.json. Redis: 127.0.0.1:6379 (a key of its own, deleted at the end). PostgreSQL: a throw-away
database on CLARION_BENCH_POSTGRES_URL (default the local server), dropped at the end.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.clock import SystemClock
from clarion.jobs.config import S3Settings
from clarion.metrics import Metrics
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings
from clarion.store import apps as app_store
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import streams as stream_store
from clarion.store.database import Database, PostgresDatabase, SqliteDatabase, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.events import EventRow
from clarion.store.migrations import migrate
from clarion.streams.config import Sink as SinkSettings
from clarion.streams.config import StreamSettings
from clarion.streams.destinations import Destination, parse_destination
from clarion.streams.records import StreamRecord
from clarion.streams.registry import open_sink
from clarion.streams.shipper import ShipperParts, StreamShipper
from clarion.streams.sink import Sink, SinkContext

APP = "b" * 32
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/bench"
ENDPOINTS = 1000
POSTGRES_URL = os.environ.get("CLARION_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


class Stamped:
    """The real sink, with the time each batch was acknowledged and each record's lag (ms) noted."""

    def __init__(self, inner: Sink, lags: list[int], acks: list[tuple[int, list[int]]]) -> None:
        self.inner = inner
        self.lags = lags
        self.acks = acks  # (when, the records' arrival times) per batch
        self.acknowledged = 0

    async def write(self, records: Sequence[StreamRecord]) -> None:
        await self.inner.write(records)
        now = int(time.time() * 1000)
        arrivals = [record.arrival_at for record in records]
        self.lags.extend(now - arrival for arrival in arrivals)
        self.acks.append((now, arrivals))
        self.acknowledged += len(records)

    async def close(self) -> None:
        await self.inner.close()


class TimedWrites:
    """The shipper's store, with how long each of its writes (cursor moves, leases) took, in ms."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.write_ms: list[float] = []

    async def write(self, work: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.db.write(work)
        finally:
            self.write_ms.append((time.perf_counter() - started) * 1000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(names: Sequence[str]) -> dict[str, float]:
    """CPU seconds used so far by the processes named so (all of them, summed) and by the whole machine (busy: all
    but idle and iowait)."""
    used = dict.fromkeys(names, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            head, tail = stat.read_text().rsplit(")", 1)
            name = head.split("(", 1)[1]
            if name in used:
                fields = tail.split()
                used[name] += (int(fields[11]) + int(fields[12])) / TICKS
    with open("/proc/stat") as machine:
        ticks = [int(v) for v in machine.readline().split()[1:9]]
    used["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / TICKS
    return used


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def sink_settings(kind: str, folder: Path, key: str, batch: int) -> dict[str, Any]:
    if kind == "file":
        return {
            "type": "file",
            "arn": "*",
            "path": str(folder / "bench.jsonl"),
            "batch_records": batch,
            "rotate_bytes": 1 << 30,
        }
    return {"type": "redis", "arn": "*", "key": key, "batch_records": batch}


def event_doc(n: int) -> str:
    """An app event as PutEvents stores it (encoded the same way, with msgspec)."""
    return msgspec.json.encode(
        {
            "EventType": "level.done",
            "Timestamp": "2026-11-23T10:00:00.000Z",
            "Attributes": {"level": str(n % 50), "mode": "ranked", "region": "eu"},
            "Metrics": {"score": float(n % 1000), "seconds": 42.5},
            "AppPackageName": "com.example.game",
            "AppVersionCode": "42",
            "SdkName": "aws-amplify",
            "ClientSdkVersion": "6.0",
            "Session": {"Id": f"s-{n // 20}", "StartTimestamp": "2026-11-23T09:58:00.000Z"},
        }
    ).decode()


def event_rows(start: int, count: int, arrival: int | None = None) -> list[EventRow]:
    at = int(time.time() * 1000) if arrival is None else arrival
    return [
        EventRow(APP, f"device-{n % ENDPOINTS}", f"e-{n}", "level.done", at, at, f"s-{n // 20}", event_doc(n))
        for n in range(start, start + count)
    ]


def prepare(tx: Transaction) -> None:
    migrate(tx)
    app_store.insert(tx, APP, "bench", "2026-11-23T00:00:00.000Z", "{}")
    doc = json.dumps(
        {
            "ChannelType": "GCM",
            "Address": "token",
            "Demographic": {"Locale": "en_US", "Make": "Google", "Model": "Pixel", "Platform": "android"},
        }
    )
    endpoint_store.upsert(
        tx,
        [
            EndpointRow(
                APP,
                f"device-{n}",
                f"device-{n}",
                "GCM",
                f"token-{n}",
                "ACTIVE",
                "NONE",
                None,
                n % 100,
                "2026-11-23T00:00:00.000Z",
                "2026-11-23T00:00:00.000Z",
                doc,
            )
            for n in range(ENDPOINTS)
        ],
    )


def native_xadd(records: Sequence[StreamRecord], count: int = 200_000) -> dict[str, float] | None:
    """Redis' own rate for XADDs of records this size, from its C benchmark client pipelining 100 at a time
    (redis-benchmark; None when it is not installed), and the Redis server's CPU per XADD: the floor any client,
    and the sink's one script call per batch, are measured against."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    size = round(sum(len(record.data) for record in records) / len(records))
    key = f"clarion:bench:native:{uuid.uuid4().hex}"
    command = [tool, "-q", "-P", "100", "-c", "1", "-n", str(count), "XADD", key, "*", "data", "x" * size]
    command += ["id", records[0].id]
    before = cpu_seconds(("redis-server",))["redis-server"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    used = cpu_seconds(("redis-server",))["redis-server"] - before
    subprocess.run([tool.replace("redis-benchmark", "redis-cli"), "DEL", key], check=False, capture_output=True)
    return {"xadd_per_s": round(count / elapsed), "redis_cpu_us_per_xadd": round(used * 1e6 / count, 2)}


async def raw_rate(kind: str, settings: SinkSettings, context: SinkContext, records: list[StreamRecord]) -> float:
    sink = open_sink(settings, parse_destination(ARN), APP, context)
    started = time.perf_counter()
    for start in range(0, len(records), settings.batch_records):
        await sink.write(records[start : start + settings.batch_records])
    elapsed = time.perf_counter() - started
    await sink.close()
    return len(records) / elapsed


@contextlib.asynccontextmanager
async def database(store: str, folder: Path) -> AsyncIterator[Database]:
    if store == "sqlite":
        sqlite = SqliteDatabase(folder / "clarion.sqlite3")
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    import psycopg

    name = f"clarion_bench_streams_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        postgres = PostgresDatabase(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}")
        try:
            yield postgres
        finally:
            postgres.close()
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


STEP_SECONDS = 0.1


async def produce_events(db: Database, start: int, rate: int, seconds: float) -> dict[str, Any]:
    """Append `rate` events/s through the store's writer, as the API does, open loop for `seconds`: step k's events
    are due at began + k × 100 ms and arrive then, one transaction per step (written at once when it is already due).
    Answers how many events, the process's CPU seconds, each commit's duration (ms) and when each step's commit
    ended (epoch ms, by the step's arrival time)."""
    step, steps = rate // 10, round(seconds / STEP_SECONDS)
    began, began_ms, cpu = time.perf_counter(), int(time.time() * 1000), time.process_time()
    commits, committed = [], {}
    for k in range(steps):
        wait = began + k * STEP_SECONDS - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        arrival = began_ms + int(k * STEP_SECONDS * 1000)
        rows = event_rows(start + k * step, step, arrival)
        tick = time.perf_counter()
        await db.write(lambda tx, rows=rows: event_store.append(tx, rows))
        commits.append((time.perf_counter() - tick) * 1000)
        committed[arrival] = int(time.time() * 1000)
    elapsed = time.perf_counter() - began
    return {
        "events": steps * step,
        "seconds": elapsed,
        "cpu_s": time.process_time() - cpu,
        "commit_ms": commits,
        "committed": committed,
    }


def store_target(db: Database) -> str:
    return str(db.path) if isinstance(db, SqliteDatabase) else db.url  # type: ignore[attr-defined]


def produce(target: str, start: int, rate: int, seconds: float, queue: Any) -> None:
    """The producer process: its own connection to the same store."""

    async def work() -> dict[str, Any]:
        db: Database = PostgresDatabase(target) if target.startswith("postgresql") else SqliteDatabase(Path(target))
        try:
            return await produce_events(db, start, rate, seconds)
        finally:
            db.close()

    queue.put(asyncio.run(work()))


async def measure(store: str, kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    async with database(store, folder) as db:
        result = await measure_on(db, kind, args, folder)
    return {"store": store, **result, "load_before": load_before, "load_after": os.getloadavg()[0]}


async def measure_on(db: Database, kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    key = f"clarion:bench:{uuid.uuid4().hex}"
    await db.write(prepare)
    settings = StreamSettings(
        sinks=[sink_settings(kind, folder, key, args.batch)], read_batch=args.batch, poll_seconds=0.05
    )
    sink = settings.sinks[0]
    outbound = OutboundClient(OutboundSettings())
    context = SinkContext(outbound, SystemClock(), folder, S3Settings())
    sample = [
        StreamRecord(f"{APP}/{n}", msgspec.json.encode(json.loads(event_doc(n))) * 2, 0, (0, n))
        for n in range(args.batch * 20)
    ]  # records of about the size the shipper writes
    native = native_xadd(sample) if kind == "redis" else None
    redis_started = cpu_seconds(("redis-server",))["redis-server"]
    cpu_started = time.process_time()
    raw = await raw_rate(kind, sink, context, sample)
    raw_cpu = (time.process_time() - cpu_started) / len(sample)
    raw_redis_cpu = (cpu_seconds(("redis-server",))["redis-server"] - redis_started) / len(sample)

    lags: list[int] = []
    acks: list[tuple[int, list[int]]] = []
    stamped: list[Stamped] = []

    def stamping(settings: SinkSettings, destination: Destination, app_id: str, ctx: SinkContext) -> Sink:
        stamped.append(Stamped(open_sink(settings, destination, app_id, ctx), lags, acks))
        return stamped[-1]

    for start in range(0, args.backlog, 5000):
        rows = event_rows(start, min(5000, args.backlog - start))
        await db.write(lambda tx, rows=rows: event_store.append(tx, rows))
    await db.write(
        lambda tx: stream_store.put(tx, APP, ARN, "arn:aws:iam::123456789012:role/r", "now", "bench", (0, 0))
    )
    timed = TimedWrites(db)
    parts = ShipperParts(timed, settings, "123456789012", SystemClock(), Metrics(), context, open_sink=stamping)  # type: ignore[arg-type]
    shipper = StreamShipper(parts)
    started, cpu_started = time.perf_counter(), time.process_time()
    task = asyncio.create_task(shipper.run())
    while sum(s.acknowledged for s in stamped) < args.backlog:
        await asyncio.sleep(0.01)
    backlog_rate = args.backlog / (time.perf_counter() - started)
    backlog_cpu = (time.process_time() - cpu_started) / args.backlog

    lags.clear()
    acks.clear()
    timed.write_ms.clear()
    before = sum(s.acknowledged for s in stamped)
    servers = ("redis-server", "postgres")
    cpu_before, shipper_cpu = cpu_seconds(servers), time.process_time()
    window_start = time.perf_counter()
    if args.producer == "inline":
        producer = await produce_events(db, args.backlog, args.rate, args.seconds)
    else:  # a process of its own, as an API process would be: this one only ships
        spawn = multiprocessing.get_context("spawn")
        queue = spawn.Queue()
        child = spawn.Process(target=produce, args=(store_target(db), args.backlog, args.rate, args.seconds, queue))
        child.start()
        while child.is_alive() and queue.empty():
            await asyncio.sleep(0.05)
        producer = queue.get(timeout=60)
        child.join()
    produced = args.backlog + producer["events"]
    offered = producer["events"] / producer["seconds"]  # --rate when the producer kept up
    while sum(s.acknowledged for s in stamped) < produced:  # drain, so every record's lag is counted
        await asyncio.sleep(0.01)
    window = time.perf_counter() - window_start
    sustained = (sum(s.acknowledged for s in stamped) - before) / window
    shipper_cpu = time.process_time() - shipper_cpu
    cpu_used = {name: used - cpu_before[name] for name, used in cpu_seconds(servers).items()}
    per_event = 1e6 / producer["events"]
    producer_cpu = producer["cpu_s"] - (shipper_cpu if args.producer == "inline" else 0.0)
    rest = cpu_used["machine"] - producer_cpu - shipper_cpu - cpu_used["redis-server"] - cpu_used["postgres"]
    cores = {
        "producer_us": round(producer_cpu * per_event, 1),
        "shipper_us": round(shipper_cpu * per_event, 1),
        "redis_us": round(cpu_used["redis-server"] * per_event, 1),
        "postgres_us": round(cpu_used["postgres"] * per_event, 1),
        "rest_us": round(rest * per_event, 1),
        "machine_busy_pct": round(100 * cpu_used["machine"] / window / (os.cpu_count() or 1), 1),
    }
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await outbound.close()
    if kind == "redis":
        import redis

        client = redis.Redis()
        client.delete(key)
        client.close()
    lags.sort()
    # The shipper's part of the lag: from the commit that made an event readable to its sink's acknowledgement.
    committed = producer["committed"]
    shipping = sorted(now - committed[arrival] for now, arrivals in acks for arrival in arrivals)
    return {
        "sink": kind,
        "raw_records_per_s": round(raw),
        "raw_cpu_us_per_record": round(raw_cpu * 1e6, 1),
        "raw_redis_cpu_us_per_record": round(raw_redis_cpu * 1e6, 1) if kind == "redis" else None,
        "native": native,
        "backlog_records_per_s": round(backlog_rate),
        "backlog_cpu_us_per_record": round(backlog_cpu * 1e6, 1),
        "offered_events_per_s": round(offered),
        "sustained_records_per_s": round(sustained),
        "sustained_seconds": args.seconds,
        "lag_p50_s": percentile(lags, 0.5) / 1000,
        "lag_p99_s": percentile(lags, 0.99) / 1000,
        "lag_max_s": lags[-1] / 1000,
        "ship_lag_p50_s": percentile(shipping, 0.5) / 1000,
        "ship_lag_p99_s": percentile(shipping, 0.99) / 1000,
        "producer_commit_ms_p50": round(percentile(producer["commit_ms"], 0.5), 1),
        "producer_commit_ms_p99": round(percentile(producer["commit_ms"], 0.99), 1),
        "producer_commits": len(producer["commit_ms"]),
        "cursor_write_ms_p50": round(percentile(timed.write_ms, 0.5), 1),
        "cursor_write_ms_p99": round(percentile(timed.write_ms, 0.99), 1),
        "cursor_writes": len(timed.write_ms),
        "cpu_per_event": cores,
        "backlog_ratio": round(backlog_rate / raw, 2),
        "sustained_ratio": round(sustained / raw, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--sinks", default="file,redis")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--producer",
        choices=["process", "inline"],
        default="process",
        help="where the sustained run's events are written",
    )
    args = parser.parse_args()
    results = []
    for store in ["sqlite", "postgres"] if args.store == "both" else [args.store]:
        for kind in args.sinks.split(","):
            with tempfile.TemporaryDirectory(prefix="clarion-bench-streams-") as folder:
                results.append(await measure(store, kind, args, Path(folder)))
    print(
        f"{'store':10} {'sink':6} {'raw/s':>9} {'backlog/s':>10} {'ratio':>6} {'offered/s':>10} {'shipped/s':>10} "
        f"{'ratio':>6} {'lag p50':>8} {'lag p99':>8} {'raw cpu':>8} {'drain cpu':>10} {'load':>11}"
    )
    for r in results:
        print(
            f"{STORE_NAMES[r['store']]:10} {r['sink']:6} {r['raw_records_per_s']:>9,} "
            f"{r['backlog_records_per_s']:>10,} {r['backlog_ratio']:>6} {r['offered_events_per_s']:>10,} "
            f"{r['sustained_records_per_s']:>10,} {r['sustained_ratio']:>6} {r['lag_p50_s']:>7.2f}s "
            f"{r['lag_p99_s']:>7.2f}s {r['raw_cpu_us_per_record']:>6.1f}µs {r['backlog_cpu_us_per_record']:>8.1f}µs "
            f"{r['load_before']:>5.1f}→{r['load_after']:<5.1f}"
        )
    print("\nsustained window: CPU µs per event (producer, shipper, redis, postgres, rest), commits and cursor writes")
    for r in results:
        c = r["cpu_per_event"]
        print(
            f"{STORE_NAMES[r['store']]:10} {r['sink']:6} {c['producer_us']:>6.1f} {c['shipper_us']:>6.1f} "
            f"{c['redis_us']:>6.1f} {c['postgres_us']:>6.1f} {c['rest_us']:>6.1f}  "
            f"machine busy {c['machine_busy_pct']}%  "
            f"commit p50/p99 {r['producer_commit_ms_p50']}/{r['producer_commit_ms_p99']} ms ({r['producer_commits']})  "
            f"cursor p50/p99 {r['cursor_write_ms_p50']}/{r['cursor_write_ms_p99']} ms ({r['cursor_writes']})  "
            f"lag max {r['lag_max_s']:.2f}s  commit→sink p50/p99 {r['ship_lag_p50_s']:.2f}/{r['ship_lag_p99_s']:.2f}s"
        )
    for r in results:
        if r["native"]:
            n, raw = r["native"], r["raw_records_per_s"]
            print(
                f"{STORE_NAMES[r['store']]:10} redis-benchmark XADD (pipelined 100, C client): {n['xadd_per_s']:,}/s, "
                f"Redis CPU {n['redis_cpu_us_per_xadd']} µs per XADD; the sink's raw writes {raw:,}/s "
                f"({raw / n['xadd_per_s']:.2f} of it), Redis CPU {r['raw_redis_cpu_us_per_record']} µs "
                f"and client CPU {r['raw_cpu_us_per_record']} µs per record"
            )
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}
    out = Path(__file__).parent / "results" / "streams.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"at": datetime.now(UTC).isoformat(), "args": vars(args), "machine": machine, "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
