"""Instructions per PutEvents event, by part, counted by callgrind: repeatable on a shared machine, as CPU time is not.

    .venv/bin/python bench/events_cpu.py [--requests 20] [--sync-events 25000]
    .venv/bin/python bench/events_cpu.py --http [--requests 60] [--server-tree DIR] [--segment-engine duckdb]

In process (the default) the script runs itself under `valgrind --tool=callgrind --instr-atstart=no`, switches
instrumentation on only around each phase and reports each phase's instructions per event:

    service         PutEvents through the events service with bench/load.py's bodies (10 endpoints x 10 events),
                    one request at a time on a fresh SQLite store (what layers.py's `service` depth runs)
    without PART    the same with PART stubbed out, so the difference is what PART costs: the journey outcomes kept,
                    the journey entries held, the name quotas, the committed write's domain events (event-triggered
                    campaigns, event streams)
    replica sync    one sync of the analytics replica (DuckDB) taking in --sync-events of those events, as the
                    server's background loop does every `analytics.sync_seconds`

--http runs `clarion serve` from --server-tree (default: this checkout; another commit's worktree with its own .venv
compares commits) under callgrind, creates a project and sends signed PutEvents, 8 in flight, counting only while
they run: the full HTTP path. Its replica is off unless --segment-engine duckdb: the replica's rounds fall inside or
outside that window by timing, so its cost is counted in process, at a batch size of one's choosing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # bench/load.py: the benchmark's request bodies and signing

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
IN_FLIGHT = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="PutEvents requests of 100 events per phase")
    parser.add_argument("--sync-events", type=int, default=25_000, help="events the replica takes in in one sync")
    parser.add_argument("--http", action="store_true", help="the full HTTP path of a `clarion serve`")
    parser.add_argument("--server-tree", type=Path, default=ROOT, help="--http: the checkout whose server runs")
    parser.add_argument("--segment-engine", choices=("store", "duckdb"), default="store", help="--http only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(in_process(args.requests, args.sync_events))
        return
    with tempfile.TemporaryDirectory(prefix="clarion-events-cpu-") as scratch:
        out = Path(scratch) / "callgrind.out"
        if args.http:
            http_path(args, out, Path(scratch))
        else:
            argv = [sys.executable, __file__, "--child", "--requests", str(args.requests)]
            subprocess.run([*callgrind(out), *argv, "--sync-events", str(args.sync_events)], check=True)
        print(f"{'phase':24} {'events':>8} {'instructions per event':>24}")
        for label, events, total in dumps(out):
            print(f"{label:24} {events:>8,} {total / events:>24,.0f}")


def callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]


@contextmanager
def counted(pid: int, label: str, events: int) -> Iterator[None]:
    """Instructions on for the block, then dumped under `label` (the dump resets the counts)."""
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    yield
    subprocess.run(["callgrind_control", "-d", f"{label}@{events}", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)


def dumps(out: Path) -> list[tuple[str, int, int]]:
    """(phase, events, instructions) of each dump the run made, in order."""
    found = []
    for path in sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:])):
        text = path.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: dump (.*)@(\d+)$", text, re.MULTILINE)
        total = re.search(r"^totals: (\d+)$", text, re.MULTILINE)
        if label and total:
            found.append((label.group(1).replace("_", " "), int(label.group(2)), int(total.group(1))))
    return found


# ---- in process ---------------------------------------------------------------------------------------------------


async def in_process(requests: int, sync_events: int) -> None:
    with tempfile.TemporaryDirectory(prefix="clarion-events-cpu-store-") as data_dir:
        await measure_in_process(Path(data_dir), requests, sync_events)


async def measure_in_process(data_dir: Path, requests: int, sync_events: int) -> None:
    from clarion.clock import SystemClock
    from clarion.config import AccessKey, Settings
    from clarion.context import CallContext
    from clarion.events import service as events
    from clarion.projects import service as projects
    from clarion.services import open_services
    from clarion.store import journeys as journey_store

    key = AccessKey(access_key_id="AKIDEVENTSCPU", secret_access_key="events-cpu-secret")
    services = await open_services(Settings(data_dir=data_dir, access_keys=[key]))

    def context() -> CallContext:
        return CallContext(str(uuid.uuid4()), REGION, "000000000000", SystemClock().now())

    app_id = (await projects.create_app(services.db, context(), "events-cpu", None))["Id"]
    tag, stamp = uuid.uuid4().hex[:8], load.now_iso()
    # Every body is built and encoded before anything is counted; decoding one is counted, as the API decodes.
    total = 2 + (2 + requests) * 5 + sync_events // 100
    bodies = iter([msgspec.json.encode(load.event_batch(tag, number * 100, stamp)) for number in range(total)])

    async def put(count: int) -> None:
        for body in [next(bodies) for _ in range(count)]:
            batch = msgspec.json.decode(body)
            response = await events.put_events(services.db, services.endpoint_writer, context(), app_id, batch)
            results = response["Results"].values()
            statuses = {outcome["StatusCode"] for item in results for outcome in item["EventsItemResponse"].values()}
            if statuses != {202}:
                raise SystemExit(f"PutEvents answered {statuses}")

    writer = services.db._writer  # the domain events' dispatch, stubbed below
    stubs: dict[str, tuple[Any, str, Any]] = {
        "journey_outcomes": (journey_store, "keep_outcomes", lambda tx, rows: None),
        "journey_entries": (journey_store, "hold_event_entries", lambda tx, app_id, found, at: 0),
        "name_quotas": (events._EventQuotas, "admit", lambda self, event: None),
        "domain_events": (writer, "dispatch", None),
    }
    pid = os.getpid()
    await put(2)  # warm: caches, prepared statements
    gc.collect()
    gc.freeze()
    for part in (None, *stubs):
        if part is not None:
            owner, name, stub = stubs[part]
            saved = getattr(owner, name)
            setattr(owner, name, stub)
        await put(2)
        with counted(pid, "service" if part is None else f"without_{part}", requests * 100):
            await put(requests)
        if part is not None:
            setattr(owner, name, saved)
    sync = services.segments_engine.sync  # type: ignore[attr-defined]
    await sync.sync()
    await put(sync_events // 100)
    with counted(pid, "replica_sync", sync_events // 100 * 100):
        await sync.sync()
    services.close()


# ---- the full HTTP path -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_path(args: argparse.Namespace, out: Path, scratch: Path) -> None:
    tree = args.server_tree.resolve()
    key_id, secret, port = "BENCH" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "CLARION_ACCESS_KEY_ID": key_id,
        "CLARION_SECRET_ACCESS_KEY": secret,
        "CLARION_RATE_LIMIT__REQUESTS_PER_SECOND": "0",
        "CLARION_ANALYTICS__SEGMENT_ENGINE": args.segment_engine,
    }
    argv = [str(tree / ".venv/bin/python"), "-m", "clarion", "serve", "--port", str(port), "--data-dir", str(scratch)]
    with (scratch / "server.log").open("wb") as log:
        # From the tree's directory: `python -m` puts the working directory first on the path.
        server = subprocess.Popen([*callgrind(out), *argv], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: urlopen(base + "/health", timeout=2).status == 200, server, scratch / "server.log")
        asyncio.run(drive(base, key_id, secret, args.requests, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_for(ready: Callable[[], bool], server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(3000):
        if server.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer /health")


async def drive(base: str, key_id: str, secret: str, requests: int, pid: int) -> None:
    import aiohttp

    client = load.Client(base, key_id, secret, REGION)
    async with aiohttp.ClientSession() as session:

        async def send(request: load.Prepared) -> bytes:
            async with session.request(
                request.method, request.url, data=request.body, headers=request.headers
            ) as response:
                body = await response.read()
                if response.status not in (201, 202):
                    raise SystemExit(f"the server answered {response.status}: {body[:300]!r}")
                return body

        created = await send(client.call("CreateApp", {"CreateApplicationRequest": {"Name": "events-cpu"}}))
        path = f"/v1/apps/{msgspec.json.decode(created)['Id']}/events"
        tag, stamp = uuid.uuid4().hex[:8], load.now_iso()
        bodies = [
            msgspec.json.encode({"BatchItem": load.event_batch(tag, number * 100, stamp)})
            for number in range(requests + IN_FLIGHT)
        ]
        signed = iter([client.raw("POST", path, body) for body in bodies])
        for _ in range(IN_FLIGHT):  # warm
            await send(next(signed))

        async def worker() -> None:
            for request in signed:
                await send(request)

        with counted(pid, "http", requests * 100):
            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


if __name__ == "__main__":
    main()
