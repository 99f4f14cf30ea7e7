"""The load generator: drives a Pinpoint-compatible server with SigV4-signed HTTP requests.

`bench/run.py` starts it as its own process (pinned to another CPU than the server), writes a JSON plan to its
stdin and reads one JSON result from its stdout, so none of the client's work is charged to the server.

Requests are built and signed the way an unmodified AWS SDK builds them: the two bulk bodies are assembled with
msgspec for speed, and the first of each is checked against botocore's own rest-json serializer before any timed
phase; every other request goes through that serializer. Signatures come from botocore's `SigV4Auth`. Bulk
requests are signed just before their phase starts (the server accepts 5 minutes of clock skew), so signing
does not compete with sending.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import botocore.session
import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, create_request_object, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import ServiceModel
from botocore.serialize import create_serializer
from yarl import URL

SERVICE = "mobiletargeting"
ITEMS_PER_REQUEST = 100  # UpdateEndpointsBatch and PutEvents both cap a request at 100 items
ENDPOINTS_PER_EVENT_BATCH = 10  # PutEvents: 10 endpoints x 10 events, like a device flushing its queue


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request exactly as it goes on the wire: signed over this method, raw URL, headers and body."""

    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None


class Client:
    """Builds, signs and sends Pinpoint requests to one server."""

    def __init__(self, base_url: str, key_id: str, secret: str, region: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.model: ServiceModel = botocore.session.get_session().get_service_model("pinpoint")
        self.serializer = create_serializer("rest-json", include_validation=False)
        self.signer = SigV4Auth(Credentials(key_id, secret), SERVICE, region)

    def sign(self, request: AWSRequest) -> Prepared:
        self.signer.add_auth(request)
        body = request.body if isinstance(request.body, bytes) and request.body else None
        return Prepared(request.method, URL(request.url, encoded=True), dict(request.headers.items()), body)

    def serialized(self, operation: str, params: dict[str, Any]) -> AWSRequest:
        """The request botocore's client would build for this call (before signing)."""
        request_dict = self.serializer.serialize_to_request(params, self.model.operation_model(operation))
        prepare_request_dict(request_dict, self.base_url)
        return create_request_object(request_dict)

    def call(self, operation: str, params: dict[str, Any]) -> Prepared:
        return self.sign(self.serialized(operation, params))

    def raw(self, method: str, path: str, body: bytes) -> Prepared:
        """A hand-built JSON request, signed like botocore signs a rest-json call."""
        return self.sign(
            AWSRequest(method=method, url=self.base_url + path, data=body, headers={"Content-Type": "application/json"})
        )

    def check_wire(self, operation: str, params: dict[str, Any], built: AWSRequest) -> None:
        """Fail fast if a hand-built request differs from what botocore's serializer sends."""
        expected = self.serialized(operation, params)
        problems = []
        if (expected.method, expected.url) != (built.method, built.url):
            problems.append(f"{built.method} {built.url} != {expected.method} {expected.url}")
        if msgspec.json.decode(expected.body) != msgspec.json.decode(built.body):
            problems.append("body differs")
        if expected.headers.get("Content-Type") != built.headers.get("Content-Type"):
            problems.append("Content-Type differs")
        if problems:
            raise SystemExit(f"hand-built {operation} request is not what botocore sends: {'; '.join(problems)}")


# ---- request bodies -------------------------------------------------------------------------------------------


def endpoint_item(tag: str, n: int) -> dict[str, Any]:
    """A typical mobile/email endpoint: channel, address, attributes, demographics, location and a user."""
    return {
        "Id": f"ep-{tag}-{n:08d}",
        "ChannelType": "EMAIL",
        "Address": f"user{n}.{tag}@example.com",
        "Attributes": {"plan": ["pro"], "interests": ["music", "travel"]},
        "Demographic": {"Platform": "ios", "PlatformVersion": "18.1", "Locale": "en_US", "Timezone": "Europe/Paris"},
        "Location": {"Country": "FR", "City": "Paris", "PostalCode": "75001"},
        "Metrics": {"sessions": float(n % 50)},
        "OptOut": "NONE",
        "User": {"UserId": f"user-{tag}-{n:08d}", "UserAttributes": {"tier": ["gold"]}},
    }


def event_batch(tag: str, first: int, timestamp: str) -> dict[str, Any]:
    """100 distinct events for 10 endpoints; `Endpoint: {}` (required by the model) carries no update."""
    per_endpoint = ITEMS_PER_REQUEST // ENDPOINTS_PER_EVENT_BATCH
    batch: dict[str, Any] = {}
    for e in range(ENDPOINTS_PER_EVENT_BATCH):
        base = first + e * per_endpoint
        events = {
            f"ev-{tag}-{base + j:09d}": {
                "EventType": "app.purchase",
                "Timestamp": timestamp,
                "AppPackageName": "com.example.shop",
                "AppVersionCode": "412",
                "Attributes": {"sku": f"sku-{(base + j) % 997}", "currency": "EUR"},
                "Metrics": {"price": 9.99, "quantity": 1.0},
                "Session": {"Id": f"s-{tag}-{base}", "StartTimestamp": timestamp},
            }
            for j in range(per_endpoint)
        }
        batch[f"device-{tag}-{base // per_endpoint:08d}"] = {"Endpoint": {}, "Events": events}
    return batch


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ---- measurement ----------------------------------------------------------------------------------------------


class CpuMeter:
    """CPU used over a phase by this process, by the server process (all its threads) and by the whole machine.

    All in percent of one core. What the machine used beyond server and client is everything else: PostgreSQL's
    backends when it is the store, and any other work on the box, which would make the numbers suspect.
    """

    Sample = tuple[float, float | None, float]

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def _server_seconds(self) -> float | None:
        if not self.server_pid:
            return None
        try:
            with open(f"/proc/{self.server_pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime

    def _machine_seconds(self) -> float:
        """Busy CPU seconds of all cores: everything but idle and iowait."""
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
        return (sum(values) - values[3] - values[4]) / self._ticks

    @staticmethod
    def _own_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> Sample:
        return self._own_seconds(), self._server_seconds(), self._machine_seconds()

    def usage(self, started: Sample, elapsed: float) -> dict[str, float | None]:
        own, server, machine = started
        server_now = self._server_seconds()
        return {
            "client_cpu_pct": round(100 * (self._own_seconds() - own) / elapsed, 1),
            "server_cpu_pct": None
            if server is None or server_now is None
            else round(100 * (server_now - server) / elapsed, 1),
            "machine_cpu_pct": round(100 * (self._machine_seconds() - machine) / elapsed, 1),
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), in the values' unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Tally:
    """What came back during one phase."""

    statuses: dict[str, int] = field(default_factory=dict)
    accepted: int = 0  # items (endpoints, events) the server accepted
    latencies: list[float] = field(default_factory=list)

    def status(self, status: int | str) -> None:
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1


async def send(session: aiohttp.ClientSession, request: Prepared) -> tuple[int | str, bytes]:
    try:
        async with session.request(request.method, request.url, headers=request.headers, data=request.body) as resp:
            return resp.status, await resp.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__, b""


Counter = Callable[[int | str, bytes], int]

# uvloop's loop.time() ticks in whole milliseconds: too coarse for sub-millisecond latencies.
clock = time.perf_counter


async def closed_loop(
    session: aiohttp.ClientSession,
    requests: Sequence[Prepared],
    concurrency: int,
    max_seconds: float,
    count: Counter,
    tally: Tally,
) -> float:
    """Keep `concurrency` requests in flight until all are sent or time is up; return the elapsed seconds."""
    queue = iter(requests)
    started = clock()
    deadline = started + max_seconds

    async def worker() -> None:
        for request in queue:
            sent = clock()
            status, body = await send(session, request)
            tally.latencies.append(clock() - sent)
            tally.status(status)
            tally.accepted += count(status, body)
            if clock() >= deadline:
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return clock() - started


async def open_loop(session: aiohttp.ClientSession, requests: Sequence[Prepared], rate: float, tally: Tally) -> float:
    """Fire request i at start + i/rate whatever came back before, and time each from its scheduled moment.

    Timing from the schedule (not from when the request actually left) keeps a stalled server from hiding its
    stall by delaying the requests that would have measured it (coordinated omission).
    """
    start = clock() + 0.05
    tasks = []

    async def fire(request: Prepared, scheduled: float) -> None:
        status, _ = await send(session, request)
        tally.latencies.append(clock() - scheduled)
        tally.status(status)

    for index, request in enumerate(requests):
        scheduled = start + index / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(request, scheduled)))
    await asyncio.gather(*tasks)
    return clock() - start


