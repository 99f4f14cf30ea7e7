"""The HTTP edge against a hostile client: which address a request comes from (peer × proxy header × trusted
proxies × key network), what each key scope may call, public routes that bound a body before reading it and exist
only when their feature is configured, and Pinpoint-shaped answers for paths no route serves."""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import ADMIN, REGION, RunningServer, free_port, running

from clarion.access_keys.service import AccessKeys
from clarion.channels.config import GenericHttpSettings, SmsSettings, TrackingSettings, TwilioSettings
from clarion.config import AccessKey, Settings
from clarion.messages.tracking import Tracker


def sqlite_settings(tmp_path: Path, **values: Any) -> Settings:
    defaults = {"data_dir": tmp_path / "data", "port": free_port(), "access_keys": [ADMIN], "access_log": False}
    return Settings(**{**defaults, **values})


# --------------------------------------------------------------------------------------------------------------
# Peer identity: the matrix


TEN = AccessKey(access_key_id="AKIDTENNETWORKONLY01", secret_access_key="ten", allow_networks=["10.0.0.0/8"])
PEER_TWO = AccessKey(access_key_id="AKIDLOOPBACKTWO00001", secret_access_key="two", allow_networks=["127.0.0.2/32"])
LOOPBACK = AccessKey(access_key_id="AKIDLOOPBACKANY00001", secret_access_key="lo", allow_networks=["127.0.0.0/8"])
KEYS = (TEN, PEER_TWO, LOOPBACK)
PEERS = ("127.0.0.1", "127.0.0.2")
# No header; a client claiming a 10/8 address; one claiming the other loopback peer; a proxy chain whose last hop
# is the trusted proxy itself (the client is the hop before it).
HEADERS = (None, "10.9.8.7", "127.0.0.2", "10.9.8.7, 127.0.0.1")
TRUSTED = ((), ("127.0.0.1/32",))


def client_address(peer: str, header: str | None, trusted: tuple[str, ...]) -> str:
    """The rule the server must follow: the TCP peer, unless the peer is a trusted proxy; then the header's
    rightmost address that is not itself a trusted proxy."""

    def is_trusted(address: str) -> bool:
        return any(ipaddress.ip_address(address) in ipaddress.ip_network(net) for net in trusted)

    if header is None or not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in header.split(",")]
    return next((hop for hop in reversed(hops) if not is_trusted(hop)), hops[0])


def signed_get_apps(server: RunningServer, key: AccessKey, peer: str, forwarded_for: str | None) -> int:
    """GetApps signed by botocore, sent from `peer`, with an X-Forwarded-For added after signing (as anyone can)."""
    request = AWSRequest(method="GET", url=f"{server.url}/v1/apps")
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "mobiletargeting", REGION).add_auth(request)
    headers = dict(request.prepare().headers)
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    connection = http.client.HTTPConnection("127.0.0.1", server.settings.port, timeout=10, source_address=(peer, 0))
    try:
        connection.request("GET", "/v1/apps", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, ...], RunningServer]]:
    """One server per trusted-proxies setting, each with a key per network."""
    started = {}
    try:
        for trusted in TRUSTED:
            settings = sqlite_settings(
                tmp_path_factory.mktemp("peer"), access_keys=list(KEYS), trusted_proxies=list(trusted)
            )
            started[trusted] = RunningServer(settings).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.mark.parametrize("trusted", TRUSTED, ids=["no-trusted-proxy", "trusting-127.0.0.1"])
@pytest.mark.parametrize("header", HEADERS, ids=["no-header", "claims-10/8", "claims-127.0.0.2", "chain"])
@pytest.mark.parametrize("peer", PEERS)
def test_peer_identity_matrix(
    servers: dict[tuple[str, ...], RunningServer], peer: str, header: str | None, trusted: tuple[str, ...]
) -> None:
    server = servers[trusted]
    address = client_address(peer, header, trusted)
    for key in KEYS:
        allowed = any(ipaddress.ip_address(address) in ipaddress.ip_network(net) for net in key.allow_networks)
        status = signed_get_apps(server, key, peer, header)
        assert status == (200 if allowed else 403), (key.access_key_id, peer, header, trusted, address)


