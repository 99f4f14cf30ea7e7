"""Segment evaluation at scale: the row-store SQL (SQLite, PostgreSQL) against the DuckDB replica, in one run.

    .venv/bin/python bench/segments.py [--endpoints 200000] [--store sqlite|postgres|both] [--repeat 3]

1. Generates N synthetic endpoints with a realistic skew — Zipf-like countries, three platforms, five channels,
   0–4 interests out of 20, a tier, three metrics, coordinates, users owning three endpoints each (with user
   attributes), and an event history (30 % of endpoints, 1–4 events in the last 60 days) — and writes them
   straight into the store's tables in bulk (SQLite: executemany in 100k-row transactions; PostgreSQL: COPY),
   stamped on the change feed like the API's writes, so the replica follows them the way it follows real traffic.
2. Syncs the DuckDB replica from the store (the first, full sync is timed) and checks a second sync reads nothing.
3. Times, on every engine: the 5-condition count (country, platform, metric, list attribute, recency), and the
   materialisation of every member id (in key order) of a ~12 % segment (US and iOS: about 1.2M at 10M). Each is
   run --repeat times and the median kept; results must agree across engines. Nothing is cached: every run is a
   fresh query over the tables.
4. Prints a table with ratios to DuckDB and peak RSS per phase (this process: generation, sync, each engine; the
   PostgreSQL server's memory is its own and not included), and saves bench/results/segments-<N>.json with the
   plan each store chose for the count.
5. The regression guard: the table compares every engine, per endpoint, with the last recorded figures (the
   committed bench/results/segments-<N>.json of this size, else of the nearest size; --baseline names another) and
   flags an engine that got more than 2x slower. Commit the new results file to make it the next baseline.

PostgreSQL: a throw-away database on CLARION_BENCH_POSTGRES_URL (default the local server), dropped at the end.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ leads sys.path, where bench/email.py would shadow the standard library's `email`.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import msgspec

from clarion.analytics import segment_duckdb
from clarion.analytics.replica import Replica
from clarion.analytics.sync import ReplicaSync
from clarion.clock import iso_millis
from clarion.endpoints.service import cohort_of
from clarion.segments.plan import Node, plan_of
from clarion.store import segment_sql
from clarion.store.database import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    Transaction,
    connect_postgres,
    connect_sqlite,
)
from clarion.store.migrations import migrate

APP_ID = "bench-segments"
NOW = datetime(2026, 11, 22, tzinfo=UTC)
CHUNK = 100_000
POSTGRES_URL = os.environ.get("CLARION_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

COUNTRIES = ["US", "KR", "JP", "DE", "FR", "GB", "BR", "IN", "CN", "CA", "MX", "ES", "IT", "AU", "NL", "SE", "PL"]
COUNTRY_WEIGHTS = [30, 8, 8, 6, 5, 5, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2]
PLATFORMS, PLATFORM_WEIGHTS = ["ios", "android", "web"], [40, 50, 10]
CHANNELS, CHANNEL_WEIGHTS = ["APNS", "GCM", "EMAIL", "SMS", "CUSTOM"], [30, 35, 20, 10, 5]
INTERESTS = ["shoes", "bags", "hats", "books", "music", "games", "travel", "food", "sports", "tech"]
INTERESTS += ["fashion", "beauty", "home", "garden", "pets", "cars", "movies", "art", "finance", "health"]
INTEREST_WEIGHTS = [1 / (rank + 1) for rank in range(len(INTERESTS))]  # Zipf
TIERS, TIER_WEIGHTS = ["free", "silver", "gold", "platinum"], [70, 15, 10, 5]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0", "2.1.3", "3.0.0"]
EVENT_TYPES, EVENT_WEIGHTS = ["_session.start", "view", "purchase", "_session.stop"], [40, 35, 10, 15]
ENDPOINTS_PER_USER = 3

# The 5-condition segment, and the ~12 % segment whose members are materialised.
FIVE_CONDITIONS = {
    "Dimensions": {
        "Location": {"Country": {"Values": ["KR", "JP"]}},
        "Demographic": {"Platform": {"Values": ["ios"]}},
        "Metrics": {"purchases": {"ComparisonOperator": "GREATER_THAN", "Value": 3}},
        "Attributes": {"interests": {"AttributeType": "INCLUSIVE", "Values": ["shoes"]}},
        "Behavior": {"Recency": {"Duration": "DAY_7", "RecencyType": "ACTIVE"}},
    }
}
LARGE_SEGMENT = {
    "Dimensions": {"Location": {"Country": {"Values": ["US"]}}, "Demographic": {"Platform": {"Values": ["ios"]}}}
}


# ----------------------------------------------------------------------------------------------------------------
# Generation


@dataclass
class Chunk:
    endpoints: list[tuple[Any, ...]]
    users: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


def generate(total: int, seed: int = 42) -> Iterator[Chunk]:
    """Rows in the store's column order, CHUNK endpoints at a time, each chunk on its own change-feed stamp."""
    rng = random.Random(seed)
    now_ms = int(NOW.timestamp() * 1000)
    for start in range(0, total, CHUNK):
        n = min(CHUNK, total - start)
        stamp = start // CHUNK + 1
        countries = rng.choices(COUNTRIES, COUNTRY_WEIGHTS, k=n)
        platforms = rng.choices(PLATFORMS, PLATFORM_WEIGHTS, k=n)
        channels = rng.choices(CHANNELS, CHANNEL_WEIGHTS, k=n)
        tiers = rng.choices(TIERS, TIER_WEIGHTS, k=n)
        endpoints, users, events = [], [], []
        for offset in range(n):
            i = start + offset
            endpoint_id = f"ep-{i:09d}"
            user_id = f"user-{i // ENDPOINTS_PER_USER:09d}"
            country = countries[offset]
            interests = sorted(set(rng.choices(INTERESTS, INTEREST_WEIGHTS, k=rng.randrange(5))))
            effective = NOW - timedelta(days=rng.expovariate(1 / 20))
            doc = {
                "ChannelType": channels[offset],
                "Address": f"{endpoint_id}@example.com" if channels[offset] == "EMAIL" else f"token-{i:09d}",
                "Attributes": {"interests": interests, "tier": [tiers[offset]]},
                "Metrics": {
                    "purchases": float(min(int(rng.expovariate(0.5)), 40)),
                    "sessions": float(int(rng.expovariate(1 / 20))),
                    "ltv": round(rng.gammavariate(2.0, 30.0), 2),
                },
                "Demographic": {"Platform": platforms[offset], "AppVersion": rng.choice(VERSIONS), "Make": "acme"},
                "Location": {
                    "Country": country,
                    "Latitude": round(rng.uniform(-60, 70), 4),
                    "Longitude": round(rng.uniform(-180, 180), 4),
                },
                "User": {"UserId": user_id},
                "RequestId": "bench",
            }
            at = iso_millis(effective)
            endpoints.append(
                (
                    APP_ID,
                    endpoint_id,
                    endpoint_id,
                    channels[offset],
                    doc["Address"],
                    "ACTIVE",
                    "NONE",
                    user_id,
                    cohort_of(endpoint_id),
                    at,
                    at,
                    msgspec.json.encode(doc).decode(),
                    stamp,
                )
            )
            if i % ENDPOINTS_PER_USER == 0:
                plan = rng.choices(["free", "pro", "team"], [80, 15, 5])[0]
                users.append((APP_ID, user_id, msgspec.json.encode({"plan": [plan]}).decode(), stamp))
            if rng.random() < 0.3:
                for number in range(rng.randint(1, 4)):
                    event_at = now_ms - int(rng.expovariate(1 / 12) * 86_400_000) % (60 * 86_400_000)
                    event_type = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
                    event = {
                        "EventType": event_type,
                        "Timestamp": iso_millis(datetime.fromtimestamp(event_at / 1000, UTC)),
                    }
                    events.append(
                        (
                            APP_ID,
                            endpoint_id,
                            f"{endpoint_id}-{number}",
                            event_type,
                            event_at,
                            event_at,
                            None,
                            msgspec.json.encode(event).decode(),
                            stamp,
                        )
                    )
        yield Chunk(endpoints, users, events)


