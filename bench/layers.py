"""Where a bulk request's server time goes: the benchmark's requests, measured at three depths in one process.

    store    the SQL a batch ends in (endpoint upserts / event inserts of prepared rows), through the group-commit
             writer like the server's
    service  the domain call (Endpoints.update_endpoints_batch, Events.put_events) from decoded JSON
    api      the Pinpoint ASGI app without HTTP: signature check, routing, decode and validation, the service,
             response encoding, metrics and the access log

The difference between two depths is what the outer one adds; the full HTTP figure is `bench/run.py`'s. This is
a diagnostic, not part of the benchmark: `.venv/bin/python bench/layers.py [--requests 400]`. It pins itself to
the first CPU, as bench/run.py pins the server, and reports CPU microseconds per item.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # bench/load.py: the same request bodies as the benchmark

from clarion.access_keys.service import KeyRing
from clarion.api.auth import Authenticator
from clarion.api.pinpoint import PinpointAPI
from clarion.clock import SystemClock, epoch_millis, iso_millis
from clarion.config import AccessKey, Settings
from clarion.context import CallContext
from clarion.endpoints import service as endpoints
from clarion.endpoints.service import cohort_of, endpoint_key
from clarion.events import service as events
from clarion.logs import configure_logging
from clarion.projects import service as projects
from clarion.services import Services, open_services
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store.database import Transaction

KEY = AccessKey(access_key_id="AKIDBENCHLAYERS", secret_access_key="layers-secret")
REGION = "eu-west-1"
CONCURRENCY = 32  # in flight, as in the benchmark's throughput phases
KINDS = ("endpoints", "events")
DEPTHS = ("store", "service", "api")


def context() -> CallContext:
    return CallContext(str(uuid.uuid4()), REGION, "000000000000", SystemClock().now())


def endpoint_rows(app_id: str, items: list[dict[str, Any]]) -> list[endpoint_store.EndpointRow]:
    now = iso_millis(SystemClock().now())
    return [
        endpoint_store.EndpointRow(
            app_id=app_id,
            endpoint_key=endpoint_key(item["Id"]),
            id=item["Id"],
            channel_type=item["ChannelType"],
            address=item["Address"],
            endpoint_status="ACTIVE",
            opt_out="NONE",
            user_id=item["User"]["UserId"],
            cohort_id=cohort_of(item["Id"]),
            created_at=now,
            effective_at=now,
            doc=msgspec.json.encode({k: v for k, v in item.items() if k != "Id"}).decode(),
        )
        for item in items
    ]


def event_rows(app_id: str, batch: dict[str, Any]) -> list[event_store.EventRow]:
    arrival = epoch_millis(SystemClock().now())
    return [
        event_store.EventRow(
            app_id,
            endpoint_id,
            event_id,
            event["EventType"],
            arrival,
            arrival,
            None,
            msgspec.json.encode(event).decode(),
        )
        for endpoint_id, item in batch.items()
        for event_id, event in item["Events"].items()
    ]


async def measure(kind: str, depth: str, requests: int) -> dict[str, Any]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="clarion-layers-")), access_keys=[KEY])
    services = await open_services(settings)
    app_id = (await projects.create_app(services.db, context(), "layers", None))["Id"]
    tag, stamp = uuid.uuid4().hex[:8], load.now_iso()
    if kind == "endpoints":
        bodies = [{"Item": [load.endpoint_item(tag, r * 100 + i) for i in range(100)]} for r in range(requests)]
        method, path = "PUT", f"/v1/apps/{app_id}/endpoints"
    else:
        bodies = [{"BatchItem": load.event_batch(tag, r * 100, stamp)} for r in range(requests)]
        method, path = "POST", f"/v1/apps/{app_id}/events"
    one = prepare(services, kind, depth, app_id, method, path, bodies)
    del bodies
    gc.collect()
    gc.freeze()  # the prepared requests are not the server's heap: keep them out of its collections
    jobs = iter(range(requests))

    async def worker() -> None:
        for index in jobs:
            await one(index)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.unfreeze()
    services.close()
    items = requests * load.ITEMS_PER_REQUEST
    return {
        "kind": kind,
        "depth": depth,
        "items_per_s": round(items / elapsed),
        "cpu_us_per_item": round(1e6 * cpu / items, 1),
        "cpu_pct": round(100 * cpu / elapsed),
    }


def prepare(
    services: Services, kind: str, depth: str, app_id: str, method: str, path: str, bodies: list[dict[str, Any]]
) -> Callable[[int], Awaitable[None]]:
    """One coroutine function per depth, taking the request's index; all inputs are built before timing."""
    if depth == "store":
        if kind == "endpoints":
            rows = [endpoint_rows(app_id, body["Item"]) for body in bodies]

            def write_endpoints(tx: Transaction, batch: list[endpoint_store.EndpointRow]) -> None:
                endpoint_store.upsert(tx, batch)
                endpoint_store.deactivate_address(tx, app_id, [(r.address or "", r.endpoint_key) for r in batch])
                endpoint_store.put_user_attributes(tx, app_id, {r.user_id or "": '{"tier":["gold"]}' for r in batch})

            async def store_endpoints(index: int) -> None:
                await services.db.write(lambda tx: write_endpoints(tx, rows[index]))

            return store_endpoints
        event_batches = [event_rows(app_id, body["BatchItem"]) for body in bodies]

        async def store_events(index: int) -> None:
            await services.db.write(lambda tx: event_store.append(tx, event_batches[index]))

        return store_events

    encoded = [msgspec.json.encode(body) for body in bodies]
    if depth == "service":

        async def service(index: int) -> None:
            body = msgspec.json.decode(encoded[index])  # the decode is a few microseconds per item; api measures it too
            if kind == "endpoints":
                await endpoints.update_endpoints_batch(
                    services.db, services.endpoint_writer, context(), app_id, body["Item"]
                )
            else:
                await events.put_events(services.db, services.endpoint_writer, context(), app_id, body["BatchItem"])

        return service

    client = load.Client("http://127.0.0.1:8080", KEY.access_key_id, KEY.secret_access_key, REGION)
    api = PinpointAPI(services, Authenticator(KeyRing([KEY]), default_region=REGION, max_skew=timedelta(minutes=5)))
    signed = [client.raw(method, path, body) for body in encoded]

    async def through_api(index: int) -> None:
        request = signed[index]
        body = request.body or b""
        headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
        headers += [(b"host", b"127.0.0.1:8080"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
        }
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await api(scope, receive, send)
        if statuses != [202]:
            raise SystemExit(f"the API answered {statuses} to a benchmark request")

    return through_api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests of 100 items per measurement")
    parser.add_argument("--only", help="one measurement, e.g. events:service (for a profiler)")
    args = parser.parse_args()
    wanted = [tuple(args.only.split(":"))] if args.only else [(k, d) for k in KINDS for d in DEPTHS]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    # The access log is on, as in `clarion serve`, and goes to a file, as the benchmark's server log does.
    log = tempfile.NamedTemporaryFile("w", prefix="clarion-layers-", suffix=".log", delete=False)  # noqa: SIM115
    stderr, sys.stderr = sys.stderr, log
    try:
        configure_logging("info")
    finally:
        sys.stderr = stderr
    try:
        import uvloop

        run: Callable[[Awaitable[dict[str, Any]]], dict[str, Any]] = uvloop.run  # the server's loop
    except ImportError:
        run = asyncio.run
    print(f"{'':10} {'depth':8} {'items/s':>9} {'CPU us/item':>12} {'CPU':>5}")
    for kind, depth in wanted:
        result = run(measure(kind, depth, args.requests))
        print(
            f"{kind:10} {depth:8} {result['items_per_s']:>9,} {result['cpu_us_per_item']:>12} {result['cpu_pct']:>4}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
