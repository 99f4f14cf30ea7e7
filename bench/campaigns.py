"""Campaign delivery end to end through a real `clarion serve`: a push campaign into a local FCM-style HTTP/2 stub,
an email campaign into a local SMTP sink, and the PutEvents-to-inbox latency of an event-triggered campaign.

    .venv/bin/python -m bench.campaigns [--push 100000] [--email 20000] [--events 300] [--delivery-workers 4]

Each figure has its baseline measured in the same run, against the same local service:
- push: the FCM transport alone (the guarded client, no campaign, no store) sending the same number of messages;
- email: a bare aiosmtplib loop on one connection to the same sink (bench/smtp_send.py's loop);
- events: none (the goal is absolute: p99 ≤ 1 s from PutEvents answered to the message arriving).
The server runs on CPU 0, the stubs and this driver on CPU 1 (2-core machine). Server peak RSS is VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import trustme
from aiosmtpd.controller import Controller
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from push_stubs import FcmStub, H2Stub, OAuthStub, StubRequest, StubResponse, oauth_server, server_context  # noqa: E402

from bench.push import PROJECT, drive, pin, service_json  # noqa: E402
from bench.smtp_send import bare_loop, free_port, start_sink  # noqa: E402
from clarion.channels.config import DeliverySettings  # noqa: E402
from clarion.channels.delivery import Outbound, PushContent  # noqa: E402
from clarion.channels.push import fcm  # noqa: E402
from clarion.outbound.client import OutboundClient  # noqa: E402
from clarion.outbound.config import OutboundSettings  # noqa: E402

KEY_ID, SECRET = "AKIDCLARIONBENCH0001", "bench-secret"
LOOPBACK = ["127.0.0.0/8", "::1/128"]  # where the local providers listen, which the outbound client must be allowed


class CountingFcm(FcmStub):
    """FCM's stub without keeping every request: a shared counter and the time of the last accepted message."""

    def __init__(self, counter: Any, last: Any) -> None:
        super().__init__(PROJECT)
        self.counter, self.last = counter, last

    async def __call__(self, request: StubRequest) -> StubResponse:
        response = await super().__call__(request)
        self.delivered.clear()
        if response.status == 200:
            self.counter.value += 1
            self.last.value = time.time()
        return response


def serve_fcm(ca_pem: bytes, key_pem: bytes, public_pem: bytes, counter: Any, last: Any, ports: Any) -> None:
    pin(1)
    ca = trustme.CA.from_pem(ca_pem, key_pem)
    public_key = serialization.load_pem_public_key(public_pem)

    async def main() -> None:
        stub = CountingFcm(counter, last)
        server = H2Stub(stub, server_context(ca.issue_cert("localhost")))
        url = await server.start()
        async with oauth_server(OAuthStub(public_key, stub)) as token_uri:
            ports.send((url, token_uri))
            await asyncio.Event().wait()

    asyncio.run(main())


