"""Push sending throughput: messages/s through the APNs and FCM transports to local HTTP/2 stubs, against the same
requests made directly on the guarded outbound client (libcurl's multi interface on the event loop; no payload
building, no auth, no result mapping), the FCM transport's work over aiohttp's HTTP/1.1 instead, and the bare APNs
request on other clients: pycurl driven by its own blocking loop (libcurl without the event loop: the floor) and
httpx (HTTP/2 through the pure-Python h2 library), when installed (`pip install 'httpx[http2]'`).

    .venv/bin/python bench/push.py [--messages 20000] [--concurrency 200] [--rounds 3]

The stubs (tests/push_stubs.py: TLS, ALPN h2, one connection) run in a child process pinned to the second CPU;
the sender is pinned to the first. Besides messages/s the table gives the sender's CPU time per message, which
is what the transports add and what stays meaningful when the stub is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from push_stubs import (  # noqa: E402
    ApnsStub,
    FcmStub,
    H2Stub,
    Handler,
    OAuthStub,
    StubRequest,
    oauth_server,
    server_context,
)

from clarion.channels.config import DeliverySettings  # noqa: E402
from clarion.channels.delivery import Outbound, PushContent, Transport  # noqa: E402
from clarion.channels.push import apns, fcm  # noqa: E402
from clarion.outbound.client import Answer, OutboundClient, Tls  # noqa: E402
from clarion.outbound.config import OutboundSettings  # noqa: E402
from clarion.outbound.curl import Headers  # noqa: E402

BUNDLE = "com.example.bench"
START = datetime.now(UTC)
PROJECT = "bench-project"


def pin(cpu: int) -> str:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "unpinned (one CPU)"
    os.sched_setaffinity(0, {cpus[cpu]})
    return f"CPU {cpus[cpu]}"


def service_json(google_key: Any) -> str:
    """A Google service account for the local OAuth stub (which checks assertions with the key's public half)."""
    private = google_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "project_id": PROJECT,
            "client_email": "bench@bench-project.iam.gserviceaccount.com",
            "private_key": private.decode(),
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def serve_stubs(ca_pem: bytes, key_pem: bytes, public_pem: bytes, ports: Any) -> None:
    """Child process: APNs stub, FCM stub (HTTP/2, and HTTP/1.1 for comparison) and OAuth endpoint until killed."""
    pin(1)
    ca = trustme.CA.from_pem(ca_pem, key_pem)
    public_key = serialization.load_pem_public_key(public_pem)

    async def main() -> None:
        fcm_stub = FcmStub(PROJECT)
        oauth = OAuthStub(public_key, fcm_stub)
        apns_server = H2Stub(ApnsStub(topic=BUNDLE), server_context(ca.issue_cert("localhost")))
        fcm_server = H2Stub(fcm_stub, server_context(ca.issue_cert("localhost")))
        apns_url, fcm_url = await apns_server.start(), await fcm_server.start()
        http1 = await serve_http1(fcm_stub, server_context(ca.issue_cert("localhost")))
        async with oauth_server(oauth) as token_uri:
            ports.send((apns_url, fcm_url, token_uri, http1))
            await asyncio.Event().wait()

    asyncio.run(main())


async def serve_http1(handler: Handler, context: ssl.SSLContext) -> str:
    """The same stub handler behind aiohttp's HTTP/1.1 server, to weigh FCM over HTTP/1.1 against HTTP/2."""
    context.set_alpn_protocols(["http/1.1"])

    async def answer(request: web.Request) -> web.Response:
        stub_request = StubRequest(
            1, 0, request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read()
        )
        response = await handler(stub_request)
        return web.Response(status=response.status, headers=response.headers, body=response.body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return f"https://localhost:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


async def drive(send: Callable[[int], Awaitable[Any]], messages: int, concurrency: int) -> tuple[float, float]:
    """messages/s and sender CPU µs per message for `messages` sends, `concurrency` in flight."""
    counter = iter(range(messages))

    async def worker() -> None:
        for number in counter:
            await send(number)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    return messages / elapsed, cpu_used / messages * 1e6


async def measure(
    urls: tuple[str, str, str], ca_file: str, google_key: Any, args: argparse.Namespace
) -> dict[str, list[tuple[float, float]]]:
    apns_url, fcm_url, token_uri, fcm_http1_url = urls
    settings = DeliverySettings.model_validate(
        {"push": {"apns_url": apns_url, "fcm_url": fcm_url, "fcm_token_uri": token_uri, "ca_file": ca_file}}
    )
    token_key = ec.generate_private_key(ec.SECP256R1())
    guarded = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8", "::1/128"]))  # the local stubs
    apns_transport = apns.open_transport(
        settings,
        {
            "Platform": "APNS",
            "TokenKey": token_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "TokenKeyId": "BENCHKEY01",
            "TeamId": "BENCHTEAM1",
            "BundleId": BUNDLE,
        },
        guarded,
    )
    fcm_transport = fcm.open_transport(settings, {"Platform": "GCM", "ServiceJson": service_json(google_key)}, guarded)
    tls = Tls(ca_file=ca_file)
    body = b'{"aps":{"alert":{"title":"Hello","body":"World"}}}'
    headers = [("apns-topic", BUNDLE), ("apns-push-type", "alert"), ("apns-priority", "10")]
    device = "ab" * 32
    content = PushContent(title="Hello", body="World", data={"k": "v"})

    def outbound(channel: str, number: int) -> Outbound:
        return Outbound(channel, device if channel == "APNS" else f"token-{number}", str(uuid.uuid4()), "app", content)

    async def bare_send(number: int) -> None:
        response = await guarded.request(
            "POST", f"{apns_url}/3/device/{device}", headers=headers, body=body, timeout=30, max_bytes=1 << 16, tls=tls
        )
        assert response.status == 200

    def via(transport: Transport, channel: str) -> Callable[[int], Awaitable[None]]:
        async def send(number: int) -> None:
            result = await transport.send(outbound(channel, number))
            assert result.status == "SUCCESSFUL", result

        return send

    http1 = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file), limit=args.concurrency)
    )

    async def fcm_over_http1(number: int) -> None:
        """FcmTransport.send's work, with aiohttp's HTTP/1.1 keep-alive pool in place of the HTTP/2 client."""
        message = outbound("GCM", number)
        body = json.dumps(fcm.fcm_message(message.address, content, message.context)).encode()
        token = await fcm_transport.tokens.token()  # type: ignore[attr-defined]
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json; charset=UTF-8"}
        async with http1.post(f"{fcm_http1_url}/v1/projects/{PROJECT}/messages:send", data=body, headers=headers) as r:
            answer = Answer(r.status, Headers({k.lower(): v for k, v in r.headers.items()}), await r.read())
        result = fcm.fcm_result(answer, START)
        assert result.status == "SUCCESSFUL", result

    cases = {
        "guarded client only (APNs request)": bare_send,
        "APNs transport": via(apns_transport, "APNS"),
        "FCM transport (HTTP/2)": via(fcm_transport, "GCM"),
        "FCM over aiohttp (HTTP/1.1)": fcm_over_http1,
    }
    closers: list[Callable[[], Awaitable[None]]] = [
        apns_transport.close,
        fcm_transport.close,
        http1.close,
        guarded.close,
    ]
    try:
        import httpx
    except ImportError:
        print("httpx not installed: its row is left out")
    else:
        client = httpx.AsyncClient(http2=True, verify=ssl.create_default_context(cafile=ca_file))
        closers.append(client.aclose)

        async def httpx_send(number: int) -> None:
            response = await client.post(f"{apns_url}/3/device/{device}", headers=dict(headers), content=body)
            assert response.status_code == 200 and response.http_version == "HTTP/2"

        cases["httpx (HTTP/2), APNs request"] = httpx_send
    curl = CurlDriver.open(f"{apns_url}/3/device/{device}", headers, body, ca_file, args.concurrency)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    results["pycurl, own blocking loop, APNs request"] = []
    for send in cases.values():
        await drive(send, min(500, args.messages), args.concurrency)  # connect, sign, fetch the token, warm up
    curl.run(min(500, args.messages))
    for _ in range(args.rounds):
        for name, send in cases.items():
            results[name].append(await drive(send, args.messages, args.concurrency))
        results["pycurl, own blocking loop, APNs request"].append(curl.run(args.messages))
    for close in closers:
        await close()
    return results


