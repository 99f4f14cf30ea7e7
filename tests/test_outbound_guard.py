"""The guarded client for tenant-supplied URLs (clarion/outbound/), then the places that use it, through a server.

Names resolve through a stub resolver (the client takes any function from a name to addresses), so "a public name
that resolves to a private address" needs no DNS; the receivers are local aiohttp servers on 127.0.0.1 and
127.0.0.2. Nothing here reaches another machine: a refused address is refused before a socket is connected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, TypeVar

import pytest
from aiohttp import web
from conftest import ADMIN, RunningServer, free_port
from pinpoint_calls import ROLE, email_project, immediate_campaign, wait_job
from web_recorder import serving

from clarion.config import AccessKey, Settings
from clarion.metrics import Metrics
from clarion.outbound.addresses import classify
from clarion.outbound.client import (
    OutboundClient,
    OutboundRefused,
    OutboundTimeout,
    ResponseTooLarge,
)
from clarion.outbound.config import OutboundSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

T = TypeVar("T")
SECRET = "root:x:0:0:SECRET-FIRST-LINE"


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


class StubResolver:
    """DNS as the test says: each name answers the next address of its list (the last one again when used up)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {name: list(addresses) for name, addresses in answers.items()}

    async def __call__(self, host: str) -> list[str]:
        addresses = self.answers.get(host)
        if not addresses:
            raise OSError(f"{host} does not resolve here")
        return [addresses.pop(0) if len(addresses) > 1 else addresses[0]]


@asynccontextmanager
async def web_server(routes: list[web.RouteDef], host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, handler_cancellation=True)  # a handler left waiting ends with its client
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def fetch(client: OutboundClient, url: str, *, max_bytes: int = 1 << 20, timeout: float = 10) -> bytes:
    async with client.open("GET", url, timeout=timeout, max_bytes=max_bytes, follow_redirects=True) as response:
        return await response.read()


async def refusals(client: OutboundClient, urls: list[str]) -> list[str]:
    """Why each URL was refused (each must be); the client is closed afterwards."""
    reasons = []
    try:
        for url in urls:
            with pytest.raises(OutboundRefused) as refused:
                await fetch(client, url)
            reasons.append(str(refused.value))
    finally:
        await client.close()
    return reasons


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "shared"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 around 169.254.169.254
    ],
)
def test_every_kind_of_inside_address_is_refused_before_connecting(address: str, kind: str) -> None:
    metrics = Metrics()

    async def scenario() -> str:
        client = OutboundClient(OutboundSettings(), metrics)
        host = f"[{address}]" if ":" in address else address
        try:
            with pytest.raises(OutboundRefused) as refused:
                await fetch(client, f"http://{host}:9/latest/meta-data/")
            return str(refused.value)
        finally:
            await client.close()

    reason = run(scenario)
    refusal = classify(ipaddress.ip_address(address))
    assert refusal is not None and refusal.kind == kind
    assert reason.endswith(f" is {refusal.reason}")
    assert metrics.registry.get_sample_value("clarion_outbound_refused_total", {"kind": kind}) == 1


def test_public_addresses_are_not_refused() -> None:
    for address in ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "93.184.215.14"):
        assert classify(ipaddress.ip_address(address)) is None


def test_a_name_that_resolves_inside_is_refused_and_so_is_every_other_scheme() -> None:
    resolver = StubResolver({"files.example.com": ["10.0.0.7"], "meta.example.com": ["169.254.169.254"]})

    async def scenario() -> list[str]:
        client = OutboundClient(OutboundSettings(), resolver=resolver)
        return await refusals(
            client, ["http://files.example.com/a.csv", "https://meta.example.com/", "file:///etc/passwd"]
        )

    assert run(scenario) == [
        "files.example.com resolves to 10.0.0.7, a private address",
        "meta.example.com resolves to 169.254.169.254, a cloud metadata address",
        "file:///etc/passwd leads to a URL that is not http(s)",
    ]


