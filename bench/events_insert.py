"""What inserting events costs the store, with the events table's indexes as they are and as they were, in one run.

    .venv/bin/python bench/events_insert.py [--events 300000] [--step 5000] [--rounds 2] [--store sqlite|postgres|both]
                                            [--variants before,before31,now]

Each variant gets a fresh store (bench/streams.py's project and 1,000 endpoints) and --events app events written
through the store's writer (`events.append`, one transaction per --step events, as the streams bench's producer and
PutEvents write them) spread over the 1,000 endpoints in turn. The rows are built before the clock starts, so the
figures are the insert and its commit only. Variants: `now` is the schema as migrated; `before` puts back the
six indexes events had before migrations 29 and 31 (`events_once` and `events_by_endpoint_key`, which 29 folded into
`events_by_endpoint`; `events_by_change (change_seq, seq)` and `events_by_app_change`, which 31 folded into one);
`before31` only the latter two. The variants alternate round by round, so a machine whose load changes during the
run moves all of them.

Reports per variant the median over rounds of events/s (wall) and CPU µs per event of this process (its writer
thread does the work) and, on PostgreSQL, of the server's processes. Saves bench/results/events_insert.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from streams import STORE_NAMES, cpu_seconds, database, event_rows, prepare

from clarion.store import events as event_store
from clarion.store.database import Transaction

# The events table's indexes before migrations 29 (one index by endpoint instead of two) and 31 (one in feed order
# instead of two), put back over the migrated schema.
FEED_BEFORE_31 = (
    "DROP INDEX events_by_change",
    "CREATE INDEX events_by_change ON events (change_seq, seq)",
    "CREATE INDEX events_by_app_change ON events (app_id, change_seq, seq)",
)
ENDPOINT_BEFORE_29 = (
    "CREATE UNIQUE INDEX events_once ON events (app_id, endpoint_id, event_id)",
    "CREATE INDEX events_by_endpoint_key ON events (app_id, lower(endpoint_id))",
    "DROP INDEX events_by_endpoint",
)
VARIANTS = {"now": (), "before31": FEED_BEFORE_31, "before": ENDPOINT_BEFORE_29 + FEED_BEFORE_31}


def indexes(tx: Transaction) -> list[str]:
    if tx.dialect.name == "postgresql":
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'events' ORDER BY 1"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
    return sorted(row[0] for row in tx.fetchall(sql))


async def measure(store: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="clarion-bench-insert-") as folder:
        async with database(store, Path(folder)) as db:
            await db.write(prepare)

            def schema(tx: Transaction) -> list[str]:
                for statement in VARIANTS[variant]:
                    tx.execute(statement)
                return indexes(tx)

            names = await db.write(schema)
            arrival = int(time.time() * 1000)
            steps = [event_rows(start, args.step, arrival) for start in range(0, args.events, args.step)]
            servers = cpu_seconds(("postgres",))
            started, cpu = time.perf_counter(), time.process_time()
            for rows in steps:
                await db.write(lambda tx, rows=rows: event_store.append(tx, rows))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            server = cpu_seconds(("postgres",))["postgres"] - servers["postgres"]
    events = len(steps) * args.step
    return {
        "store": store,
        "variant": variant,
        "indexes": names,
        "events": events,
        "events_per_s": round(events / elapsed),
        "cpu_us_per_event": round(cpu * 1e6 / events, 1),
        "server_cpu_us_per_event": round(server * 1e6 / events, 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--step", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--variants", default="before,now")
    args = parser.parse_args()
    variants = args.variants.split(",")
    runs = []
    for store in ["sqlite", "postgres"] if args.store == "both" else [args.store]:
        for round_ in range(args.rounds):
            for variant in variants if round_ % 2 == 0 else variants[::-1]:
                runs.append(await measure(store, variant, args))
                r = runs[-1]
                print(
                    f"{STORE_NAMES[store]:10} {variant:7} {r['events_per_s']:>8,}/s {r['cpu_us_per_event']:>6.1f} µs "
                    f"server {r['server_cpu_us_per_event']:>6.1f} µs  load {r['load_before']:.1f}→{r['load_after']:.1f}"
                    f"  {len(r['indexes'])} indexes",
                    flush=True,
                )
    print(f"\n{'store':10} {'variant':7} {'events/s':>9} {'CPU µs':>7} {'server µs':>9}  (medians)")
    summary = []
    for store in dict.fromkeys(r["store"] for r in runs):
        for variant in variants:
            mine = [r for r in runs if r["store"] == store and r["variant"] == variant]
            row = {
                "store": store,
                "variant": variant,
                "indexes": mine[0]["indexes"],
                "events_per_s": statistics.median(r["events_per_s"] for r in mine),
                "cpu_us_per_event": statistics.median(r["cpu_us_per_event"] for r in mine),
                "server_cpu_us_per_event": statistics.median(r["server_cpu_us_per_event"] for r in mine),
            }
            summary.append(row)
            print(
                f"{STORE_NAMES[store]:10} {variant:7} {row['events_per_s']:>9,.0f} {row['cpu_us_per_event']:>7.1f} "
                f"{row['server_cpu_us_per_event']:>9.1f}  {', '.join(row['indexes'])}"
            )
    out = Path(__file__).parent / "results" / "events_insert.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "load": os.getloadavg()}
    found = {"at": datetime.now(UTC).isoformat(), "args": vars(args), "machine": machine, "summary": summary}
    out.write_text(json.dumps({**found, "runs": runs}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