class CurlDriver:
    """libcurl's multi interface with `concurrency` easy handles multiplexed as streams on one HTTP/2 connection,
    each re-added as soon as its response is in; run on its own (blocking) loop, as a sender thread would."""

    def __init__(self, pycurl: Any, url: str, headers: list[str], body: bytes, ca_file: str, concurrency: int):
        self.pycurl = pycurl
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
        self.handles = []
        for _ in range(concurrency):
            handle = pycurl.Curl()
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
            handle.setopt(pycurl.PIPEWAIT, 1)  # wait for the one connection rather than open another
            handle.setopt(pycurl.CAINFO, ca_file)
            handle.setopt(pycurl.HTTPHEADER, headers)
            handle.setopt(pycurl.POSTFIELDS, body)
            handle.setopt(pycurl.WRITEFUNCTION, lambda data: None)
            self.handles.append(handle)

    @classmethod
    def open(cls, url: str, headers: list[tuple[str, str]], body: bytes, ca_file: str, concurrency: int) -> CurlDriver:
        import pycurl

        lines = [f"{name}: {value}" for name, value in headers] + ["content-type: application/json"]
        return cls(pycurl, url, lines, body, ca_file, concurrency)

    def run(self, messages: int) -> tuple[float, float]:
        """messages/s and CPU µs per message, like `drive`."""
        pycurl = self.pycurl
        started, cpu = time.perf_counter(), time.process_time()
        queued = done = 0
        for handle in self.handles[:messages]:
            self.multi.add_handle(handle)
            queued += 1
        while done < messages:
            self.multi.select(1.0)
            while self.multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            _, finished, failed = self.multi.info_read()
            if failed:
                raise RuntimeError(f"pycurl: {failed[0][2]}")
            for handle in finished:
                assert handle.getinfo(pycurl.RESPONSE_CODE) == 200
                assert handle.getinfo(pycurl.INFO_HTTP_VERSION) == pycurl.CURL_HTTP_VERSION_2
                self.multi.remove_handle(handle)
                done += 1
                if queued < messages:
                    self.multi.add_handle(handle)
                    queued += 1
        elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
        return messages / elapsed, cpu_used / messages * 1e6


