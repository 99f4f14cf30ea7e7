"""Segment evaluation at scale: the row-store SQL (SQLite, PostgreSQL) against the DuckDB replica, in one run.

    .venv/bin/python bench/segments.py [--endpoints 200000] [--store sqlite|postgres|both] [--repeat 3]
    .venv/bin/python bench/segments.py --fast --endpoints 10000000   # the replica alone, built straight in DuckDB
    .venv/bin/python bench/segments.py --check --endpoints 3000      # --fast builds what a sync builds?

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

--fast skips the stores: the same rows are generated and applied to the replica by the sync's own statements in
DuckDB, a few minutes at 10,000,000 endpoints where loading a store and syncing from it takes half an hour; only
DuckDB is timed, and the results go to bench/results/segments-<N>-fast.json. --check builds a small replica both ways
(a sync from a loaded SQLite store, in several batches, and --fast's) and compares every table row for row.

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
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from clarion.analytics import segment_duckdb
from clarion.analytics.replica import FEED_TYPES, Replica
from clarion.analytics.sync import BATCH_ROWS, ReplicaSync
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
#
# Rows are drawn by DuckDB SQL from hashes of (row number, draw number): the same rows whatever the chunking, and far
# faster than drawing them in Python. The store loaders take them as tuples (`generate`); the fast replica build
# (`build_replica`) stages them in the replica's own connection, typed as the change feed's JSON is read there.

_UNIT = 9007199254740992.0  # 2**53: the top 53 bits of a hash as a float in [0, 1)
_NOW_MS = int(NOW.timestamp() * 1000)
_DAY_MS = 86_400_000
_MAX_EVENTS = 4  # per endpoint


_DRAWS = 64  # per row


def _u(draw: int, of: str = "i") -> str:
    """A uniform draw in [0, 1): the `draw`th of the row numbered `of` (hashing one number: DuckDB's hash of
    several values combines theirs, and draws made so come out correlated)."""
    return f"((hash({of} * {_DRAWS} + {draw}) >> 11) / {_UNIT})"


def _pick(values: list[str], weights: list[int], draw: int, of: str = "i") -> str:
    """A weighted choice among `values` (integer weights: each value repeated that many times in a list)."""
    pool = [value for value, weight in zip(values, weights, strict=True) for _ in range(weight)]
    literal = "[" + ", ".join(f"'{value}'" for value in pool) + "]"
    return f"{literal}[1 + floor({_u(draw, of)} * {len(pool)})::INTEGER]"


def _expo(draw: int, mean: float, of: str = "i") -> str:
    return f"(-ln(1 - {_u(draw, of)}) * {mean})"


def _iso(ms: str) -> str:
    """clarion.clock.iso_millis of epoch milliseconds."""
    return f"strftime(epoch_ms({ms}), '%Y-%m-%dT%H:%M:%S.%g') || 'Z'"


_INTERESTS = (
    "list_sort(list_distinct(["
    + ", ".join(
        f"CASE WHEN draws > {k} THEN {_pick(INTERESTS, [round(100 * w) for w in INTEREST_WEIGHTS], 10 + k)} END"
        for k in range(4)
    )
    + "]))"
)
# Endpoints numbered [$start, $stop): every value their rows and documents are made of.
_ENDPOINTS = f"""
    SELECT *, 'ep-' || lpad(i::VARCHAR, 9, '0') AS endpoint_id, {_iso("effective_ms")} AS effective_at,
        'user-' || lpad((i // {ENDPOINTS_PER_USER})::VARCHAR, 9, '0') AS user_id,
        CASE WHEN channel = 'EMAIL' THEN 'ep-' || lpad(i::VARCHAR, 9, '0') || '@example.com'
             ELSE 'token-' || lpad(i::VARCHAR, 9, '0') END AS address,
        {_INTERESTS} AS interests
    FROM (SELECT i, i // $chunk + 1 AS stamp,
        {_pick(CHANNELS, CHANNEL_WEIGHTS, 1)} AS channel,
        {_pick(COUNTRIES, COUNTRY_WEIGHTS, 2)} AS country,
        {_pick(PLATFORMS, PLATFORM_WEIGHTS, 3)} AS platform,
        {_pick(TIERS, TIER_WEIGHTS, 4)} AS tier,
        {_pick(VERSIONS, [1] * len(VERSIONS), 5)} AS app_version,
        floor({_u(6)} * 5)::INTEGER AS draws,
        {_NOW_MS} - floor({_expo(7, 20 * _DAY_MS)})::BIGINT AS effective_ms,
        least(floor({_expo(8, 2)}), 40)::DOUBLE AS purchases,
        floor({_expo(9, 20)})::DOUBLE AS sessions,
        round({_expo(20, 30)} + {_expo(21, 30)}, 2) AS ltv,
        round(-60 + {_u(22)} * 130, 4) AS latitude,
        round(-180 + {_u(23)} * 360, 4) AS longitude,
        {_pick(["free", "pro", "team"], [80, 15, 5], 26)} AS plan
    FROM range($start, $stop) r(i))
"""
# The events of endpoints numbered [$start, $stop): 30 % of endpoints have 1-4 in the last 60 days. `seq` numbers
# them in order from $seq + 1, as the store's serial column does for rows inserted in that order.
_EVENTS = f"""
    SELECT *, $seq + row_number() OVER (ORDER BY i, number) AS seq, {_iso("event_at")} AS timestamp
    FROM (SELECT i, 'ep-' || lpad(i::VARCHAR, 9, '0') AS endpoint_id, i // $chunk + 1 AS stamp, number,
        {_NOW_MS} - floor({_expo(30, 12 * _DAY_MS, "n")})::BIGINT % {60 * _DAY_MS} AS event_at,
        {_pick(EVENT_TYPES, EVENT_WEIGHTS, 31, "n")} AS event_type
    FROM (SELECT *, i * {_MAX_EVENTS} + number AS n FROM (
        SELECT i, unnest(range(CASE WHEN {_u(24)} < 0.3 THEN 1 + floor({_u(25)} * {_MAX_EVENTS})::INTEGER ELSE 0 END))
            AS number
        FROM range($start, $stop) r(i))))
"""
# A store document: what UpdateEndpoint would have stored.
_DOCUMENT = """to_json({'ChannelType': channel, 'Address': address,
    'Attributes': {'interests': interests, 'tier': [tier]},
    'Metrics': {'purchases': purchases, 'sessions': sessions, 'ltv': ltv},
    'Demographic': {'Platform': platform, 'AppVersion': app_version, 'Make': 'acme'},
    'Location': {'Country': country, 'Latitude': latitude, 'Longitude': longitude},
    'User': {'UserId': user_id}, 'RequestId': 'bench'})"""


def _generated(con: duckdb.DuckDBPyConnection, start: int, stop: int, chunk: int) -> None:
    """The temporary table `generated`: endpoints numbered [start, stop), stamped one stamp per `chunk`."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE generated AS {_ENDPOINTS}", {"start": start, "stop": stop, "chunk": chunk}
    )
    # The cohort is a CRC-32 (clarion.endpoints.service.cohort_of), which DuckDB lacks: computed here, read back.
    with tempfile.NamedTemporaryFile("w", suffix=".csv") as file:
        file.write("".join(f"{i},{cohort_of(f'ep-{i:09d}')}\n" for i in range(start, stop)))
        file.flush()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE generated AS SELECT g.*, c.cohort_id FROM generated g JOIN "
            f"read_csv('{file.name}', header = false, columns = {{'i': 'BIGINT', 'cohort_id': 'INTEGER'}}) c "
            "USING (i)"
        )


