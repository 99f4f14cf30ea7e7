"""The DuckDB replica's sync rounds alone: the process's memory while they take in endpoints, then send events.

    .venv/bin/python bench/replica_sync.py [--endpoints 100000] [--load-round 50000] [--send-round 20000]

One process, nothing else in it: an embedded (SQLite) store in a temporary folder and its replica file, as
`clarion serve` keeps them (`analytics.threads`, `analytics.memory_limit` as configured, default 2 and 128MB). It
writes --endpoints GCM endpoints in transactions of 100 (as UpdateEndpointsBatch does), running one sync round
(`ReplicaSync.sync`, the background loop's step) after every --load-round of them; then one push campaign's send
events for every endpoint (`_campaign.send`, built by the send path's own `send_events`, in transactions of 500 as a
campaign batch commits them), a round after every --send-round messages. For each round: the resident set before it,
its peak during the round (the kernel's high-water mark, reset before the round) and after it, the round's wall
time and the process's CPU time in it (every thread, DuckDB's included). The replica's cost in a server is on top of
what the server holds anyway; this isolates it from the rest of the send path.

--duckdb-set adds `SET ...` statements to the replica's connection after it opens, to compare DuckDB settings.
Results: bench/results/replica-sync-<endpoints>.json, with the load average.
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
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.run import code_version, machine
from clarion.analytics.replica import Replica
from clarion.analytics.sync import BATCH_ROWS, ROUND_ROWS, ReplicaSync
from clarion.channels.outcomes import send_events
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store.database import SqliteDatabase
from clarion.store.endpoints import EndpointRow
from clarion.store.messages import MessageRow
from clarion.store.migrations import migrate

APP_ID = "bench0000000000000000000000000000"
CAMPAIGN_ID = "c" * 32
ROOT = Path(__file__).resolve().parent.parent


def resident_mb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in MB."""
    status = Path("/proc/self/status").read_text()
    return tuple(int(status.split(key)[1].split()[0]) // 1024 for key in ("VmRSS:", "VmHWM:"))  # type: ignore[return-value]


def endpoint(n: int) -> EndpointRow:
    doc = {
        "ChannelType": "GCM",
        "Address": f"token-{n}",
        "Demographic": {"Platform": "android", "AppVersion": "1.2.3", "Make": "Google", "Locale": "en_US"},
        "Location": {"Country": "US"},
        "Attributes": {"plan": ["free"]},
    }
    at = "2026-12-01T00:00:00.000Z"
    return EndpointRow(
        APP_ID, f"d{n}", f"d{n}", "GCM", f"token-{n}", "ACTIVE", "NONE", None, n % 100, at, at, json.dumps(doc)
    )


def message(n: int, at: str) -> MessageRow:
    context = json.dumps({"campaign_activity_id": "a" * 32, "treatment_id": "0"})
    return MessageRow(
        uuid.uuid4().hex,
        APP_ID,
        None,
        f"d{n}",
        None,
        "GCM",
        f"token-{n}",
        None,
        CAMPAIGN_ID,
        "0",
        None,
        "SUCCESSFUL",
        200,
        "",
        at,
        context,
    )


async def run(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    db = SqliteDatabase(folder / "clarion.sqlite3")
    await db.write(migrate)
    replica = Replica(folder / "analytics.duckdb", args.threads, args.memory_limit, folder / "analytics.tmp")
    for statement in args.duckdb_set:
        replica.cursor().execute(statement)
    sync = ReplicaSync(db, replica, args.batch_rows, args.round_rows)
    rounds: list[dict[str, Any]] = []

    async def sync_round(phase: str, rows: int) -> None:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
        before = resident_mb()[0]
        started, cpu = time.perf_counter(), time.process_time()
        await sync.sync()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        after, peak = resident_mb()
        rounds.append(
            {
                "phase": phase,
                "rows": rows,
                "rss_before_mb": before,
                "rss_peak_mb": peak,
                "rss_after_mb": after,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
            }
        )
        print(f"{phase:<9} {rows:>9,}: {before} -> peak {peak} -> {after} MB, {seconds:.1f} s, CPU {cpu:.1f} s")

    for first in range(0, args.endpoints, args.load_round):
        last = min(first + args.load_round, args.endpoints)
        for start in range(first, last, 100):
            batch = [endpoint(n) for n in range(start, min(start + 100, last))]
            await db.write(lambda tx, batch=batch: endpoint_store.upsert(tx, batch))
        await sync_round("endpoints", last)
    now = datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for first in range(0, args.endpoints, args.send_round):
        last = min(first + args.send_round, args.endpoints)
        for start in range(first, last, 500):
            events = send_events([message(n, at) for n in range(start, min(start + 500, last))], now)
            await db.write(lambda tx, events=events: event_store.append(tx, events))
        await sync_round("sends", last)
    replica.close()
    db.close()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=100_000)
    parser.add_argument("--load-round", type=int, default=50_000, help="endpoints written between two rounds")
    parser.add_argument("--send-round", type=int, default=20_000, help="messages sent between two rounds")
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--round-rows", type=int, default=ROUND_ROWS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="128MB")
    parser.add_argument("--duckdb-set", action="append", default=[], help="a SET statement for the replica")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        rounds = asyncio.run(run(args, Path(folder)))
    result = {
        "arguments": vars(args),
        "rounds": rounds,
        "peak_rss_mb": max(r["rss_peak_mb"] for r in rounds),
        "max_rss_after_round_mb": max(r["rss_after_mb"] for r in rounds),
        "max_round_growth_mb": max(r["rss_peak_mb"] - r["rss_before_mb"] for r in rounds),
        "cpu_us_per_send_event": round(
            sum(r["cpu_seconds"] for r in rounds if r["phase"] == "sends") / args.endpoints * 1e6, 1
        ),
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": code_version(),
        "load_average": [load, os.getloadavg()],
        "machine": machine(),
    }
    out = ROOT / "bench" / "results" / f"replica-sync-{args.endpoints}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"peak {result['peak_rss_mb']} MB, at most {result['max_rss_after_round_mb']} MB after a round, a round "
        f"added at most {result['max_round_growth_mb']} MB; {result['cpu_us_per_send_event']} µs CPU per send event"
    )


if __name__ == "__main__":
    main()