NGINX_CONF = """
worker_processes 1;
worker_cpu_affinity {affinity};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    keepalive_requests 100000000;
    http2_max_concurrent_streams 1000;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {work}/cert.pem;
        ssl_certificate_key {work}/key.pem;
        default_type application/json;
        location = /token {{
            return 200 '{{"access_token":"ya29.bench","expires_in":3600,"token_type":"Bearer"}}';
        }}
        location /v1/ {{
            client_body_buffer_size 16k;
            return 200 '{{"name":"projects/{project}/messages/$request_id"}}';
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """Debian's nginx as an FCM v1 and OAuth stand-in: TLS, HTTP/2, one worker on CPU 1, an answer per path and
    no checks at all (the transports' wire format is checked by the tests' stubs; this one must only be fast). Each
    answer names a message id of its own (nginx's random `$request_id`), as FCM does, so the message log's index
    of provider ids takes the random inserts it takes in real use."""

    process: subprocess.Popen[bytes]
    url: str
    ca_file: str

    @classmethod
    def start(cls, work: Path, ca: trustme.CA) -> Nginx:
        from bench.smtp_send import free_port

        port = free_port()
        certificate = ca.issue_cert("localhost")
        certificate.cert_chain_pems[0].write_to_path(str(work / "cert.pem"))
        certificate.private_key_pem.write_to_path(str(work / "key.pem"))
        ca.cert_pem.write_to_path(str(work / "ca.pem"))
        affinity = "10" if len(os.sched_getaffinity(0)) > 1 else "1"
        config = NGINX_CONF.format(work=work, port=port, affinity=affinity, project=PROJECT)
        (work / "nginx.conf").write_text(config)
        process = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)], stderr=subprocess.PIPE)
        url = f"https://localhost:{port}"
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return cls(process, url, str(work / "ca.pem"))
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"nginx did not start: {process.communicate()[1].decode()}")

    def worker_cpu_seconds(self) -> float:
        """CPU time of nginx's worker (the master does nothing per request)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return sum(cpu_seconds(int(child)) for child in children)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def h2load(url: str, requests: int, streams: int, body: Path) -> float:
    """h2load's raw rate for FCM-sized POSTs on one connection from CPU 0: the ceiling this machine's nginx allows."""
    command = ["taskset", "-c", "0", "h2load", "-n", str(requests), "-c", "1", "-m", str(streams), "-d", str(body)]
    output = subprocess.run(
        [*command, "-H", "content-type: application/json", f"{url}/v1/projects/{PROJECT}/messages:send"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in output.splitlines():
        if line.startswith("finished in"):
            return float(line.split(",")[1].split()[0])  # "finished in 1.2s, 81234.56 req/s, 5.3MB/s"
    raise RuntimeError(f"h2load printed no rate:\n{output}")


class RssCurve:
    """The server's resident memory every `every` seconds from its start, read from /proc by a thread: where the
    peak falls (loading, the segment, the sends) matters as much as its height."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid = pid
        self.every = every
        self.points: list[tuple[float, int]] = []  # (seconds since start, MB)
        self.marks: dict[str, float] = {}  # phase name -> seconds since start
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def mark(self, phase: str) -> None:
        self.marks[phase] = round(time.monotonic() - self._started, 1)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            rss_kb = int(status.split("VmRSS:")[1].split()[0])
            self.points.append((round(time.monotonic() - self._started, 1), rss_kb // 1024))
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.points


def profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling every thread of the server (GIL holders or not) until it is sent SIGINT; collapsed stacks."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))  # installed beside Python
    command = [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(out)]
    return subprocess.Popen([*command, "--nonblocking", "--threads"], stdout=subprocess.DEVNULL)


def wait_until(pinpoint: Any, app_id: str, campaign_id: str, seconds: float) -> tuple[dict[str, Any], bool]:
    """The campaign's activity once it completed, or as far as it got after `seconds` (0: no limit), and which."""
    deadline = time.monotonic() + seconds if seconds else None
    while True:
        state = pinpoint.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)["CampaignResponse"]["State"]
        completed = state["CampaignStatus"] == "COMPLETED"
        if completed or (deadline is not None and time.monotonic() > deadline):
            activities = pinpoint.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)
            return activities["ActivitiesResponse"]["Item"][0], completed
        time.sleep(0.2)


@contextmanager
def stored(store: Any) -> Iterator[Any]:
    """bench/run.py's fresh store, dropped at the end."""
    try:
        yield store
    finally:
        store.drop()


@contextmanager
def nginx_world() -> Iterator[tuple[Path, Nginx, Any]]:
    """A work folder, nginx serving FCM and OAuth from it (TLS from a CA of its own), a service account's key."""
    google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        nginx = Nginx.start(work, trustme.CA())
        try:
            yield work, nginx, google_key
        finally:
            nginx.stop()


def campaign_case(args: argparse.Namespace) -> dict[str, Any]:
    """N GCM endpoints, a segment of all, an IMMEDIATE campaign: through `clarion serve` (CPU 0; the embedded store
    or a database of its own on the local PostgreSQL) into nginx (CPU 1), against h2load's raw rate to the same nginx
    in the same run."""
    from bench.campaigns import client, load_endpoints, peak_rss_mb, run_campaign, start_server
    from bench.run import fresh_store
    from bench.smtp_send import free_port

    with nginx_world() as (work, nginx, google_key), stored(fresh_store(args.store, args.postgres_url, work)) as store:
        payload = work / "body.json"
        message = fcm.fcm_message("token-0", PushContent(title="Hello", body="World"), {})
        payload.write_bytes(json.dumps(message).encode())
        raw = [h2load(nginx.url, args.h2load_requests, 100, payload) for _ in range(2)]
        env = {
            "CLARION_DELIVERY__PUSH__FCM_URL": nginx.url,
            "CLARION_DELIVERY__PUSH__FCM_TOKEN_URI": f"{nginx.url}/token",
            "CLARION_DELIVERY__PUSH__CA_FILE": nginx.ca_file,
            "CLARION_OUTBOUND__ALLOW_NETWORKS": '["127.0.0.0/8", "::1/128"]',
            **({"CLARION_CAMPAIGNS__DELIVERY_WORKERS": str(args.delivery_workers)} if args.delivery_workers else {}),
            **({"CLARION_CAMPAIGNS__BATCH_SIZE": str(args.batch_size)} if args.batch_size else {}),
            **({"CLARION_DATABASE_URL": store.database_url} if store.database_url else {}),
        }
        port = free_port()
        server = start_server(store.data_dir, port, env)
        curve = RssCurve(server.pid)
        try:
            pinpoint = client(port)
            app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "push"})["ApplicationResponse"]["Id"]
            channel = {"ServiceJson": service_json(google_key), "DefaultAuthenticationMethod": "TOKEN"}
            pinpoint.update_gcm_channel(ApplicationId=app_id, GCMChannelRequest=channel)
            loading = time.perf_counter()
            load_endpoints(
                pinpoint,
                app_id,
                args.campaign,
                lambda n: {"Id": f"d{n}", "ChannelType": "GCM", "Address": f"token-{n}"},
            )
            load_seconds = time.perf_counter() - loading
            curve.mark("loaded")
            profiler = profile(server.pid, Path(args.profile)) if args.profile else None
            server_cpu, nginx_cpu = cpu_seconds(server.pid), nginx.worker_cpu_seconds()
            backends = store.backend_cpu_seconds() if store.database_url else {}
            started = time.time()
            gcm = {"GCMMessage": {"Title": "Hello", "Body": "World", "Action": "OPEN_APP"}}
            campaign_id = run_campaign(pinpoint, app_id, {"MessageConfiguration": gcm})
            activity, completed = wait_until(pinpoint, app_id, campaign_id, args.max_seconds)
            seconds = time.time() - started
            server_cpu = cpu_seconds(server.pid) - server_cpu
            nginx_cpu = nginx.worker_cpu_seconds() - nginx_cpu
            postgres_cpu = sum(
                used - backends.get(pid, 0.0)
                for pid, used in (store.backend_cpu_seconds() if store.database_url else {}).items()
            )
            curve.mark("completed")
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait()
            rss = peak_rss_mb(server.pid)
            shares = loop_shares(Path(args.profile)) if profiler is not None else {}
        finally:
            points = curve.stop()
            server.kill()
            server.wait()
        sends = store.scalars(
            {
                "events_per_message": ("SELECT count(*) FROM events WHERE app_id = ?", (app_id,)),
                "campaign_send_doc_bytes": (
                    "SELECT avg(length(doc)) FROM events WHERE app_id = ? AND event_type = '_campaign.send'",
                    (app_id,),
                ),
            }
        )
    delivered = int(activity.get("SuccessfulEndpointCount", 0))
    return {
        "store": args.store,
        "endpoints": args.campaign,
        "batch_size": args.batch_size or 100,
        "delivered": delivered,
        "completed": completed,
        "load_seconds": round(load_seconds, 1),
        "campaign_seconds": round(seconds, 2),
        "campaign_rate": round(delivered / seconds),
        "h2load_rates": [round(rate) for rate in raw],
        "server_cpu_us_per_message": round(server_cpu / delivered * 1e6, 1),
        "messages_per_server_core_second": round(delivered / server_cpu),
        "nginx_cpu_us_per_message": round(nginx_cpu / delivered * 1e6, 1),
        "postgres_backend_cpu_us_per_message": round(postgres_cpu / delivered * 1e6, 1),
        "events_per_message": round(int(sends["events_per_message"]) / delivered, 2),
        "campaign_send_doc_bytes": round(float(sends["campaign_send_doc_bytes"] or 0), 1),
        "server_peak_rss_mb": round(rss),
        "server_rss_phases": curve.marks,
        "server_rss_curve_mb": points,
        **shares,
        "load_average": os.getloadavg(),
    }


