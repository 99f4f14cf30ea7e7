"""Transactional SendMessages latency: one push message to one address per request, through the real HTTP API of a
`clarion serve` process, into a local FCM-style HTTP/2 stub.

    .venv/bin/python -m bench.sends [--seconds 10] [--rates 200,1000] [--concurrency 64] [--store postgres]

Open-loop phases at fixed request rates (latency timed from each request's scheduled moment, so a stall cannot hide
itself), then a closed loop for the maximum sustained rate. The baseline, measured in the same run at the same
rates, is the FCM transport alone sending to the same stub from this process: what a send costs without Clarion's
API, auth, store and message log around it. The server runs on CPU 0; the stub and the load on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.campaigns import KEY_ID, LOOPBACK, SECRET, FcmStubProcess, client, peak_rss_mb, push_project, start_server
from bench.load import Client, Tally, closed_loop, latency_summary, ok, open_loop
from bench.push import cpu_seconds, pin, profile
from bench.run import fresh_store
from bench.smtp_send import free_port
from clarion.channels.delivery import Outbound, PushContent
from clarion.outbound.client import OutboundClient
from clarion.outbound.config import OutboundSettings

MESSAGE = {"GCMMessage": {"Title": "Your code", "Body": "Your one-time code is 123456", "Action": "OPEN_APP"}}


async def transport_phases(stub: FcmStubProcess, rates: list[int], seconds: float) -> dict[str, Any]:
    """The baseline: the FCM transport alone, open loop at the same rates."""
    outbound = OutboundClient(OutboundSettings(allow_networks=LOOPBACK))
    transport = stub.transport(outbound)
    content = PushContent(title="Your code", body="Your one-time code is 123456")
    await transport.send(Outbound("GCM", "token-warm", "warm", "app", content))
    results = {}
    for rate in rates:
        latencies: list[float] = []
        start = time.perf_counter() + 0.05
        tasks = []

        async def fire(number: int, scheduled: float, latencies: list[float] = latencies) -> None:
            await transport.send(Outbound("GCM", f"token-{number}", f"m{number}", "app", content))
            latencies.append(time.perf_counter() - scheduled)

        for number in range(int(rate * seconds)):
            scheduled = start + number / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(number, scheduled)))
        await asyncio.gather(*tasks)
        results[str(rate)] = latency_summary(latencies)
    await outbound.close()
    return results


# Where a SendMessages request's server time goes: each py-spy sample is charged to the first of these that names a
# frame, walking from the innermost frame out (docs/benchmarks.md, "The per-request CPU cut").
CATEGORIES = (
    ("writer thread waiting for work", r"GroupCommitWriter._run \(clarion/store/database.py:\d+\)$"),
    ("FCM transport (libcurl, HTTP/2, TLS, body)", r"CurlLoop|FcmTransport|OutboundClient|PushProvider|_send_many"),
    (
        "message log and send event (writer thread)",
        r"_commit_batch|GroupCommitWriter._attempt|Delivery.send.<locals>.record",
    ),
    ("hand-off to the writer and back", r"GroupCommitWriter.submit|Subscriptions"),
    ("SigV4 and access key", r"Authenticator.authenticate"),
    ("routing", r"Router.match"),
    ("body decode and validation", r"PinpointAPI._payload|Call.body|check_configuration"),
    ("reads (project, opted-out holders)", r"SqliteDatabase.read|PostgresDatabase.read|send_messages.<locals>.plan"),
    ("rendering", r"MessageBuilder|Delivery._prepare"),
    ("metrics, access log", r"PinpointAPI._observe"),
    ("HTTP server (uvicorn, httptools)", r"uvicorn/protocols|httptools"),
    ("send path glue", r"Delivery\.|send_messages|sends.py"),
    ("API glue", r"PinpointAPI|_Server|starlette"),
)


def categories(raw: Path) -> dict[str, float]:
    """Shares of py-spy's raw (collapsed) samples by category, the writer's idle waits left out."""
    import re

    patterns = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
    counts: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")[1:]
        found = next(
            (name for frame in reversed(frames) for name, pattern in patterns if pattern.search(frame)),
            "event loop and asyncio",
        )
        counts[found] = counts.get(found, 0) + int(number)
    counts.pop(CATEGORIES[0][0], None)
    total = sum(counts.values()) or 1
    return {name: round(100 * n / total, 1) for name, n in sorted(counts.items(), key=lambda item: -item[1])}


class CpuMeter:
    """CPU seconds of the server (CPU 0) and of the load generator plus the stub (CPU 1) over one phase."""

    def __init__(self, server_pid: int, stub_pid: int) -> None:
        self.server_pid, self.stub_pid = server_pid, stub_pid

    def read(self) -> tuple[float, float, float]:
        mine = os.times()
        return cpu_seconds(self.server_pid), mine.user + mine.system + cpu_seconds(self.stub_pid), time.perf_counter()

    def since(self, start: tuple[float, float, float], requests: int) -> dict[str, Any]:
        server, client, now = self.read()
        elapsed = now - start[2]
        return {
            "server_cpu_us_per_request": round(1e6 * (server - start[0]) / max(requests, 1)),
            "server_cpu_share": round((server - start[0]) / elapsed, 2),
            "load_and_stub_cpu_share": round((client - start[1]) / elapsed, 2),
        }


async def api_phases(
    port: int, meter: CpuMeter, app_id: str, rates: list[int], seconds: float, concurrency: int, profile_to: str
) -> dict[str, Any]:
    api = Client(f"http://127.0.0.1:{port}", KEY_ID, SECRET, "us-east-1")

    def request(number: int) -> Any:
        body = {"Addresses": {f"token-{number}": {"ChannelType": "GCM"}}, "MessageConfiguration": MESSAGE}
        return api.call("SendMessages", {"ApplicationId": app_id, "MessageRequest": body})

    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for rate in rates:
            requests = [request(n) for n in range(int(rate * seconds))]
            tally = Tally()
            start = meter.read()
            await open_loop(session, requests, rate, tally)
            results[str(rate)] = {
                **latency_summary(tally.latencies),
                "statuses": tally.statuses,
                **meter.since(start, len(requests)),
            }
    # Signed before the session opens: connections left idle while thousands of requests are signed would pass
    # the server's keep-alive timeout and fail their first reuse.
    requests = [request(n) for n in range(int(5000 * seconds))]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tally = Tally()
        profiler = profile(meter.server_pid, Path(profile_to)) if profile_to else None
        start = meter.read()
        elapsed = await closed_loop(session, requests, concurrency, seconds, lambda status, _: int(ok(status)), tally)
        used = meter.since(start, len(tally.latencies))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait()
        results["max"] = {
            "requests_per_s": round(tally.accepted / elapsed),
            **latency_summary(tally.latencies),
            "statuses": tally.statuses,
            **used,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", default="", help="py-spy's collapsed stacks of the server in the closed loop")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server on which the run may create and drop a database of its own",
    )
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    pin(1)
    with tempfile.TemporaryDirectory() as folder:
        store = fresh_store(args.store, args.postgres_url, Path(folder))
        stub = FcmStubProcess.start(Path(folder))
        try:
            baseline = asyncio.run(transport_phases(stub, rates, args.seconds))
            port = free_port()
            # The access key's rate limit (1,000 requests/s by default) stays on, far above what is offered, so that
            # its cost is measured and its refusals do not count as the server's limit.
            env = {"CLARION_RATE_LIMIT__REQUESTS_PER_SECOND": "1000000", "CLARION_RATE_LIMIT__BURST": "1000000"}
            if store.database_url:
                env["CLARION_DATABASE_URL"] = store.database_url
            server = start_server(store.data_dir, port, {**stub.server_env(), **env})
            try:
                pinpoint = client(port)
                app_id = push_project(pinpoint, "sends", stub)
                pinpoint.send_messages(  # connect to the provider and fetch its token before timing
                    ApplicationId=app_id,
                    MessageRequest={
                        "Addresses": {"token-warm": {"ChannelType": "GCM"}},
                        "MessageConfiguration": MESSAGE,
                    },
                )
                api = asyncio.run(
                    api_phases(
                        port,
                        CpuMeter(server.pid, stub.process.pid),
                        app_id,
                        rates,
                        args.seconds,
                        args.concurrency,
                        args.profile,
                    )
                )
                rss = peak_rss_mb(server.pid)
            finally:
                server.kill()
                server.wait()
        finally:
            stub.stop()
            store.drop()
    report = {"baseline_transport": baseline, "send_messages": api, "server_peak_rss_mb": round(rss)}
    if args.profile:
        report["profile_shares_pct"] = categories(Path(args.profile))
    print(json.dumps(report, indent=1))
    print()
    print(
        "| load | SendMessages p50 / p99 | server CPU per request | CPU 0 (server) / CPU 1 (load + stub) busy "
        "| FCM transport alone p50 / p99 |"
    )
    print("|---|---:|---:|---:|---:|")
    for rate in rates:
        sent, alone = api[str(rate)], baseline[str(rate)]
        print(
            f"| {rate:,} req/s | {sent['p50_ms']} / {sent['p99_ms']} ms | {sent['server_cpu_us_per_request']} µs "
            f"| {sent['server_cpu_share']:.0%} / {sent['load_and_stub_cpu_share']:.0%} "
            f"| {alone['p50_ms']} / {alone['p99_ms']} ms |"
        )
    top = api["max"]
    print(
        f"| closed loop, {args.concurrency} in flight: **{top['requests_per_s']:,} req/s** "
        f"| {top['p50_ms']} / {top['p99_ms']} ms | {top['server_cpu_us_per_request']} µs "
        f"| {top['server_cpu_share']:.0%} / {top['load_and_stub_cpu_share']:.0%} | — |"
    )


if __name__ == "__main__":
    main()