def ok(status: int | str) -> bool:
    return isinstance(status, int) and 200 <= status < 300


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    ms = [value * 1000 for value in latencies]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


# ---- phases ---------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.client = Client(plan["url"], plan["access_key_id"], plan["secret_access_key"], plan["region"])
        self.cpu = CpuMeter(plan.get("server_pid"))
        self.tag = uuid.uuid4().hex[:8]
        self.app_id = ""
        self.endpoint_ids: list[str] = []

    async def run(self) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=256, force_close=False)
        timeout = aiohttp.ClientTimeout(total=120)
        results: dict[str, Any] = {}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            phases: dict[str, Callable[[aiohttp.ClientSession, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
                "endpoints": self.endpoints,
                "events": self.events,
                "get_endpoint": self.get_endpoint,
                "apps_loop": self.apps_loop,
            }
            for name, spec in self.plan["phases"].items():
                results[name] = await phases[name](session, spec)
        results["app_id"] = self.app_id
        return results

    async def _ensure_app(self, session: aiohttp.ClientSession) -> str:
        if not self.app_id:
            status, body = await send(
                session, self.client.call("CreateApp", {"CreateApplicationRequest": {"Name": f"bench-{self.tag}"}})
            )
            if status != 201:
                raise SystemExit(f"CreateApp failed: {status} {body[:300]!r}")
            self.app_id = msgspec.json.decode(body)["Id"]
        return self.app_id

    async def _throughput(
        self,
        session: aiohttp.ClientSession,
        spec: dict[str, Any],
        requests: list[Prepared],
        count: Counter,
        build_seconds: float,
    ) -> dict[str, Any]:
        """Warm up on the first `concurrency` requests (untimed but counted as written), then time the rest."""
        concurrency = spec["concurrency"]
        warm = Tally()
        await closed_loop(session, requests[:concurrency], concurrency, 60, count, warm)
        tally = Tally()
        meter = self.cpu.start()
        elapsed = await closed_loop(session, requests[concurrency:], concurrency, spec["seconds"], count, tally)
        return {
            "rate": round(tally.accepted / elapsed, 1),
            "accepted": tally.accepted,
            "accepted_total": tally.accepted + warm.accepted,  # what the store must hold afterwards
            "requests": sum(tally.statuses.values()),
            "requests_prepared": len(requests) - concurrency,
            "statuses": tally.statuses,
            "warmup_statuses": warm.statuses,
            "seconds": round(elapsed, 3),
            "concurrency": concurrency,
            "request_latency": latency_summary(tally.latencies),
            "build_and_sign_seconds": round(build_seconds, 2),
            **self.cpu.usage(meter, elapsed),
        }

    async def endpoints(self, session: aiohttp.ClientSession, spec: dict[str, Any]) -> dict[str, Any]:
        """UpdateEndpointsBatch, 100 new endpoints per request."""
        app_id = await self._ensure_app(session)
        path = f"/v1/apps/{app_id}/endpoints"
        total = spec["requests"] + spec["concurrency"]
        built = time.perf_counter()
        first = [endpoint_item(self.tag, n) for n in range(ITEMS_PER_REQUEST)]
        self.client.check_wire(
            "UpdateEndpointsBatch",
            {"ApplicationId": app_id, "EndpointBatchRequest": {"Item": first}},
            AWSRequest(
                method="PUT",
                url=self.client.base_url + path,
                headers={"Content-Type": "application/json"},
                data=msgspec.json.encode({"Item": first}),
            ),
        )
        requests = []
        for r in range(total):
            items = [endpoint_item(self.tag, r * ITEMS_PER_REQUEST + i) for i in range(ITEMS_PER_REQUEST)]
            requests.append(self.client.raw("PUT", path, msgspec.json.encode({"Item": items})))
        build_seconds = time.perf_counter() - built

        def count(status: int | str, body: bytes) -> int:
            return ITEMS_PER_REQUEST if ok(status) else 0

        result = await self._throughput(session, spec, requests, count, build_seconds)
        # Endpoints the server accepted (the warm-up went first, then requests in order): GetEndpoint reads these.
        self.endpoint_ids = [endpoint_item(self.tag, n)["Id"] for n in range(0, result["accepted_total"], 97)]
        result["request_bytes"] = len(requests[0].body or b"")
        return result

    async def events(self, session: aiohttp.ClientSession, spec: dict[str, Any]) -> dict[str, Any]:
        """PutEvents, 100 new events per request; an event counts when its own result says 202."""
        app_id = await self._ensure_app(session)
        path = f"/v1/apps/{app_id}/events"
        total = spec["requests"] + spec["concurrency"]
        built = time.perf_counter()
        stamp = now_iso()
        first = event_batch(self.tag, 0, stamp)
        self.client.check_wire(
            "PutEvents",
            {"ApplicationId": app_id, "EventsRequest": {"BatchItem": first}},
            AWSRequest(
                method="POST",
                url=self.client.base_url + path,
                headers={"Content-Type": "application/json"},
                data=msgspec.json.encode({"BatchItem": first}),
            ),
        )
        requests = [
            self.client.raw(
                "POST", path, msgspec.json.encode({"BatchItem": event_batch(self.tag, r * ITEMS_PER_REQUEST, stamp)})
            )
            for r in range(total)
        ]
        build_seconds = time.perf_counter() - built

        def count(status: int | str, body: bytes) -> int:
            if not ok(status):
                return 0
            results = msgspec.json.decode(body)["Results"]
            return sum(
                1
                for item in results.values()
                for outcome in item["EventsItemResponse"].values()
                if outcome["StatusCode"] == 202
            )

        result = await self._throughput(session, spec, requests, count, build_seconds)
        result["request_bytes"] = len(requests[0].body or b"")
        return result

    async def get_endpoint(self, session: aiohttp.ClientSession, spec: dict[str, Any]) -> dict[str, Any]:
        """GetEndpoint on endpoints written earlier, open loop at a fixed rate."""
        app_id = await self._ensure_app(session)
        if not self.endpoint_ids:
            raise SystemExit("get_endpoint needs the endpoints phase to have written endpoints first")
        rate, seconds = spec["rate"], spec["seconds"]
        rng = random.Random(7)
        requests = [
            self.client.call("GetEndpoint", {"ApplicationId": app_id, "EndpointId": rng.choice(self.endpoint_ids)})
            for _ in range(int(rate * seconds))
        ]
        await open_loop(session, requests[: max(1, rate // 10)], rate, Tally())  # warm the connection pool
        tally = Tally()
        meter = self.cpu.start()
        elapsed = await open_loop(session, requests, rate, tally)
        return {
            "rate_target": rate,
            "rate_achieved": round(len(requests) / elapsed, 1),
            "requests": len(requests),
            "statuses": tally.statuses,
            "errors": sum(n for status, n in tally.statuses.items() if not status.startswith("2")),
            "seconds": round(elapsed, 3),
            **latency_summary(tally.latencies),
            **self.cpu.usage(meter, elapsed),
        }

    async def apps_loop(self, session: aiohttp.ClientSession, spec: dict[str, Any]) -> dict[str, Any]:
        """CreateApp, GetApp(that app), GetApps, DeleteApp(that app), repeated, each built, signed and sent one by
        one like an SDK does.

        DeleteApp keeps the project count steady: Pinpoint allows 100 projects per region (Clarion enforces it),
        and a steady count keeps GetApps comparable with moto, which returns every project in one page. A few
        untimed iterations go first, because moto builds its backends on the first call to a service.
        """
        iterations, concurrency = spec["iterations"], spec["concurrency"]
        per_op: dict[str, list[float]] = {"CreateApp": [], "GetApp": [], "GetApps": [], "DeleteApp": []}
        names = iter(range(1 << 30))
        created = deleted = 0

        async def timed(operation: str, params: dict[str, Any], tally: Tally) -> tuple[int | str, bytes]:
            sent = clock()
            status, body = await send(session, self.client.call(operation, params))
            per_op[operation].append(clock() - sent)
            tally.status(status)
            return status, body

        async def iterate(count: int, tally: Tally) -> float:
            remaining = iter(range(count))

            async def worker() -> None:
                nonlocal created, deleted
                for _ in remaining:
                    name = f"loop-{self.tag}-{next(names)}"
                    status, body = await timed("CreateApp", {"CreateApplicationRequest": {"Name": name}}, tally)
                    if not ok(status):
                        continue
                    created += 1
                    app_id = msgspec.json.decode(body)["Id"]
                    await timed("GetApp", {"ApplicationId": app_id}, tally)
                    await timed("GetApps", {}, tally)
                    status, _ = await timed("DeleteApp", {"ApplicationId": app_id}, tally)
                    deleted += ok(status)

            started = clock()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return clock() - started

        await iterate(2 * concurrency, Tally())
        for values in per_op.values():
            values.clear()
        tally = Tally()
        meter = self.cpu.start()
        elapsed = await iterate(iterations, tally)
        return {
            "ops_per_s": round(sum(n for s, n in tally.statuses.items() if s.startswith("2")) / elapsed, 1),
            "operations": sum(tally.statuses.values()),
            "errors": sum(n for s, n in tally.statuses.items() if not s.startswith("2")),
            "apps_left": created - deleted,  # warm-up included: what the store must still hold
            "statuses": tally.statuses,
            "seconds": round(elapsed, 3),
            "concurrency": concurrency,
            "mean_ms": {op: round(1000 * sum(v) / len(v), 2) if v else None for op, v in per_op.items()},
            **self.cpu.usage(meter, elapsed),
        }


def main() -> None:
    plan = msgspec.json.decode(sys.stdin.buffer.read())
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(Bench(plan).run())
    sys.stdout.buffer.write(msgspec.json.encode(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