def _generated_events(con: duckdb.DuckDBPyConnection, start: int, stop: int, chunk: int, seq: int) -> int:
    """The temporary table `generated_events`: the events of endpoints [start, stop), numbered from seq + 1;
    returns how many."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE generated_events AS {_EVENTS}",
        {"start": start, "stop": stop, "chunk": chunk, "seq": seq},
    )
    return int(con.execute("SELECT count(*) FROM generated_events").fetchone()[0])  # type: ignore[index]


@dataclass
class Chunk:
    endpoints: list[tuple[Any, ...]]
    users: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


def generate(total: int, chunk: int = CHUNK) -> Iterator[Chunk]:
    """Rows in the store's column order, `chunk` endpoints at a time, each chunk on its own change-feed stamp."""
    con = duckdb.connect()
    seq = 0
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        _generated(con, start, stop, chunk)
        seq += _generated_events(con, start, stop, chunk, seq)
        endpoints = con.execute(
            f"""SELECT '{APP_ID}', endpoint_id, endpoint_id, channel, address, 'ACTIVE', 'NONE', user_id, cohort_id,
                effective_at, effective_at, {_DOCUMENT}, stamp FROM generated ORDER BY i"""
        ).fetchall()
        users = con.execute(
            f"""SELECT '{APP_ID}', user_id, to_json({{'plan': [plan]}}), stamp FROM generated
                WHERE i % {ENDPOINTS_PER_USER} = 0 ORDER BY i"""
        ).fetchall()
        events = con.execute(
            f"""SELECT '{APP_ID}', endpoint_id, endpoint_id || '-' || number, event_type, event_at, event_at, NULL,
                to_json({{'EventType': event_type, 'Timestamp': timestamp}}), stamp FROM generated_events
                ORDER BY seq"""
        ).fetchall()
        yield Chunk(endpoints, users, events)
    con.close()


