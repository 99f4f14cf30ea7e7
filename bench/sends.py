"""Transactional SendMessages latency: one push message to one address per request, through the real HTTP API of a
`clarion serve` process, into a local FCM-style HTTP/2 stub.

    .venv/bin/python -m bench.sends [--seconds 10] [--rates 200,1000] [--concurrency 64]

Open-loop phases at fixed request rates (latency timed from each request's scheduled moment, so a stall cannot hide
itself), then a closed loop for the maximum sustained rate. The baseline, measured in the same run at the same
rates, is the FCM transport alone sending to the same stub from this process: what a send costs without Clarion's
API, auth, store and message log around it. The server runs on CPU 0; the stub and the load on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.campaigns import KEY_ID, LOOPBACK, SECRET, FcmStubProcess, client, peak_rss_mb, push_project, start_server
from bench.load import Client, Tally, closed_loop, latency_summary, ok, open_loop
from bench.push import pin
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


async def api_phases(port: int, app_id: str, rates: list[int], seconds: float, concurrency: int) -> dict[str, Any]:
    api = Client(f"http://127.0.0.1:{port}", KEY_ID, SECRET, "us-east-1")

    def request(number: int) -> Any:
        body = {"Addresses": {f"token-{number}": {"ChannelType": "GCM"}}, "MessageConfiguration": MESSAGE}
        return api.call("SendMessages", {"ApplicationId": app_id, "MessageRequest": body})

    results: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for rate in rates:
            requests = [request(n) for n in range(int(rate * seconds))]
            tally = Tally()
            await open_loop(session, requests, rate, tally)
            results[str(rate)] = {**latency_summary(tally.latencies), "statuses": tally.statuses}
        requests = [request(n) for n in range(int(3000 * seconds))]
        tally = Tally()
        elapsed = await closed_loop(session, requests, concurrency, seconds, lambda status, _: int(ok(status)), tally)
        results["max"] = {"requests_per_s": round(tally.accepted / elapsed), **latency_summary(tally.latencies)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    pin(1)
    with tempfile.TemporaryDirectory() as folder:
        stub = FcmStubProcess.start(Path(folder))
        try:
            baseline = asyncio.run(transport_phases(stub, rates, args.seconds))
            port = free_port()
            server = start_server(Path(folder) / "data", port, stub.server_env())
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
                api = asyncio.run(api_phases(port, app_id, rates, args.seconds, args.concurrency))
                rss = peak_rss_mb(server.pid)
            finally:
                server.kill()
                server.wait()
        finally:
            stub.stop()
    print(
        json.dumps({"baseline_transport": baseline, "send_messages": api, "server_peak_rss_mb": round(rss)}, indent=1)
    )
    print()
    print("| load | SendMessages p50 / p99 | FCM transport alone p50 / p99 | p99 ratio | goal |")
    print("|---|---:|---:|---:|---|")
    for rate in rates:
        sent, alone = api[str(rate)], baseline[str(rate)]
        print(
            f"| {rate:,} req/s | {sent['p50_ms']} / {sent['p99_ms']} ms | {alone['p50_ms']} / {alone['p99_ms']} ms "
            f"| {sent['p99_ms'] / alone['p99_ms']:.1f} | p99 ≤ 25 ms |"
        )
    top = api["max"]
    print(
        f"| closed loop, {args.concurrency} in flight | {top['p50_ms']} / {top['p99_ms']} ms | — | — "
        f"| max sustained: {top['requests_per_s']:,} req/s |"
    )


if __name__ == "__main__":
    main()