class Arrivals:
    """An in-process SMTP server (aiosmtpd, its own thread) noting when each recipient's message arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            self.at.setdefault(recipient, time.time())
        return "250 OK"


def start_server(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        **env,
        "CLARION_ACCESS_KEY_ID": KEY_ID,
        "CLARION_SECRET_ACCESS_KEY": SECRET,
        "CLARION_ACCESS_LOG": "false",
        "CLARION_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "clarion", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(["taskset", "-c", "0", *command], env=full_env, stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("clarion serve did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(port: int) -> Any:
    return boto3.client(
        "pinpoint",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 3}, max_pool_connections=8),
    )


def load_endpoints(pinpoint: Any, app_id: str, count: int, item: Any) -> None:
    def put(start: int) -> None:
        items = [item(n) for n in range(start, min(start + 100, count))]
        pinpoint.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(0, count, 100)))


def run_campaign(pinpoint: Any, app_id: str, message: dict[str, Any]) -> str:
    segment = pinpoint.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"]
    body = {"Name": "bench", "SegmentId": segment["Id"], "Schedule": {"StartTime": "IMMEDIATE"}}
    created = pinpoint.create_campaign(ApplicationId=app_id, WriteCampaignRequest={**body, **message})
    return created["CampaignResponse"]["Id"]


def wait_completed(pinpoint: Any, app_id: str, campaign_id: str) -> dict[str, Any]:
    while True:
        state = pinpoint.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)["CampaignResponse"]["State"]
        if state["CampaignStatus"] == "COMPLETED":
            activities = pinpoint.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)
            return activities["ActivitiesResponse"]["Item"][0]
        time.sleep(0.2)


@dataclass
class FcmStubProcess:
    """The FCM stub and its OAuth endpoint in a child process on CPU 1, with the service account they accept."""

    process: Any
    url: str
    token_uri: str
    ca_file: str
    service_json: str
    delivered: Any  # shared counter of accepted messages
    last: Any  # shared time of the last accepted message

    @classmethod
    def start(cls, work: Path) -> FcmStubProcess:
        ca = trustme.CA()
        ca_file = work / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = google_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        counter, last = multiprocessing.Value("q", 0, lock=False), multiprocessing.Value("d", 0.0, lock=False)
        receive, send = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(
            target=serve_fcm,
            args=(ca.cert_pem.bytes(), ca.private_key_pem.bytes(), public_pem, counter, last, send),
            daemon=True,
        )
        process.start()
        url, token_uri = receive.recv()
        return cls(process, url, token_uri, str(ca_file), service_json(google_key), counter, last)

    def server_env(self) -> dict[str, str]:
        return {
            "CLARION_DELIVERY__PUSH__FCM_URL": self.url,
            "CLARION_DELIVERY__PUSH__FCM_TOKEN_URI": self.token_uri,
            "CLARION_DELIVERY__PUSH__CA_FILE": self.ca_file,
            "CLARION_OUTBOUND__ALLOW_NETWORKS": json.dumps(LOOPBACK),  # the stub is a local server
        }

    def transport(self, outbound: OutboundClient) -> Any:
        settings = DeliverySettings.model_validate(
            {"push": {"fcm_url": self.url, "fcm_token_uri": self.token_uri, "ca_file": self.ca_file}}
        )
        return fcm.open_transport(settings, {"Platform": "GCM", "ServiceJson": self.service_json}, outbound)

    def stop(self) -> None:
        self.process.kill()
        self.process.join()


def smtp_env(port: int) -> dict[str, str]:
    return {
        "CLARION_DELIVERY__SMTP__HOST": "127.0.0.1",
        "CLARION_DELIVERY__SMTP__PORT": str(port),
        "CLARION_DELIVERY__SMTP__SECURITY": "none",
    }


def push_project(pinpoint: Any, name: str, stub: FcmStubProcess) -> str:
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    pinpoint.update_gcm_channel(
        ApplicationId=app_id,
        GCMChannelRequest={"ServiceJson": stub.service_json, "DefaultAuthenticationMethod": "TOKEN"},
    )
    return app_id


def email_project(pinpoint: Any, name: str) -> str:
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    pinpoint.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    return app_id


def push_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    stub = FcmStubProcess.start(work)
    counter, last = stub.delivered, stub.last

    async def transport_alone() -> float:
        outbound = OutboundClient(OutboundSettings(allow_networks=LOOPBACK))
        transport = stub.transport(outbound)
        content = PushContent(title="Hello", body="World")

        async def one(number: int) -> None:
            await transport.send(Outbound("GCM", f"token-{number}", f"m{number}", "app", content))

        await drive(one, 500, 200)
        rate, _ = await drive(one, min(args.push, 50_000), 400)
        await outbound.close()
        return rate

    try:
        baseline = asyncio.run(transport_alone())
        port = free_port()
        env = {**stub.server_env(), "CLARION_CAMPAIGNS__DELIVERY_WORKERS": str(args.delivery_workers)}
        server = start_server(work / "push", port, env)
        try:
            pinpoint = client(port)
            app_id = push_project(pinpoint, "push", stub)
            loading = time.perf_counter()
            load_endpoints(
                pinpoint, app_id, args.push, lambda n: {"Id": f"d{n}", "ChannelType": "GCM", "Address": f"token-{n}"}
            )
            load_seconds = time.perf_counter() - loading
            before = counter.value
            started = time.time()
            message = {
                "MessageConfiguration": {"GCMMessage": {"Title": "Hello", "Body": "World", "Action": "OPEN_APP"}}
            }
            campaign_id = run_campaign(pinpoint, app_id, message)
            activity = wait_completed(pinpoint, app_id, campaign_id)
            delivered = counter.value - before
            rate = delivered / (last.value - started)
            rss = peak_rss_mb(server.pid)
        finally:
            server.kill()
            server.wait()
    finally:
        stub.stop()
    return {
        "endpoints": args.push,
        "load_seconds": round(load_seconds, 1),
        "delivered": delivered,
        "successful": activity["SuccessfulEndpointCount"],
        "campaign_rate": round(rate),
        "transport_rate": round(baseline),
        "server_peak_rss_mb": round(rss),
    }


def email_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        baseline = asyncio.run(bare_loop(sink_port, min(args.email, 20_000)))
        port = free_port()
        env = {**smtp_env(sink_port), "CLARION_CAMPAIGNS__DELIVERY_WORKERS": str(args.delivery_workers)}
        server = start_server(work / "email", port, env)
        try:
            pinpoint = client(port)
            app_id = email_project(pinpoint, "email")
            load_endpoints(
                pinpoint,
                app_id,
                args.email,
                lambda n: {"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"u{n}@example.org"},
            )
            started = time.perf_counter()
            message = {"MessageConfiguration": {"EmailMessage": {"Title": "Your weekly digest", "Body": "Hi,\n" * 40}}}
            campaign_id = run_campaign(pinpoint, app_id, message)
            activity = wait_completed(pinpoint, app_id, campaign_id)
            elapsed = time.perf_counter() - started
        finally:
            server.kill()
            server.wait()
    finally:
        sink.kill()
        sink.wait()
    return {
        "recipients": args.email,
        "successful": activity["SuccessfulEndpointCount"],
        "campaign_rate": round(activity["SuccessfulEndpointCount"] / elapsed),
        "bare_aiosmtplib_rate": round(baseline),
    }


def event_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    arrivals = Arrivals()
    sink_port = free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=sink_port)
    controller.start()
    port = free_port()
    server = start_server(work / "events", port, smtp_env(sink_port))
    try:
        pinpoint = client(port)
        app_id = email_project(pinpoint, "events")
        load_endpoints(
            pinpoint,
            app_id,
            args.events,
            lambda n: {"Id": f"v{n}", "ChannelType": "EMAIL", "Address": f"v{n}@example.org"},
        )
        segment = pinpoint.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"]
        event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["purchase"]}}}
        pinpoint.create_campaign(
            ApplicationId=app_id,
            WriteCampaignRequest={
                "Name": "thanks",
                "SegmentId": segment["Id"],
                "Schedule": {
                    "StartTime": datetime.now(UTC).isoformat(),
                    "Frequency": "EVENT",
                    "EventFilter": event_filter,
                },
                "MessageConfiguration": {"EmailMessage": {"Title": "Thanks", "Body": "Thank you for your order"}},
            },
        )
        answered: dict[str, float] = {}
        for n in range(args.events):
            event = {"EventType": "purchase", "Timestamp": datetime.now(UTC).isoformat()}
            batch = {f"v{n}": {"Endpoint": {}, "Events": {f"p{n}": event}}}
            pinpoint.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": batch})
            answered[f"v{n}@example.org"] = time.time()
            time.sleep(1 / args.event_rate)
        deadline = time.time() + 30
        while len(arrivals.at) < args.events and time.time() < deadline:
            time.sleep(0.1)
    finally:
        server.kill()
        server.wait()
        controller.stop()
    latencies = sorted(arrivals.at[r] - answered[r] for r in answered if r in arrivals.at)
    return {
        "events": args.events,
        "delivered": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000),
        "max_ms": round(latencies[-1] * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--push", type=int, default=100_000, help="endpoints in the push campaign")
    parser.add_argument("--email", type=int, default=20_000, help="recipients of the email campaign")
    parser.add_argument("--events", type=int, default=300, help="events for the latency case")
    parser.add_argument("--event-rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--delivery-workers", type=int, default=4)
    args = parser.parse_args()
    pin(1)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        push = push_case(args, work)
        email = email_case(args, work)
        events = event_case(args, work)
    print(json.dumps({"push": push, "email": email, "events": events}, indent=1))
    print()
    print("| case | Clarion campaign | baseline (same run) | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    push_ratio = push["campaign_rate"] / push["transport_rate"]
    print(
        f"| push campaign, {push['endpoints']:,} endpoints to an FCM HTTP/2 stub | {push['campaign_rate']:,} msg/s "
        f"| FCM transport alone {push['transport_rate']:,} msg/s | {push_ratio:.2f} "
        f"| ≥ 20,000 msg/s; server peak RSS {push['server_peak_rss_mb']} MB (goal ≤ 500) |"
    )
    email_ratio = email["campaign_rate"] / email["bare_aiosmtplib_rate"]
    print(
        f"| email campaign, {email['recipients']:,} recipients, pooled SMTP to a sink | {email['campaign_rate']:,} "
        f"msg/s | bare aiosmtplib {email['bare_aiosmtplib_rate']:,} msg/s | {email_ratio:.2f} | ≥ 0.8 |"
    )
    print(
        f"| event-triggered email, {events['delivered']}/{events['events']} delivered | p50 {events['p50_ms']} ms, "
        f"p99 {events['p99_ms']} ms | — | — | p99 ≤ 1,000 ms |"
    )


if __name__ == "__main__":
    main()