FAST_ROWS = 1_000_000  # endpoints generated and applied at a time by build_replica


def build_replica(replica: Replica, total: int, chunk: int = CHUNK, batch_rows: int = BATCH_ROWS) -> int:
    """The replica a full sync of a store loaded with `generate(total, chunk)` builds, made directly in DuckDB: the
    same rows staged as the sync stages the change feed's JSON, applied by the sync's own statements, endpoints in
    the sync's batches of `batch_rows` (which values get the replica's metric slots and attribute bits depends on
    them). Returns the feed position (the last chunk's stamp). `--check` compares the two."""
    types = FEED_TYPES
    step = batch_rows * max(1, FAST_ROWS // batch_rows)  # generated at a time: whole batches
    with replica.round() as round_:
        round_.reset()
        con = round_.con
        # Events first, as a sync applies them: endpoints then pick up their last event time from `activity`.
        seq = 0
        for start in range(0, total, FAST_ROWS):
            seq += _generated_events(con, start, min(start + FAST_ROWS, total), chunk, seq)
            _stage(
                con,
                types["events"],
                f"""SELECT '{APP_ID}' AS app_id, endpoint_id, event_type, event_at,
                event_at AS arrival_at, NULL AS session_id, stamp AS change_seq, seq,
                {{'Attributes': NULL, 'Metrics': NULL}} AS doc FROM generated_events""",
            )
            round_.apply_events()
            round_.commit()
        for start in range(0, total, step):
            stop = min(start + step, total)
            _generated(con, start, stop, chunk)
            for first in range(start, stop, batch_rows):
                _stage_endpoints(con, first, min(first + batch_rows, stop))
                round_.insert_endpoints()
            _stage(
                con,
                types["users"],
                f"""SELECT '{APP_ID}' AS app_id, user_id, stamp AS change_seq,
                MAP(['plan'], [[plan]]) AS attributes FROM generated WHERE i % {ENDPOINTS_PER_USER} = 0 ORDER BY i""",
            )
            round_.insert_users()
            round_.commit()
        position = (total - 1) // chunk + 1
        round_.set_position(position)
    return position


def _stage_endpoints(con: duckdb.DuckDBPyConnection, start: int, stop: int) -> None:
    """Stage the generated endpoints numbered [start, stop) as the sync stages a batch of the feed."""
    _stage(
        con,
        FEED_TYPES["endpoints"],
        f"""SELECT '{APP_ID}' AS app_id, endpoint_id AS endpoint_key,
        endpoint_id AS id, channel AS channel_type, address, 'ACTIVE' AS endpoint_status, 'NONE' AS opt_out,
        user_id, cohort_id, effective_at AS created_at, effective_at, stamp AS change_seq,
        {{'ChannelType': channel,
          'Demographic': {{'AppVersion': app_version, 'Locale': NULL, 'Make': 'acme', 'Model': NULL,
              'ModelVersion': NULL, 'Platform': platform, 'PlatformVersion': NULL, 'Timezone': NULL}},
          'Location': {{'City': NULL, 'Country': country, 'Latitude': latitude, 'Longitude': longitude,
              'PostalCode': NULL, 'Region': NULL}},
          'Attributes': MAP(['interests', 'tier'], [interests, [tier]]),
          'Metrics': MAP(['purchases', 'sessions', 'ltv'], [purchases, sessions, ltv])}} AS doc
        FROM generated WHERE i >= {start} AND i < {stop} ORDER BY i""",
    )


def _stage(con: duckdb.DuckDBPyConnection, types: dict[str, str], select: str) -> None:
    """The temporary table `staged` as the sync's JSON reader would have typed `select`'s rows."""
    columns = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in types.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS SELECT {columns} FROM ({select})")


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


def time_duckdb(replica: Replica, repeat: int, slots: bool = True) -> dict[str, Any]:
    """`slots=False`: in a transaction rolled back after, with the project's metric slots and attribute bits
    forgotten, so the compiler reads the metrics MAP and the attribute_pairs list as it did before they existed."""
    five, large = plan(FIVE_CONDITIONS), plan(LARGE_SEGMENT)
    con = replica.cursor()
    if not slots:
        con.execute("BEGIN")
        con.execute("DELETE FROM metric_slots")
        con.execute("DELETE FROM attribute_slots")
    reset_peak_rss()
    result: dict[str, Any] = {}
    result["count_s"], result["count_cpu_s"], result["count"] = median_times(
        lambda: with_cpu(lambda: segment_duckdb.count(con, APP_ID, five)), repeat
    )

    def materialise() -> list[tuple[Any, ...]]:
        segment_duckdb.execute_members(con, APP_ID, large)
        return con.fetchall()

    result["ids_s"], result["ids_cpu_s"], ids = median_times(lambda: with_cpu(materialise), repeat)
    if not slots:
        con.execute("ROLLBACK")
    return {**result, "ids": len(ids), "peak_rss_mb": peak_rss_mb()}


def time_replica(result: dict[str, Any], replica: Replica, path: Path, how: dict[str, Any], repeat: int) -> None:
    """Record how the replica was made (`how`), its size and the peak memory so far, then time DuckDB on it."""
    with replica.cursor() as con:
        memory_limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]
    result["replica"] = {
        **how,
        "memory_limit": memory_limit,
        "file_mb": round(sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*")) / 1e6),
        "rows": replica.counts(),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print(f"replica: {result['replica']}")
    result["engines"]["duckdb"] = time_duckdb(replica, repeat)
    print(f"duckdb: {result['engines']['duckdb']}")


# ----------------------------------------------------------------------------------------------------------------
# The run


def run_fast(total: int, repeat: int, path: Path, memory_limit: str, query_limits: list[str]) -> dict[str, Any]:
    """--fast: the replica built straight from the generator (build_replica), then reopened with each of
    `query_limits` (a server's analytics.memory_limit) in turn and DuckDB timed alone: engine "duckdb" with the
    first, "duckdb <limit>" with the others, and "duckdb without slots" with the first, reading metrics and
    attributes the way the compiler did before the slots (time_duckdb). A replica already at `path` (--replica) is
    timed as it is, so a long build can run apart from the timing."""
    result = header(total)
    built: dict[str, Any] = {"source": f"reused {path}"}
    if not path.exists():
        replica = Replica(path, memory_limit=memory_limit)
        reset_peak_rss()
        started = time.perf_counter()
        build_replica(replica, total)
        built = {"source": "generated in DuckDB (--fast)", "build_s": round(time.perf_counter() - started, 1)}
        replica.close()
    for limit in query_limits:
        replica = Replica(path, memory_limit=limit)
        if limit == query_limits[0]:
            time_replica(result, replica, path, built, repeat)
            result["engines"]["duckdb without slots"] = time_duckdb(replica, repeat, slots=False)
            print(f"duckdb without slots: {result['engines']['duckdb without slots']}")
        else:
            result["engines"][f"duckdb {limit}"] = time_duckdb(replica, repeat)
            print(f"duckdb {limit}: {result['engines'][f'duckdb {limit}']}")
        replica.close()
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return result


async def compare_builds(db: Database, workdir: Path, total: int, chunk: int, batch_rows: int) -> dict[str, int]:
    """Load `generate(total, chunk)` into the migrated, empty store `db` as the benchmark does, sync a replica from
    it in batches of `batch_rows`, build another with build_replica, and answer the rows per replica table found in
    one and not the other (an empty dict: the two are equal, row for row)."""

    def load(tx: Transaction) -> None:
        for part in generate(total, chunk):
            for table, columns, rows in tables(part):
                tx.insert_rows(f"INSERT INTO {table} ({columns})", rows)
        tx.execute("UPDATE change_feed SET seq = ? WHERE name = 'rows'", ((total - 1) // chunk + 1,))
        tx.execute(BENCH_APP.replace("%s", "?"), (APP_ID,))

    await db.write(load)
    synced = Replica(workdir / "synced.duckdb")
    try:
        await ReplicaSync(db, synced, batch_rows).sync()
    finally:
        synced.close()
    built = Replica(workdir / "built.duckdb")
    try:
        build_replica(built, total, chunk, batch_rows)
        differences = {}
        with built.cursor() as con:
            con.execute(f"ATTACH '{workdir / 'synced.duckdb'}' AS synced (READ_ONLY)")
            for table in (*built.counts(), "replica_state"):
                for one, other in ((table, f"synced.{table}"), (f"synced.{table}", table)):
                    query = f"SELECT count(*) FROM (SELECT * FROM {one} EXCEPT ALL SELECT * FROM {other})"
                    if missing := int(con.execute(query).fetchone()[0]):  # type: ignore[index]
                        differences[f"{one} not in {other}"] = missing
            con.execute("DETACH synced")
        return differences
    finally:
        built.close()


def header(total: int) -> dict[str, Any]:
    return {
        "endpoints": total,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": round(os.getloadavg()[0], 1),  # the machine may be shared: say how busy it was
        "segments": {"five_conditions": FIVE_CONDITIONS, "materialised": LARGE_SEGMENT},
        "engines": {},
    }


async def run(total: int, stores: list[str], repeat: int, workdir: Path, memory_limit: str) -> dict[str, Any]:
    result = header(total)
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
        replica = Replica(workdir / "replica.duckdb", memory_limit=memory_limit)
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
        }
        time_replica(result, replica, workdir / "replica.duckdb", result["replica"], repeat)
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
        f"{'engine':<20} {'count':>10} {'ratio':>6} {'CPU':>8} {'ratio':>6} {'ids':>10} {'ratio':>6} {'CPU':>8} "
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
        lines.append(f"{name:<20} {times} {e['peak_rss_mb']:>7.0f}MB {changes[0]:>16} {changes[1]:>16}")
    lines.append(f"vs last: time per endpoint against {baseline_name}; ** more than {SLOWER:g}x slower")
    if slower:
        lines.append(f"** more than {SLOWER:g}x slower per endpoint than {baseline_name}: {', '.join(slower)}")
    return "\n".join(lines)


def check(workdir: Path, total: int) -> int:
    """--check: a replica synced from a loaded SQLite store and one built by build_replica must be equal."""

    async def compare() -> dict[str, int]:
        db = SqliteDatabase(workdir / "check.sqlite3")
        try:
            await db.write(migrate)
            return await compare_builds(db, workdir, total, chunk=max(1, total // 3), batch_rows=max(1, total // 7))
        finally:
            db.close()

    differences = asyncio.run(compare())
    print(f"{total:,} endpoints, synced vs built: " + (f"DIFFERENT {differences}" if differences else "equal"))
    return 1 if differences else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=200_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite and DuckDB files go (a temp dir)")
    parser.add_argument("--baseline", type=Path, default=None, help="the results file to compare with")
    parser.add_argument("--memory-limit", default="8GB", help="the replica's DuckDB memory_limit (default 8GB)")
    parser.add_argument(
        "--query-memory-limit",
        help="--fast: the memory_limit of the timed queries, or several separated by commas, each timed in turn "
        "(default: --memory-limit)",
    )
    parser.add_argument("--fast", action="store_true", help="build the replica straight in DuckDB; time DuckDB only")
    parser.add_argument(
        "--replica", type=Path, help="--fast: the replica file, kept; built if absent, else timed as it is"
    )
    parser.add_argument("--check", action="store_true", help="check that --fast builds what a sync builds, and stop")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clarion-bench-segments-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.check:
            sys.exit(check(workdir, args.endpoints))
        name = f"segments-{args.endpoints}{'-fast' if args.fast else ''}.json"
        baseline_path = args.baseline or (RESULTS / name if args.fast else find_baseline(args.endpoints))
        baseline = json.loads(baseline_path.read_text()) if baseline_path and baseline_path.exists() else None
        if args.fast:
            query_limits = (args.query_memory_limit or args.memory_limit).split(",")
            path = args.replica or workdir / "replica.duckdb"
            result = run_fast(args.endpoints, args.repeat, path, args.memory_limit, query_limits)
        else:
            stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
            result = asyncio.run(run(args.endpoints, stores, args.repeat, workdir, args.memory_limit))
        result["baseline"] = baseline_path.name if baseline else None
        print(report(result, baseline, baseline_path.name if baseline else "nothing recorded"))
        out = RESULTS / name
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out}")
    finally:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