def test_the_operator_allowance_opens_only_the_networks_it_lists() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def scenario() -> tuple[bytes, str]:
        client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
        try:
            async with web_server([web.get("/", hello)]) as port:
                body = await fetch(client, f"http://127.0.0.1:{port}/")
                with pytest.raises(OutboundRefused) as refused:
                    await fetch(client, f"http://[::1]:{port}/")
            return body, str(refused.value)
        finally:
            await client.close()

    body, refused = run(scenario)
    assert body == b"hello" and refused == "::1 is a loopback address"


def test_a_name_cannot_rebind_to_an_inside_address_after_a_first_good_answer() -> None:
    """The first answer is allowed (127.0.0.2 is the operator's allowance here), the second points at 127.0.0.1:
    the address is judged at each connection, so the second request is refused, not sent."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.host)
        response = web.Response(text="ok")
        response.force_close()  # no kept-alive connection: the next request resolves again
        return response

    async def scenario() -> str:
        routes = [web.get("/", record)]
        # The same port on both addresses: were the second answer followed, it would reach the inside server.
        async with web_server(routes, host="127.0.0.2") as port, web_server(routes, host="127.0.0.1", port=port):
            resolver = StubResolver({"rebind.example.com": ["127.0.0.2", "127.0.0.1"]})
            client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.2/32"]), resolver=resolver)
            try:
                assert await fetch(client, f"http://rebind.example.com:{port}/") == b"ok"
                with pytest.raises(OutboundRefused) as refused:
                    await fetch(client, f"http://rebind.example.com:{port}/")
                return str(refused.value)
            finally:
                await client.close()

    assert run(scenario) == "rebind.example.com resolves to 127.0.0.1, a loopback address"
    assert len(seen) == 1


def test_redirects_are_checked_hop_by_hop() -> None:
    secret_reads: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        secret_reads.append(request.path)
        return web.Response(text=SECRET)

    async def scenario() -> list[str]:
        async with web_server([web.get("/secret", secret)], host="127.0.0.1") as inside:

            async def to_inside(request: web.Request) -> web.Response:
                raise web.HTTPFound(f"http://127.0.0.1:{inside}/secret")

            async def to_file(request: web.Request) -> web.Response:
                raise web.HTTPFound("file:///etc/passwd")

            async def loop(request: web.Request) -> web.Response:
                raise web.HTTPFound("/loop")

            routes = [web.get("/inside", to_inside), web.get("/file", to_file), web.get("/loop", loop)]
            async with web_server(routes, host="127.0.0.2") as port:
                resolver = StubResolver({"public.example.com": ["127.0.0.2"]})
                settings = OutboundSettings(allow_networks=["127.0.0.2/32"], max_redirects=3)
                client = OutboundClient(settings, resolver=resolver)
                paths = ("inside", "file", "loop")
                return await refusals(client, [f"http://public.example.com:{port}/{path}" for path in paths])

    assert run(scenario) == [
        "a redirect from public.example.com leads to a loopback address",
        "a redirect from public.example.com leads to a URL that is not http(s)",
        "public.example.com redirected more than 3 times",
    ]
    assert secret_reads == []


def test_answers_are_read_with_a_cap_and_within_one_deadline() -> None:
    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 10_000)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        return response

    let_go = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(SECRET.encode() + b"\n")
        await let_go.wait()  # never finishes while the client reads (the server's close would wait a minute for it)
        return response

    async def scenario() -> tuple[list[str], str, float]:
        client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
        routes = [web.get("/sized", sized), web.get("/chunked", chunked), web.get("/endless", endless)]
        try:
            async with web_server(routes) as port:
                too_large = []
                for path in ("sized", "chunked"):
                    with pytest.raises(ResponseTooLarge) as error:
                        await fetch(client, f"http://127.0.0.1:{port}/{path}", max_bytes=4000)
                    too_large.append(str(error.value))
                started = time.monotonic()
                try:
                    with pytest.raises(OutboundTimeout) as late:
                        await fetch(client, f"http://127.0.0.1:{port}/endless", timeout=0.5)
                    return too_large, str(late.value), time.monotonic() - started
                finally:
                    let_go.set()
        finally:
            await client.close()

    too_large, late, took = run(scenario)
    assert too_large == ["127.0.0.1 answered more than 4,000 bytes"] * 2
    assert late == "127.0.0.1 did not finish answering within 0.5s" and SECRET not in late
    assert took < 10


def test_whole_answers_are_capped_and_redirects_are_returned_not_followed() -> None:
    """`request` (providers, webhooks): the body is cut at its cap, and a redirect is the answer, never a hop."""
    inside_reads: list[str] = []

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"z" * 5000)

    async def inside(request: web.Request) -> web.Response:
        inside_reads.append(request.path)
        return web.Response(text=SECRET)

    async def scenario() -> tuple[str, int, str | None]:
        async with web_server([web.get("/inside", inside)], host="127.0.0.1") as inside_port:

            async def moved(request: web.Request) -> web.Response:
                raise web.HTTPFound(f"http://127.0.0.1:{inside_port}/inside")

            async with web_server([web.post("/big", big), web.post("/moved", moved)], host="127.0.0.2") as port:
                client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.2/32"]))
                try:
                    with pytest.raises(ResponseTooLarge) as too_large:
                        await client.request(
                            "POST", f"http://127.0.0.2:{port}/big", body=b"{}", timeout=5, max_bytes=4000
                        )
                    answer = await client.request(
                        "POST", f"http://127.0.0.2:{port}/moved", body=b"{}", timeout=5, max_bytes=4000
                    )
                    return str(too_large.value), answer.status, answer.headers.get("LOCATION")
                finally:
                    await client.close()

    too_large, status, location = run(scenario)
    assert too_large == "127.0.0.2 answered more than 4,000 bytes"
    assert status == 302 and location is not None and location.endswith("/inside")
    assert inside_reads == []


def test_a_batch_of_posts_keeps_every_guard_post_by_post() -> None:
    """`post_many` (a campaign batch to a provider): each post gets its own answer or error, in order, under the
    guards of `request`: an address checked at connection, no redirect followed, the deadline, the capped body, the
    scheme; and the project's turns hold across the batch."""
    inside_reads: list[str] = []
    in_flight: list[int] = [0, 0]  # now, most at once

    async def inside(request: web.Request) -> web.Response:
        inside_reads.append(request.path)
        return web.Response(text=SECRET)

    async def ok(request: web.Request) -> web.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        return web.json_response({"name": request.path}, headers={"Retry-After": "7"})

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"z" * 5000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def scenario() -> list[Any]:
        async with web_server([web.post("/inside", inside)], host="127.0.0.1") as inside_port:

            async def moved(request: web.Request) -> web.Response:
                raise web.HTTPFound(f"http://127.0.0.1:{inside_port}/inside")

            routes = [web.post("/ok", ok), web.post("/big", big), web.post("/slow", slow), web.post("/moved", moved)]
            async with web_server(routes, host="127.0.0.2") as port:
                settings = OutboundSettings(allow_networks=["127.0.0.2/32"], max_requests_per_project=3)
                client = OutboundClient(settings)
                there = f"http://127.0.0.2:{port}"
                try:
                    mixed = await client.post_many(
                        [(f"{there}/{path}", b"{}") for path in ("ok", "big", "slow", "moved")]
                        + [(f"http://127.0.0.1:{inside_port}/inside", b"{}"), ("file:///etc/passwd", b"{}")],
                        headers=[("Content-Type", "application/json")],
                        timeout=0.5,
                        max_bytes=4000,
                    )
                    in_turns = await client.post_many(
                        [(f"{there}/ok", b"{}")] * 7, headers={}, timeout=5, max_bytes=4000, project="p1"
                    )
                    return [*mixed, in_turns]
                finally:
                    await client.close()

    ok_answer, too_large, late, redirect, refused, scheme, in_turns = run(scenario)
    assert ok_answer.status == 200 and json.loads(ok_answer.body) == {"name": "/ok"}
    assert ok_answer.headers["retry-after"] == "7"
    assert isinstance(too_large, ResponseTooLarge) and str(too_large) == "127.0.0.2 answered more than 4,000 bytes"
    assert isinstance(late, OutboundTimeout) and str(late) == "127.0.0.2 did not answer within 0.5s"
    assert redirect.status == 302 and redirect.headers["location"].endswith("/inside")
    assert isinstance(refused, OutboundRefused) and str(refused) == "127.0.0.1 is a loopback address"
    assert isinstance(scheme, OutboundRefused) and "not http(s)" in str(scheme)
    assert inside_reads == []
    assert [answer.status for answer in in_turns] == [200] * 7
    assert in_flight[1] == 3  # the project's three turns, never more, however large the batch