ENDPOINT_COLUMNS = (
    "app_id, endpoint_key, id, channel_type, address, endpoint_status, opt_out, user_id, cohort_id, "
    "created_at, effective_at, doc, change_seq"
)
USER_COLUMNS = "app_id, user_id, attributes, change_seq"
EVENT_COLUMNS = "app_id, endpoint_id, event_id, event_type, event_at, arrival_at, session_id, doc, change_seq"
BENCH_APP = "INSERT INTO apps (id, name, created_at, settings, settings_modified_at) VALUES (%s, 'bench', '', '{}', '')"


class SqliteLoader:
    def __init__(self, path: Path) -> None:
        self.conn = connect_sqlite(path, "OFF")

    def load(self, chunk: Chunk) -> None:
        self.conn.execute("BEGIN")
        for table, columns, rows in tables(chunk):
            marks = ", ".join("?" * (columns.count(",") + 1))
            self.conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        self.conn.execute("COMMIT")

    def finish(self, last_stamp: int) -> None:
        self.conn.execute("UPDATE change_feed SET seq = ? WHERE name = 'rows'", (last_stamp,))
        self.conn.execute(BENCH_APP.replace("%s", "?"), (APP_ID,))
        self.conn.execute("ANALYZE")
        self.conn.close()


class PostgresLoader:
    def __init__(self, url: str) -> None:
        self.conn = connect_postgres(url)

    def load(self, chunk: Chunk) -> None:
        with self.conn.transaction(), self.conn.cursor() as cursor:
            for table, columns, rows in tables(chunk):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

    def finish(self, last_stamp: int) -> None:
        self.conn.execute("UPDATE change_feed SET seq = %s WHERE name = 'rows'", (last_stamp,))
        self.conn.execute(BENCH_APP, (APP_ID,))
        self.conn.execute("ANALYZE")
        self.conn.close()