def test_without_trusted_proxies_a_header_never_changes_the_address(
    servers: dict[tuple[str, ...], RunningServer],
) -> None:
    """The hole itself: a local caller adding X-Forwarded-For must not pass a key limited to 10.0.0.0/8."""
    assert signed_get_apps(servers[()], TEN, "127.0.0.1", "10.9.8.7") == 403
    assert signed_get_apps(servers[("127.0.0.1/32",)], TEN, "127.0.0.1", "10.9.8.7") == 200


def test_trusted_proxies_are_checked_as_networks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        sqlite_settings(tmp_path, trusted_proxies=["not-a-network"])


# --------------------------------------------------------------------------------------------------------------
# Key scope: the matrix


def test_key_scope_matrix(tmp_path: Path) -> None:
    """Every scope against every kind of call: allowed exactly where the key's projects and operations say."""
    with running(sqlite_settings(tmp_path)) as server:
        admin = server.client()
        mine = admin.create_app(CreateApplicationRequest={"Name": "mine"})["ApplicationResponse"]["Id"]
        theirs = admin.create_app(CreateApplicationRequest={"Name": "theirs"})["ApplicationResponse"]["Id"]
        project_key = AccessKey(access_key_id="AKIDSCOPEPROJECT0001", secret_access_key="p", projects=[mine])
        send_key = AccessKey(
            access_key_id="AKIDSCOPESENDONLY001", secret_access_key="s", projects=[mine], operations=["SendMessages"]
        )

        async def store_keys(services: Any) -> None:
            keys = AccessKeys(services.db, services.channel_secrets, services.clock)
            for key in (project_key, send_key):
                await keys.create(key, known_operations={"SendMessages"})
            await server.app.state.access_keys.refresh()

        server.run(store_keys)
        sms = {"SMSMessage": {"Body": "hi", "MessageType": "TRANSACTIONAL"}}
        message = {"Addresses": {"+12065550100": {"ChannelType": "SMS"}}, "MessageConfiguration": sms}
        calls = {
            "GetApp mine": lambda c: c.get_app(ApplicationId=mine),
            "GetApp theirs": lambda c: c.get_app(ApplicationId=theirs),
            "SendMessages mine": lambda c: c.send_messages(ApplicationId=mine, MessageRequest=message),
            "SendMessages theirs": lambda c: c.send_messages(ApplicationId=theirs, MessageRequest=message),
            "GetApps": lambda c: c.get_apps(),
            "CreateApp": lambda c: c.create_app(CreateApplicationRequest={"Name": "new"}),
            "ListTemplates": lambda c: c.list_templates(),
            "PhoneNumberValidate": lambda c: c.phone_number_validate(
                NumberValidateRequest={"PhoneNumber": "+12065550100"}
            ),
        }
        allowed = {
            ADMIN.access_key_id: set(calls),
            project_key.access_key_id: {"GetApp mine", "SendMessages mine", "GetApps", "PhoneNumberValidate"},
            send_key.access_key_id: {"SendMessages mine"},
        }
        for key in (ADMIN, project_key, send_key):
            client = server.client(key)
            for name, call in calls.items():
                if name in allowed[key.access_key_id]:
                    assert call(client)["ResponseMetadata"]["HTTPStatusCode"] in (200, 201), (key, name)
                    continue
                with pytest.raises(ClientError) as refused:
                    call(client)
                assert refused.value.response["Error"]["Code"] == "ForbiddenException", (key.access_key_id, name)
        listed = server.client(project_key).get_apps()["ApplicationsResponse"]["Item"]
        assert [app["Id"] for app in listed] == [mine]


# --------------------------------------------------------------------------------------------------------------
# Public routes: bounded, and present only when configured


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send a request's head and the start of its body, then read the answer without sending the rest: a server
    that waited for the whole announced body would time out here instead of answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


HUGE = 400 * 1024 * 1024