# A frame starting or ending a replica round: its write lock, BEGIN, COMMIT or ROLLBACK (clarion/analytics/replica.py).
ROUND_EDGE = re.compile(r"^(Replica\.)?(round|open_round|close_round) \(clarion/analytics/replica\.py")


def loop_shares(raw: Path) -> dict[str, float]:
    """Of py-spy's samples of the server's busy threads (`thread (id): name;frame;...;frame count`): the event loop's
    share (the main thread's) and the share the loop spent starting or ending replica rounds, which blocks it."""
    total = loop = edges = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames, count = stack.split(";"), int(number)
        total += count
        if not frames[0].endswith(": MainThread"):
            continue
        loop += count
        edges += count if any(ROUND_EDGE.match(frame) for frame in frames) else 0
    total = total or 1
    return {
        "event_loop_pct": round(100 * loop / total, 1),
        "loop_in_replica_round_edges_pct": round(100 * edges / total, 2),
    }


def print_campaign(result: dict[str, Any]) -> None:
    ceiling = statistics.median(result["h2load_rates"])
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in result['load_average'])}\n")
    print("| figure | value | goal |")
    print("|---|---:|---|")
    rows = [
        (
            f"campaign of {result['endpoints']:,} push endpoints, end to end",
            f"{result['campaign_rate']:,} msg/s",
            "≥ 20,000 msg/s",
        ),
        ("endpoints per delivery batch (campaigns.batch_size)", f"{result.get('batch_size', 100)}", ""),
        ("h2load's raw rate to the same nginx (two runs)", " / ".join(f"{r:,}" for r in result["h2load_rates"]), ""),
        ("ratio of the campaign to h2load", f"{result['campaign_rate'] / ceiling:.3f}", ""),
        ("server CPU per message (all of `clarion serve`)", f"{result['server_cpu_us_per_message']} µs", ""),
        (
            "messages per second per core of server CPU",
            f"{result['messages_per_server_core_second']:,}",
            "≥ 20,000 on 2 cores",
        ),
        ("nginx CPU per message", f"{result['nginx_cpu_us_per_message']} µs", ""),
        ("PostgreSQL backends' CPU per message", f"{result.get('postgres_backend_cpu_us_per_message', 0)} µs", ""),
        ("a `_campaign.send` event's document (mean)", f"{result.get('campaign_send_doc_bytes', 0)} bytes", ""),
        ("server peak RSS", f"{result['server_peak_rss_mb']} MB", "≤ 500 MB"),
        (
            "profile: event loop's samples / of them starting or ending replica rounds (% of all)",
            f"{result.get('event_loop_pct', '-')} / {result.get('loop_in_replica_round_edges_pct', '-')} %",
            "",
        ),
        ("server RSS while loading / during the campaign (max)", _phase_peaks(result), ""),
        (
            "delivered" if result["completed"] else "delivered when stopped at --max-seconds",
            f"{result['delivered']:,} of {result['endpoints']:,}",
            "all, each once",
        ),
    ]
    for name, value, goal in rows:
        print(f"| {name} | {value} | {goal} |")