def tables(chunk: Chunk) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
    return [
        ("endpoints", ENDPOINT_COLUMNS, chunk.endpoints),
        ("users", USER_COLUMNS, chunk.users),
        ("events", EVENT_COLUMNS, chunk.events),
    ]


# ----------------------------------------------------------------------------------------------------------------
# Measuring


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets this process's peak resident set (VmHWM)."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


Timed = tuple[Any, float]  # a query's result and the CPU seconds it took


def median_times(work: Callable[[], Timed], repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of `work` over `repeat` runs, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result, cpu = work()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), result


async def median_times_async(work: Callable[[], Awaitable[Timed]], repeat: int) -> tuple[float, float, Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result, cpu = await work()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), result


def with_cpu(query: Callable[[], Any]) -> Timed:
    """Run an in-process query (DuckDB, SQLite), with this process's CPU time over all its threads."""
    started = time.process_time()
    result = query()
    return result, time.process_time() - started


def backend_cpu_seconds(tx: Transaction) -> float:
    """CPU time so far of the PostgreSQL backend serving `tx` (a local server: /proc/<pid>/stat)."""
    pid = tx.scalar("SELECT pg_backend_pid()")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def plan(definition: dict[str, Any]) -> Node:
    return plan_of(definition, lambda _id, _version: None, NOW)


STORE_TIMEOUT_S = 900  # per PostgreSQL statement; a query past it is reported as such, not waited for
SLOWER = 2.0  # per endpoint, against the baseline: what the table flags as a regression
RESULTS = Path(__file__).resolve().parent / "results"


async def time_store(db: Database, repeat: int) -> dict[str, Any]:
    """The row-store compiler, through the store's own long-read path. CPU is the query's: this process's on
    SQLite, the backend's on PostgreSQL (not counting parallel workers, which these index plans do not use)."""
    five, large = plan(FIVE_CONDITIONS), plan(LARGE_SEGMENT)

    def measured(query: Callable[[Transaction], Any]) -> Callable[[], Awaitable[Timed]]:
        def work(tx: Transaction) -> Timed:
            if tx.dialect.name == "sqlite":
                return with_cpu(lambda: query(tx))
            tx.execute(f"SET LOCAL statement_timeout = {STORE_TIMEOUT_S * 1000}")
            started = backend_cpu_seconds(tx)
            result = query(tx)
            return result, backend_cpu_seconds(tx) - started

        return lambda: db.read_long(work)

    reset_peak_rss()
    result: dict[str, Any] = {"count_plan": await db.read_long(lambda tx: segment_sql.count_plan(tx, APP_ID, five))}
    try:
        result["count_s"], result["count_cpu_s"], result["count"] = await median_times_async(
            measured(lambda tx: segment_sql.count(tx, APP_ID, five)), repeat
        )
    except Exception as error:  # the PostgreSQL statement timeout
        result["count_error"] = str(error).splitlines()[0]
    try:
        result["ids_s"], result["ids_cpu_s"], ids = await median_times_async(
            measured(lambda tx: segment_sql.page(tx, APP_ID, large, "", 1 << 40)), repeat
        )
        result["ids"] = len(ids)
    except Exception as error:
        result["ids_error"] = str(error).splitlines()[0]
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def time_duckdb(replica: Replica, repeat: int) -> dict[str, Any]:
    five, large = plan(FIVE_CONDITIONS), plan(LARGE_SEGMENT)
    con = replica.cursor()
    reset_peak_rss()
    result: dict[str, Any] = {}
    result["count_s"], result["count_cpu_s"], result["count"] = median_times(
        lambda: with_cpu(lambda: segment_duckdb.count(con, APP_ID, five)), repeat
    )

    def materialise() -> list[tuple[Any, ...]]:
        segment_duckdb.execute_members(con, APP_ID, large)
        return con.fetchall()

    result["ids_s"], result["ids_cpu_s"], ids = median_times(lambda: with_cpu(materialise), repeat)
    return {**result, "ids": len(ids), "peak_rss_mb": peak_rss_mb()}