def test_one_project_at_its_limit_does_not_hold_up_another() -> None:
    """A project's slow receiver holds its own `max_requests_per_project` requests; another project's go at once."""
    release = asyncio.Event()
    waiting: list[str] = []

    async def receiver(request: web.Request) -> web.Response:
        if request.path == "/slow":
            waiting.append(request.path)
            await release.wait()
        return web.Response(text="ok")

    async def scenario() -> tuple[int, list[int], float]:
        client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"], max_requests_per_project=3))
        try:
            async with web_server([web.post("/slow", receiver), web.post("/fast", receiver)]) as port:

                def post(path: str, project: str) -> Awaitable[Any]:
                    url = f"http://127.0.0.1:{port}/{path}"
                    return client.request("POST", url, body=b"{}", timeout=30, max_bytes=100, project=project)

                slow = [asyncio.ensure_future(post("slow", "noisy")) for _ in range(5)]
                while len(waiting) < 3:
                    await asyncio.sleep(0.01)
                started = time.monotonic()
                fast = await asyncio.gather(*(post("fast", "quiet") for _ in range(5)))
                took = time.monotonic() - started
                in_flight_while_held = len(waiting)
                release.set()
                answers = await asyncio.gather(*slow)
                return in_flight_while_held, [a.status for a in [*fast, *answers]], took
        finally:
            await client.close()

    held, statuses, took = run(scenario)
    assert held == 3  # the noisy project's other two waited their turn
    assert statuses == [200] * 10
    assert took < 10  # the quiet project's sends did not wait for the held ones