def post_head(path: str, length: int, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def test_unconfigured_public_routes_answer_404_without_reading(tmp_path: Path) -> None:
    with running(sqlite_settings(tmp_path)) as server:
        for path in ("/webhooks/sms/http", "/webhooks/sms/twilio/inbound", "/webhooks/email/sendgrid", "/t/o/x.y"):
            status, headers, body = raw_request(server.settings.port, post_head(path, HUGE), b"x" * 1000)
            assert status == 404, path
            assert headers["x-amzn-errortype"] == "NotFoundException"
            assert json.loads(body)["__type"] == "NotFoundException"


def test_configured_public_routes_refuse_a_large_body_before_reading_it(tmp_path: Path) -> None:
    sms = SmsSettings(
        twilio=TwilioSettings(account_sid="AC1", auth_token="token"),
        http=GenericHttpSettings(webhook_secret="secret"),
    )
    settings = sqlite_settings(tmp_path)
    settings.delivery.sms = sms
    settings.delivery.email_api.webhook_public_key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
    with running(settings) as server:
        port = server.settings.port
        for path in ("/webhooks/sms/http", "/webhooks/sms/twilio/inbound", "/webhooks/email/sendgrid"):
            status, _, body = raw_request(port, post_head(path, HUGE), b"x" * 1000)
            assert status == 413, path
            assert b"at most" in body

        # A chunked body announces no length: it is cut off as soon as it passes the bound (64 KiB for Twilio).
        head = "POST /webhooks/sms/twilio/inbound HTTP/1.1\nHost: 127.0.0.1\nTransfer-Encoding: chunked\n"
        chunk = b"x" * 16384
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))
        status, _, body = raw_request(port, head, chunks)
        assert status == 413
        assert b"over 65536 bytes" in body

        # Under the bound the route works as before: a bad signature is a 403 after reading the form.
        status, _, body = raw_request(port, post_head("/webhooks/sms/twilio/inbound", 9), b"Body=STOP")
        assert status == 403 and b"does not verify" in body


def test_the_api_refuses_unauthenticated_requests_before_reading_their_body(tmp_path: Path) -> None:
    with running(sqlite_settings(tmp_path)) as server:
        status, _, body = raw_request(server.settings.port, post_head("/v1/apps", 6 * 1024 * 1024), b"{")
        assert status == 403
        assert json.loads(body)["Message"] == "Missing Authentication Token"
        # A made-up key: refused on the headers alone.
        authorization = (
            "AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN/20261122/us-east-1/mobiletargeting/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
        )
        head = post_head("/v1/apps", 6 * 1024 * 1024, Authorization=authorization, X_Amz_Date="20261122T101500Z")
        status, _, _ = raw_request(server.settings.port, head, b"{")
        assert status == 403


def test_unsubscribe_page_cannot_be_framed(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    settings.delivery.tracking = TrackingSettings(base_url=f"http://127.0.0.1:{settings.port}", key="k")
    with running(settings) as server:
        url = Tracker(settings.delivery.tracking).unsubscribe_url("message-1")
        assert url is not None
        path = url.removeprefix(server.url)
        status, headers, body = raw_request(server.settings.port, f"GET {path} HTTP/1.1\nHost: 127.0.0.1\n")
        assert status == 200 and b"Unsubscribe" in body
        assert headers["content-security-policy"] == "frame-ancestors 'none'"
        assert headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("request_line", "status", "code"),
    [
        ("GET /v1/apps/%0Aabc HTTP/1.1", 404, "NotFoundException"),  # a newline in the path: no route matches
        ("GET /nothing%0A/here HTTP/1.1", 404, "NotFoundException"),
        ("GET /webhooks/sms/http HTTP/1.1", 404, "NotFoundException"),  # the route takes POST only
    ],
)
def test_paths_no_route_serves_answer_in_pinpoint_json(
    tmp_path: Path, request_line: str, status: int, code: str
) -> None:
    settings = sqlite_settings(tmp_path)
    settings.delivery.sms = SmsSettings(http=GenericHttpSettings(webhook_secret="secret"))
    with running(settings) as server:
        answered, headers, body = raw_request(server.settings.port, f"{request_line}\nHost: 127.0.0.1\n")
        assert answered == status
        assert headers["content-type"] == "application/json"
        assert headers["x-amzn-errortype"] == code
        document = json.loads(body)
        assert document["__type"] == code and document["Message"] and document["RequestID"]


def test_boto3_sees_typed_errors_for_unknown_paths(tmp_path: Path) -> None:
    """The same shape reaches SDK users: a request to a path that holds a newline is a NotFoundException."""
    with running(sqlite_settings(tmp_path)) as server:
        client = boto3.client(
            "pinpoint",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id=ADMIN.access_key_id,
            aws_secret_access_key=ADMIN.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )
        with pytest.raises(ClientError) as excinfo:
            client.get_app(ApplicationId="\n")
        assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