def _phase_peaks(result: dict[str, Any]) -> str:
    loaded = result["server_rss_phases"]["loaded"]
    curve = result["server_rss_curve_mb"]
    loading = max((mb for t, mb in curve if t <= loaded), default=0)
    sending = max((mb for t, mb in curve if t > loaded), default=0)
    return f"{loading} / {sending} MB"


# --- Delivery client candidates against nginx (`--clients N`) ------------------------------------------------------


async def drive_batches(send: Callable[[int], Awaitable[Any]], requests: int, batch: int) -> tuple[float, float]:
    """requests/s and CPU µs per request (every thread of this process) for `requests` posts, `batch` at a time."""
    await send(min(batch, requests))  # connect (and fetch a token) outside the measurement
    started, cpu = time.perf_counter(), time.process_time()
    for sent in range(0, requests, batch):
        await send(min(batch, requests - sent))
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    return requests / elapsed, cpu_used / requests * 1e6


def all_at_once(post: Callable[[], Awaitable[None]]) -> Callable[[int], Awaitable[Any]]:
    """n posts of a client without a batch call, gathered."""

    async def posts(n: int) -> None:
        await asyncio.gather(*(post() for _ in range(n)))

    return posts


def client_cases(
    url: str, ca_file: str, nginx_url: str, google_key: Any
) -> tuple[dict[str, Callable[[int], Awaitable[Any]]], list[Callable[[], Awaitable[None]]]]:
    """The senders weighed: each posts n FCM-sized bodies to `url` at once and checks every answer."""
    body = json.dumps(fcm.fcm_message("token-0", PushContent(title="Hello", body="World"), {})).encode()
    headers = [("authorization", "Bearer ya29.bench"), ("content-type", "application/json; charset=UTF-8")]
    guarded = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8", "::1/128"]))
    tls = Tls(ca_file=ca_file)
    settings = DeliverySettings.model_validate(
        {"push": {"fcm_url": nginx_url, "fcm_token_uri": f"{nginx_url}/token", "ca_file": ca_file}}
    )
    transport = fcm.open_transport(settings, {"Platform": "GCM", "ServiceJson": service_json(google_key)}, guarded)
    content = PushContent(title="Hello", body="World", action="OPEN_APP")

    async def one_by_one(n: int) -> None:
        answers = await asyncio.gather(
            *(
                guarded.request("POST", url, headers=headers, body=body, timeout=30, max_bytes=1 << 16, tls=tls)
                for _ in range(n)
            )
        )
        assert all(answer.status == 200 for answer in answers)

    async def post_many(n: int) -> None:
        answers = await guarded.post_many([(url, body)] * n, headers=headers, timeout=30, max_bytes=1 << 16, tls=tls)
        assert all(isinstance(answer, Answer) and answer.status == 200 for answer in answers), answers[0]

    async def send_many(n: int) -> None:
        messages = [Outbound("GCM", f"token-{i}", str(uuid.uuid4()), "app", content) for i in range(n)]
        results = await transport.send_many(messages)  # type: ignore[attr-defined]
        assert all(result.status == "SUCCESSFUL" for result in results), results[0]

    cases: dict[str, Callable[[int], Awaitable[Any]]] = {
        "guarded client, a request per post (before)": one_by_one,
        "guarded client, post_many (the batch)": post_many,
        "FCM transport, send_many (body, token, results)": send_many,
    }
    closers: list[Callable[[], Awaitable[None]]] = [transport.close, guarded.close]
    missing = [name for name in ("pyreqwest", "rnet", "curl_cffi") if importlib.util.find_spec(name) is None]
    for name in missing:
        print(f"{name} not installed: its row is left out")
    if "pyreqwest" not in missing:
        from pyreqwest.client import ClientBuilder

        reqwest = ClientBuilder().http2(True).add_root_certificate_pem(Path(ca_file).read_bytes()).build()

        async def pyreqwest_post() -> None:
            response = await reqwest.post(url).headers(dict(headers)).body_bytes(body).build().send()
            assert response.status == 200 and str(response.version) == "HTTP/2.0", response.version
            await response.bytes()

        cases["pyreqwest (Rust: reqwest, hyper)"] = all_at_once(pyreqwest_post)
    if "rnet" not in missing:
        import rnet

        wreq = rnet.Client(verify=Path(ca_file), http2_only=True)

        async def rnet_post() -> None:
            answer = await wreq.post(url, headers=dict(headers), body=body)
            assert (answer.status, answer.version) == (200, rnet.Version.HTTP_2)
            await answer.bytes()

        cases["rnet (Rust: wreq, hyper)"] = all_at_once(rnet_post)
    if "curl_cffi" not in missing:
        from curl_cffi import CurlHttpVersion
        from curl_cffi.requests import AsyncSession

        session = AsyncSession(verify=ca_file, http_version=CurlHttpVersion.V2TLS, max_clients=200)
        closers.append(session.close)

        async def curl_cffi_posts(n: int) -> None:
            answers = await asyncio.gather(*(session.post(url, headers=dict(headers), data=body) for _ in range(n)))
            assert all(answer.status_code == 200 for answer in answers)

        cases["curl_cffi AsyncSession (libcurl, cffi)"] = curl_cffi_posts
    return cases, closers