def test_provider_addresses_are_guarded_like_tenant_urls(tmp_path: Any) -> None:
    """An SMS gateway or a push provider configured at an inside address is refused unless the operator allows that
    network, and nothing reaches it."""
    from clarion.channels import sms
    from clarion.channels.config import DeliverySettings
    from clarion.channels.delivery import Outbound, SmsContent

    calls: list[str] = []

    async def gateway(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"id": "gw-1"})

    async def scenario() -> tuple[Any, Any]:
        async with web_server([web.post("/send", gateway)]) as port:
            settings = DeliverySettings.model_validate(
                {
                    "sms": {
                        "provider": "http",
                        "http": {
                            "url": f"http://127.0.0.1:{port}/send",
                            "body": {"to": "{to}"},
                            "message_id_path": "id",
                        },
                    }
                }
            )
            message = Outbound("SMS", "+12065550100", "m1", "app1", SmsContent("hi"))
            guarded = OutboundClient(OutboundSettings())
            allowed = OutboundClient(OutboundSettings(allow_networks=["127.0.0.1/32"]))
            try:
                refused = await sms.open_transport(settings, {}, guarded).send(message)
                sent = await sms.open_transport(settings, {}, allowed).send(message)
            finally:
                await guarded.close()
                await allowed.close()
            return refused, sent

    refused, sent = run(scenario)
    assert refused.status == "TEMPORARY_FAILURE" and refused.message.endswith("127.0.0.1 is a loopback address")
    assert sent.status == "SUCCESSFUL" and sent.provider_message_id == "gw-1"
    assert calls == ["/send"]  # only the allowed send arrived