# ----------------------------------------------------------------------------------------------------------------
# The run


async def run(total: int, stores: list[str], repeat: int, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "endpoints": total,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": round(os.getloadavg()[0], 1),  # the machine may be shared: say how busy it was
        "segments": {"five_conditions": FIVE_CONDITIONS, "materialised": LARGE_SEGMENT},
        "engines": {},
    }
    databases: dict[str, Database] = {}
    pg_admin = pg_name = None
    if "sqlite" in stores:
        databases["sqlite"] = SqliteDatabase(workdir / "bench.sqlite3")
    if "postgres" in stores:
        import psycopg

        pg_admin = psycopg.connect(POSTGRES_URL, autocommit=True)
        pg_name = f"clarion_bench_{uuid.uuid4().hex[:8]}"
        pg_admin.execute(f"CREATE DATABASE {pg_name}")
        databases["postgres"] = PostgresDatabase(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{pg_name}")
    try:
        for db in databases.values():
            await db.write(migrate)
        loaders: list[Any] = []
        if "sqlite" in databases:
            loaders.append(SqliteLoader(workdir / "bench.sqlite3"))
        if "postgres" in databases:
            loaders.append(PostgresLoader(databases["postgres"].url))  # type: ignore[attr-defined]

        reset_peak_rss()
        started = time.perf_counter()
        generating = writing = 0.0
        rows = {"endpoints": 0, "users": 0, "events": 0}
        stamp = 0
        chunks = generate(total)
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            generating += time.perf_counter() - t0
            if chunk is None:
                break
            stamp += 1
            t0 = time.perf_counter()
            for loader in loaders:
                loader.load(chunk)
            writing += time.perf_counter() - t0
            rows["endpoints"] += len(chunk.endpoints)
            rows["users"] += len(chunk.users)
            rows["events"] += len(chunk.events)
            print(f"  loaded {rows['endpoints']:,} endpoints", end="\r", flush=True)
        t0 = time.perf_counter()
        for loader in loaders:
            loader.finish(stamp)
        writing += time.perf_counter() - t0
        result["load"] = {
            "rows": rows,
            "stores": list(databases),
            "generate_s": round(generating, 1),
            "write_s": round(writing, 1),
            "total_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(peak_rss_mb()),
        }
        print(f"load: {result['load']}")

        source = "sqlite" if "sqlite" in databases else "postgres"
        replica = Replica(workdir / "replica.duckdb", memory_limit="8GB")
        sync = ReplicaSync(databases[source], replica)
        reset_peak_rss()
        t0 = time.perf_counter()
        first = await sync.sync()
        full_sync_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = await sync.sync()
        result["replica"] = {
            "source": source,
            "full_sync_s": round(full_sync_s, 1),
            "batches": first.batches,
            "unchanged_sync_ms": round((time.perf_counter() - t0) * 1000, 2),
            "unchanged_batches": second.batches,
            "file_mb": round(sum(p.stat().st_size for p in workdir.glob("replica.duckdb*")) / 1e6),
            "rows": replica.counts(),
            "peak_rss_mb": round(peak_rss_mb()),
        }
        print(f"replica: {result['replica']}")

        result["engines"]["duckdb"] = time_duckdb(replica, repeat)
        print(f"duckdb: {result['engines']['duckdb']}")
        for name, db in databases.items():
            result["engines"][f"{name} SQL"] = await time_store(db, repeat)
            print(f"{name} SQL: {result['engines'][f'{name} SQL']}")
        replica.close()
        result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    finally:
        for db in databases.values():
            db.close()
        if pg_admin is not None:
            pg_admin.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
            pg_admin.close()
    return result


def find_baseline(endpoints: int) -> Path | None:
    """The recorded run of this size, else of the nearest size (per endpoint, sizes compare roughly)."""
    recorded = {}
    for path in RESULTS.glob("segments-*.json"):
        if match := re.fullmatch(r"segments-(\d+)\.json", path.name):
            recorded[int(match[1])] = path
    if not recorded:
        return None
    return recorded[min(recorded, key=lambda size: abs(math.log(size / endpoints)))]


def per_endpoint_change(engine: dict[str, Any], base: dict[str, Any] | None, key: str, sizes: tuple[int, int]) -> str:
    """`now / before` per endpoint for one measure — CPU time when both runs recorded it (a busy machine stretches
    wall time, not CPU), else wall time — flagged past SLOWER."""
    if base is None or f"{key}_s" not in engine or f"{key}_s" not in base:
        return "-"
    measure = f"{key}_cpu_s" if f"{key}_cpu_s" in engine and f"{key}_cpu_s" in base else f"{key}_s"
    now, before = sizes
    change = (engine[measure] / now) / (base[measure] / before)
    kind = "cpu" if measure.endswith("cpu_s") else "wall"
    return f"{change:.2f}x {kind}" + (" **" if change > SLOWER else "   ")


def report(result: dict[str, Any], baseline: dict[str, Any] | None, baseline_name: str) -> str:
    engines = result["engines"]
    base = engines["duckdb"]
    counts = {e["count"] for e in engines.values() if "count" in e}
    ids = {e["ids"] for e in engines.values() if "ids" in e}
    lines = [
        f"{result['endpoints']:,} endpoints; 5-condition segment: {sorted(counts)} members; materialised segment: "
        f"{sorted(ids)} members" + ("" if len(counts) == len(ids) == 1 else "  ** ENGINES DISAGREE **"),
        f"load average {result['load_average_at_start']} at the start, {result.get('load_average_at_end')} at the end",
        f"{'engine':<14} {'count':>10} {'ratio':>6} {'CPU':>8} {'ratio':>6} {'ids':>10} {'ratio':>6} {'CPU':>8} "
        f"{'ratio':>6} {'peak RSS':>9} {'count vs last':>16} {'ids vs last':>16}",
    ]

    def cell(e: dict[str, Any], measure: str) -> str:
        width = 10 if measure.endswith("_s") and "cpu" not in measure else 8
        if measure not in e or measure not in base:
            return f"{'timeout' if 'cpu' not in measure else '-':>{width}} {'':>6}"
        return f"{e[measure] * 1000:>{width - 2}.0f}ms {e[measure] / base[measure]:>5.1f}x"

    sizes = (result["endpoints"], baseline["endpoints"] if baseline else 0)
    slower = []
    for name, e in engines.items():
        before = (baseline or {}).get("engines", {}).get(name)
        changes = [per_endpoint_change(e, before, key, sizes) for key in ("count", "ids")]
        slower += [f"{name} {key}" for key, change in zip(("count", "ids"), changes, strict=True) if "**" in change]
        times = " ".join(cell(e, m) for m in ("count_s", "count_cpu_s", "ids_s", "ids_cpu_s"))
        lines.append(f"{name:<14} {times} {e['peak_rss_mb']:>7.0f}MB {changes[0]:>16} {changes[1]:>16}")
    lines.append(f"vs last: time per endpoint against {baseline_name}; ** more than {SLOWER:g}x slower")
    if slower:
        lines.append(f"** more than {SLOWER:g}x slower per endpoint than {baseline_name}: {', '.join(slower)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=200_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite and DuckDB files go (a temp dir)")
    parser.add_argument("--baseline", type=Path, default=None, help="the results file to compare with")
    args = parser.parse_args()
    baseline_path = args.baseline or find_baseline(args.endpoints)
    baseline = json.loads(baseline_path.read_text()) if baseline_path else None
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clarion-bench-segments-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(args.endpoints, stores, args.repeat, workdir))
    result["baseline"] = baseline_path.name if baseline_path else None
    text = report(result, baseline, baseline_path.name if baseline_path else "nothing recorded")
    print(text)
    out = RESULTS / f"segments-{args.endpoints}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