async def measure_clients(
    url: str, ca_file: str, nginx_url: str, google_key: Any, args: argparse.Namespace
) -> dict[str, list[tuple[float, float]]]:
    cases, closers = client_cases(url, ca_file, nginx_url, google_key)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    blocking = CurlDriver.open(url, [("authorization", "Bearer ya29.bench")], b"", ca_file, args.batch)
    body = json.dumps(fcm.fcm_message("token-0", PushContent(title="Hello", body="World"), {})).encode()
    for handle in blocking.handles:
        handle.setopt(blocking.pycurl.POSTFIELDS, body)
    results["pycurl, own blocking loop (no event loop)"] = []
    for _ in range(args.rounds):
        for name, send in cases.items():
            results[name].append(await drive_batches(send, args.clients, args.batch))
        blocking.run(min(1000, args.clients))
        results["pycurl, own blocking loop (no event loop)"].append(blocking.run(args.clients))
    for close in closers:
        await close()
    return results


def curl_floor(url: str, ca_file: str, requests: int, work: Path) -> float | None:
    """CPU µs per request of bench/curl_floor.c (libcurl's multi interface from C), if it builds here."""
    compiler = shutil.which("cc")
    program = work / "curl_floor"
    if compiler is None:
        return None
    built = subprocess.run(
        [compiler, "-O2", "-o", str(program), str(ROOT / "bench" / "curl_floor.c"), "-lcurl"], capture_output=True
    )
    if built.returncode:
        print("bench/curl_floor.c did not build (libcurl's headers: libcurl4-openssl-dev): its row is left out")
        return None
    command = ["taskset", "-c", "0", str(program), url, ca_file, str(requests)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def clients_case(args: argparse.Namespace) -> dict[str, Any]:
    """Each candidate posts FCM-sized bodies to nginx in batches, on CPU 0 (nginx on CPU 1), `--rounds` times."""
    with nginx_world() as (work, nginx, google_key):
        where = pin(0)
        url = f"{nginx.url}/v1/projects/{PROJECT}/messages:send"
        results = asyncio.run(measure_clients(url, nginx.ca_file, nginx.url, google_key, args))
        floors = [curl_floor(url, nginx.ca_file, args.clients, work) for _ in range(args.rounds)]
    return {
        "sender": where,
        "requests": args.clients,
        "batch": args.batch,
        "rounds": args.rounds,
        "rows": {
            name: {"rates": [r for r, _ in runs], "cpu_us": [c for _, c in runs]} for name, runs in results.items()
        },
        "libcurl_multi_in_c_cpu_us": floors,
        "load_average": os.getloadavg(),
    }


def print_clients(result: dict[str, Any]) -> None:
    print(
        f"sender on {result['sender']}, nginx on the other CPU; {result['requests']:,} posts x {result['rounds']} "
        f"rounds, {result['batch']} at a time; load average at the end: "
        f"{' '.join(f'{x:.2f}' for x in result['load_average'])}\n"
    )
    print("| client | requests/s (the runs) | CPU µs per request (median) |")
    print("|---|---|---:|")
    for name, row in result["rows"].items():
        rates = " / ".join(f"{rate:,.0f}" for rate in row["rates"])
        print(f"| {name} | {rates} | {statistics.median(row['cpu_us']):.1f} |")
    floors = [floor for floor in result["libcurl_multi_in_c_cpu_us"] if floor is not None]
    if floors:
        print(f"| libcurl multi from C (bench/curl_floor.c) | — | {statistics.median(floors):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--campaign", type=int, default=0, help="run the end-to-end campaign of this many endpoints")
    parser.add_argument("--h2load-requests", type=int, default=200_000)
    parser.add_argument("--delivery-workers", type=int, default=0, help="campaigns.delivery_workers; 0: the default")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop the campaign after this long; 0: never")
    parser.add_argument("--batch-size", type=int, default=0, help="campaigns.batch_size; 0: the default (100)")
    parser.add_argument("--profile", default="", help="py-spy's collapsed stacks of the server during the campaign")
    parser.add_argument("--clients", type=int, default=0, help="weigh the delivery clients with this many posts")
    parser.add_argument("--batch", type=int, default=100, help="posts at a time for --clients (a campaign batch)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite", help="the campaign's store")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server on which the campaign may create and drop a database of its own",
    )
    args = parser.parse_args()
    if args.clients:
        result = clients_case(args)
        Path(ROOT / "bench" / "results" / "push-clients.json").write_text(json.dumps(result, indent=2))
        print_clients(result)
        return
    if args.campaign:
        result = campaign_case(args)
        suffix = "" if args.store == "sqlite" else f"-{args.store}"
        Path(ROOT / "bench" / "results" / f"push-campaign-{args.campaign}{suffix}.json").write_text(
            json.dumps(result, indent=2)
        )
        print_campaign(result)
        return

    ca = trustme.CA()
    google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = google_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=serve_stubs, args=(ca.cert_pem.bytes(), ca.private_key_pem.bytes(), public_pem, send), daemon=True
    )
    child.start()
    try:
        urls = receive.recv()
        where = pin(0)
        with tempfile.TemporaryDirectory() as folder:
            ca_file = str(Path(folder) / "ca.pem")
            ca.cert_pem.write_to_path(ca_file)
            results = asyncio.run(measure(urls, ca_file, google_key, args))
    finally:
        child.kill()
        child.join()

    print(
        f"sender on {where}, stubs on the other CPU; {args.messages} messages x {args.rounds} rounds, "
        f"{args.concurrency} in flight, one HTTP/2 connection per origin\n"
    )
    print(f"| {'path':<36} | {'messages/s (median)':>19} | {'the runs':<26} | {'sender CPU µs/message':>21} |")
    print(f"|{'-' * 38}|{'-' * 20}:|{'-' * 28}|{'-' * 22}:|")
    for name, runs in results.items():
        rates = [rate for rate, _ in runs]
        cpu = statistics.median(cost for _, cost in runs)
        listed = " / ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {name:<36} | {statistics.median(rates):>19,.0f} | {listed:<26} | {cpu:>21,.0f} |")


if __name__ == "__main__":
    main()