# --- Through the server --------------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """An inside service: it must never be asked anything."""

    calls: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        _Recorder.calls.append(f"{self.command} {self.path}")
        body = (SECRET + "\nId,ChannelType,Address\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def inside_service() -> Iterator[str]:
    _Recorder.calls = []
    with serving(_Recorder) as url:
        yield url


def test_import_and_export_urls_cannot_reach_inside_and_nothing_fetched_is_repeated(
    settings: Settings, inside_service: str
) -> None:
    with RunningServer(settings) as server:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "p"})["ApplicationResponse"]["Id"]
        failures = []
        for url in (f"{inside_service}/etc/passwd.csv", "http://169.254.169.254/latest/meta-data/iam.csv"):
            job = client.create_import_job(
                ApplicationId=app_id, ImportJobRequest={"S3Url": url, "RoleArn": ROLE, "Format": "CSV"}
            )["ImportJobResponse"]
            done = wait_job(client, app_id, job["Id"])
            assert done["JobStatus"] == "FAILED"
            failures += done["Failures"]
        endpoint = {"ChannelType": "EMAIL", "Address": "a@example.com"}
        client.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest=endpoint)  # something to export
        export = client.create_export_job(
            ApplicationId=app_id, ExportJobRequest={"S3UrlPrefix": f"{inside_service}/up", "RoleArn": ROLE}
        )["ExportJobResponse"]
        exported = wait_job(client, app_id, export["Id"], "export")
        assert exported["JobStatus"] == "FAILED"
        failures += exported["Failures"]
    assert "127.0.0.1 is a loopback address" in failures[0]
    assert "169.254.169.254 is a cloud metadata address" in failures[1]
    assert "127.0.0.1 is a loopback address" in failures[2]
    assert _Recorder.calls == []

    # Where the operator allows the network, a file that is not an endpoint file fails without being quoted.
    allowed = settings.model_copy(update={"outbound": OutboundSettings(allow_networks=["127.0.0.0/8"])})
    with RunningServer(allowed) as server:
        client = server.client()
        job = client.create_import_job(
            ApplicationId=app_id,
            ImportJobRequest={"S3Url": f"{inside_service}/etc/passwd.csv", "RoleArn": ROLE, "Format": "CSV"},
        )["ImportJobResponse"]
        done = wait_job(client, app_id, job["Id"])
    assert done["JobStatus"] == "FAILED" and _Recorder.calls == ["GET /etc/passwd.csv"]
    assert done["Failures"] == [
        f"{inside_service}/etc/passwd.csv: header: column 1 is not an endpoint field (docs/segments.md lists the paths)"
    ]
    assert not any("SECRET" in failure for failure in done["Failures"])


def test_a_send_only_key_cannot_make_the_custom_channel_post_inside(settings: Settings, inside_service: str) -> None:
    with RunningServer(settings) as first:
        app_id = first.client().create_app(CreateApplicationRequest={"Name": "p"})["ApplicationResponse"]["Id"]
    sender = AccessKey(
        access_key_id="AKIDSENDONLY00000001", secret_access_key="s", projects=[app_id], operations=["SendMessages"]
    )
    restarted = settings.model_copy(update={"access_keys": [ADMIN, sender], "port": free_port()})
    local_url, metadata_url = f"{inside_service}/hook", "http://[fd00:ec2::254]/latest/api/token"
    with RunningServer(restarted) as server:
        local, metadata = (
            server.client(sender).send_messages(
                ApplicationId=app_id,
                MessageRequest={
                    "Addresses": {url: {"ChannelType": "CUSTOM"}},
                    "MessageConfiguration": {"DefaultMessage": {"Body": "hello"}},
                },
            )["MessageResponse"]["Result"][url]
            for url in (local_url, metadata_url)
        )
    assert local["DeliveryStatus"] == metadata["DeliveryStatus"] == "PERMANENT_FAILURE"
    assert local["StatusMessage"] == "DeliveryUri refused: 127.0.0.1 is a loopback address"
    assert metadata["StatusMessage"] == "DeliveryUri refused: fd00:ec2::254 is a cloud metadata address"
    assert _Recorder.calls == []


def test_a_campaign_hook_cannot_reach_inside(settings: Settings, inside_service: str) -> None:
    with RunningServer(settings) as server:
        client = server.client()
        app_id = email_project(client, "p", 3)
        hook = {"WebUrl": f"{inside_service}/filter", "Mode": "FILTER"}
        campaign_id = immediate_campaign(client, app_id, Hook=hook)
        deadline = time.monotonic() + 60
        while True:
            activities = client.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)
            items = activities["ActivitiesResponse"]["Item"]
            if items and items[0].get("State") == "COMPLETED":
                break
            assert time.monotonic() < deadline, items
            time.sleep(0.1)
    assert items[0]["ExecutionMetrics"]["HookFailedEndpoints"] == "3"
    assert _Recorder.calls == []
