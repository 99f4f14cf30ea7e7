"""The message log's write cost alone: a push campaign's message rows and send events, written through the store's
own functions into a fresh SQLite store in commits of a batch each, as a campaign batch's commit writes them.

    .venv/bin/python bench/message_log.py [--messages 100000] [--batch 100] [--forms uuid4-digest,uuid7-ordered]

Each form is how message ids and request keys are made: `uuid4-digest` is how they were made before (a random
uuid4, a SHA-256 of project, trace key and recipient), `uuid7-ordered` how the send path makes them now
(clarion/messages/delivery.py: a time-ordered UUIDv7, a digest of the trace followed by the endpoint key), and
`uuid7-digest` the one without the other. Prints, per form, the process's CPU time and the wall time per message,
and the database's size. Results: bench/results/message-log-<messages>.json, with the load average. Each message
has a provider id of its own, random as FCM's are.
"""

# ruff: noqa: E402  (sys.path is set before the imports; see below)
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.run import code_version, machine
from clarion.channels.outcomes import send_events
from clarion.messages.delivery import Target, _legacy_request_key, _trace_prefix, new_message_id, request_key
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store.database import SQLITE, Transaction, connect_sqlite
from clarion.store.messages import MessageRow
from clarion.store.migrations import migrate

APP_ID = "bench0000000000000000000000000000"
CAMPAIGN_ID = "c" * 32
TRACE = "run-0000000000000000"
ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.dumps(
    {
        "ApplicationId": APP_ID,
        "CampaignId": CAMPAIGN_ID,
        "TreatmentId": "0",
        "ActivityId": "a" * 32,
        "ScheduledTime": "2026-12-03T05:00:00.000Z",
    },
    separators=(",", ":"),
)


def target(n: int, message_id: str) -> Target:
    return Target("GCM", f"token-{n}", f"d{n:07d}", None, {}, {}, message_id)


def write(messages: int, batch: int, form: str) -> dict[str, Any]:
    """`messages` rows and their events in commits of `batch`, in endpoint order as a campaign sends them."""
    ids, keys = form.split("-")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clarion.db"
        conn = connect_sqlite(path)
        tx = Transaction(conn, SQLITE)
        tx._recorded = []  # a write transaction, as the writer thread's
        conn.execute("BEGIN IMMEDIATE")
        migrate(tx)
        conn.execute("COMMIT")
        prefix = _trace_prefix(APP_ID, TRACE)
        now = datetime.now(UTC)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, messages, batch):
            rows = []
            for n in range(start, min(start + batch, messages)):
                recipient = target(n, str(uuid.uuid4()) if ids == "uuid4" else new_message_id())
                key = (
                    request_key(prefix, recipient)
                    if keys == "ordered"
                    else _legacy_request_key(APP_ID, TRACE, recipient)
                )
                rows.append(
                    MessageRow(
                        recipient.message_id, APP_ID, key, recipient.endpoint_id, None, "GCM", recipient.address,
                        f"projects/bench/messages/{uuid.uuid4().hex}", CAMPAIGN_ID, "0", None, "SUCCESSFUL", 200, "",
                        "2026-12-03T05:00:00.000Z", CONTEXT,
                    )
                )  # fmt: skip
            conn.execute("BEGIN IMMEDIATE")
            message_store.insert(tx, rows)
            event_store.append(tx, send_events(rows, now))
            conn.execute("COMMIT")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        conn.close()
        size = sum(os.path.getsize(p) for p in Path(folder).iterdir()) / 2**20
    return {
        "form": form,
        "cpu_us_per_message": round(cpu / messages * 1e6, 1),
        "wall_us_per_message": round(wall / messages * 1e6, 1),
        "database_mb": round(size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--forms", default="uuid4-digest,uuid7-digest,uuid7-ordered")
    args = parser.parse_args()
    started = datetime.now(UTC)
    before = os.getloadavg()
    results = [write(args.messages, args.batch, form) for form in args.forms.split(",")]
    after = os.getloadavg()
    print(f"{args.messages:,} messages, commits of {args.batch}; load average {before[0]:.2f} -> {after[0]:.2f}\n")
    print("| ids, request keys | CPU µs per message | wall µs per message | database |")
    print("|---|---:|---:|---:|")
    for result in results:
        print(
            f"| {result['form']} | {result['cpu_us_per_message']} | {result['wall_us_per_message']} | "
            f"{result['database_mb']} MB |"
        )
    out = ROOT / "bench" / "results" / f"message-log-{args.messages}.json"
    out.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "code": code_version(),
                "machine": machine(),
                "load_average": {"before": before, "after": after},
                "messages": args.messages,
                "batch": args.batch,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
