"""SigV4 and key scope through the real server: refusals, odd ids with real signatures, networks, projects,
operations, session credentials and the insecure development mode."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ADMIN, REGION, RunningServer, free_port, running
from structlog.testing import capture_logs

from clarion.api.auth import _allowed_from
from clarion.config import AccessKey, Settings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated


def forbidden(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ForbiddenException", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["RequestID"] == response["ResponseMetadata"]["RequestId"]
    message = response["Error"]["Message"]
    assert message
    return message


def auth_failures(server: RunningServer, reason: str) -> float:
    registry = server.services.metrics.registry
    return registry.get_sample_value("clarion_auth_failures_total", {"reason": reason}) or 0.0


def new_app(client: Any, name: str = "p") -> str:
    return client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]


def unsigned_client(server: RunningServer, region: str = REGION) -> Any:
    return boto3.client(
        "pinpoint",
        endpoint_url=server.url,
        region_name=region,
        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1, "mode": "standard"}),
    )


# --------------------------------------------------------------------------------------------------------------
# Refusals


STRANGER = AccessKey(access_key_id="AKIDNOBODYKNOWS00001", secret_access_key="whatever")
WRONG_SECRET = AccessKey(access_key_id=ADMIN.access_key_id, secret_access_key="not-the-secret")


@pytest.mark.parametrize(
    ("case", "reason", "text"),
    [
        ("unknown key", "unknown-key", "security token included in the request is invalid"),
        ("wrong secret", "mismatch", "signature we calculated does not match"),
        ("signed 10 minutes ago", "expired", "Signature expired"),
        ("signed 10 minutes ahead", "expired", "Signature not yet current"),
        ("unsigned", "missing", "Missing Authentication Token"),
    ],
)
def test_refused_requests(server: RunningServer, case: str, reason: str, text: str) -> None:
    client = {
        "unknown key": lambda: server.client(STRANGER),
        "wrong secret": lambda: server.client(WRONG_SECRET),
        "unsigned": lambda: unsigned_client(server),
    }.get(case, server.client)()
    if case == "signed 10 minutes ago":
        server.clock.offset = timedelta(minutes=10)  # the server's clock runs ahead of the signer's
    elif case == "signed 10 minutes ahead":
        server.clock.offset = -timedelta(minutes=10)

    before = auth_failures(server, reason)
    with capture_logs() as logs, pytest.raises(ClientError) as excinfo:
        client.get_apps()
    assert text in forbidden(excinfo)
    assert auth_failures(server, reason) == before + 1

    refusals = [entry for entry in logs if entry["event"] == "auth_refused"]
    assert len(refusals) == 1, logs
    assert refusals[0]["reason"] == reason
    assert refusals[0]["log_level"] == "warning"
    assert refusals[0]["client"] == "127.0.0.1"
    assert refusals[0]["path"] == "/v1/apps"
    assert refusals[0]["request_id"] == excinfo.value.response["RequestID"]

    # refused before any work: the request is counted as unrouted, and the admin still gets in
    registry = server.services.metrics.registry
    assert registry.get_sample_value("clarion_requests_total", {"operation": "Unrouted", "status": "403"}) >= 1
    server.clock.offset = timedelta()
    assert server.client().get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_small_clock_skew_is_tolerated(server: RunningServer) -> None:
    server.clock.offset = timedelta(minutes=4)
    assert server.client().get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200
    server.clock.offset = -timedelta(minutes=4)
    assert server.client().get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_tampered_request_is_refused(server: RunningServer) -> None:
    """A signature covers the body: a proxy that rewrites it after signing is caught."""
    client = server.client()

    def tamper(request: Any, **_: Any) -> None:
        request.body = b'{"Name": "rewritten"}'
        request.headers["Content-Length"] = str(len(request.body))

    client.meta.events.register("before-send.pinpoint.CreateApp", tamper)
    with pytest.raises(ClientError) as excinfo:
        client.create_app(CreateApplicationRequest={"Name": "original"})
    assert "signature" in forbidden(excinfo)
    assert server.client().get_apps()["ApplicationsResponse"]["Item"] == []


# --------------------------------------------------------------------------------------------------------------
# Ids that need percent-encoding, with real signatures


def test_ids_needing_encoding(client: Any, app_id: str) -> None:
    endpoint_id = "a b:c+d/é%20日本"
    user_id = "team/a+b c"
    request = {"ChannelType": "EMAIL", "Address": "odd@example.com", "User": {"UserId": user_id}}
    updated = client.update_endpoint(ApplicationId=app_id, EndpointId=endpoint_id, EndpointRequest=request)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202

    endpoint = client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)["EndpointResponse"]
    assert endpoint["Id"] == endpoint_id
    assert endpoint["User"]["UserId"] == user_id

    users = client.get_user_endpoints(ApplicationId=app_id, UserId=user_id)["EndpointsResponse"]["Item"]
    assert [item["Id"] for item in users] == [endpoint_id]

    # a second endpoint through the batch call, then the user's endpoints are deleted together
    batch = {"Item": [{"Id": "x/y?z#w", "ChannelType": "SMS", "Address": "+15555550123", "User": {"UserId": user_id}}]}
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest=batch)
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="x/y?z#w")["EndpointResponse"]["Address"] == (
        "+15555550123"
    )
    deleted = client.delete_user_endpoints(ApplicationId=app_id, UserId=user_id)["EndpointsResponse"]["Item"]
    assert sorted(item["Id"] for item in deleted) == sorted([endpoint_id, "x/y?z#w"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)


def test_query_values_needing_encoding(client: Any, app_id: str) -> None:
    arn = client.get_app(ApplicationId=app_id)["ApplicationResponse"]["Arn"]
    odd = "a b+c&d=e/é"
    client.tag_resource(ResourceArn=arn, TagsModel={"tags": {odd: "1", "plain": "2"}})
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {odd: "1", "plain": "2"}
    client.untag_resource(ResourceArn=arn, TagKeys=[odd])
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"plain": "2"}


# --------------------------------------------------------------------------------------------------------------
# Source networks

NET10 = AccessKey(access_key_id="AKIDONLYTENNET000001", secret_access_key="ten", allow_networks=["10.0.0.0/8"])
LOOPBACK = AccessKey(access_key_id="AKIDLOOPBACKONLY0001", secret_access_key="lo", allow_networks=["127.0.0.0/8"])
V6_ONLY = AccessKey(access_key_id="AKIDIPV6LOOPBACK0001", secret_access_key="six", allow_networks=["::1/128"])


def test_network_allowlist(settings: Settings) -> None:
    with running(settings.model_copy(update={"access_keys": [ADMIN, NET10, LOOPBACK, V6_ONLY]})) as server:
        with capture_logs() as logs, pytest.raises(ClientError) as excinfo:
            server.client(NET10).get_apps()
        message = forbidden(excinfo)
        assert NET10.access_key_id in message
        assert "127.0.0.1" in message
        assert auth_failures(server, "network") == 1
        assert any(e["event"] == "auth_refused" and e["reason"] == "network" for e in logs)

        with pytest.raises(ClientError) as excinfo:
            server.client(V6_ONLY).get_apps()
        assert V6_ONLY.access_key_id in forbidden(excinfo)

        assert server.client(LOOPBACK).get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert auth_failures(server, "network") == 2


def test_allowed_from_maps_ipv4_in_ipv6() -> None:
    loopback4 = (ipaddress.ip_network("127.0.0.0/8"),)
    loopback6 = (ipaddress.ip_network("::1/128"),)
    assert _allowed_from("::ffff:127.0.0.1", loopback4)
    assert _allowed_from("127.0.0.1", loopback4)
    assert not _allowed_from("::1", loopback4)
    assert _allowed_from("::1", loopback6)
    assert not _allowed_from("", loopback4)  # no peer address (e.g. a unix socket) is never allowed
    assert not _allowed_from("not-an-ip", loopback4)


def test_ipv6_client_address(settings: Settings) -> None:
    """A server on ::1 sees the client as ::1; a key for ::1/128 gets in, an IPv4-only key does not."""
    server = RunningServer(settings.model_copy(update={"access_keys": [V6_ONLY, LOOPBACK]}), host="::1")
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        pytest.skip(f"cannot serve on ::1 here ({error})")
    try:
        assert server.client(V6_ONLY).get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200
        with pytest.raises(ClientError) as excinfo:
            server.client(LOOPBACK).get_apps()
        assert "::1" in forbidden(excinfo)
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------------------
# Key scope: projects and operations


def test_project_scoped_key(settings: Settings) -> None:
    with running(settings) as first:
        admin = first.client()
        mine, theirs = new_app(admin, "mine"), new_app(admin, "theirs")
    scoped = AccessKey(access_key_id="AKIDPROJECTSCOPED001", secret_access_key="scoped", projects=[mine])
    restarted = settings.model_copy(update={"access_keys": [ADMIN, scoped], "port": free_port()})
    with running(restarted) as server:
        client, admin = server.client(scoped), server.client()

        assert client.get_app(ApplicationId=mine)["ApplicationResponse"]["Name"] == "mine"
        endpoint = {"ChannelType": "EMAIL", "Address": "me@example.com"}
        client.update_endpoint(ApplicationId=mine, EndpointId="e1", EndpointRequest=endpoint)
        assert client.get_endpoint(ApplicationId=mine, EndpointId="e1")["EndpointResponse"]["Address"] == (
            "me@example.com"
        )
        assert [app["Id"] for app in client.get_apps()["ApplicationsResponse"]["Item"]] == [mine]
        assert len(admin.get_apps()["ApplicationsResponse"]["Item"]) == 2

        with pytest.raises(ClientError) as excinfo:
            client.get_app(ApplicationId=theirs)
        assert theirs in forbidden(excinfo)
        with pytest.raises(ClientError) as excinfo:
            client.update_endpoint(ApplicationId=theirs, EndpointId="e1", EndpointRequest=endpoint)
        assert theirs in forbidden(excinfo)
        with pytest.raises(ClientError) as excinfo:
            client.delete_app(ApplicationId=theirs)
        forbidden(excinfo)
        assert admin.get_app(ApplicationId=theirs)["ApplicationResponse"]["Id"] == theirs
        with pytest.raises(ClientError) as excinfo:
            client.create_app(CreateApplicationRequest={"Name": "new"})
        assert "cannot create" in forbidden(excinfo)
        with pytest.raises(ClientError) as excinfo:
            client.list_templates()
        assert "account-wide" in forbidden(excinfo)

        their_arn = admin.get_app(ApplicationId=theirs)["ApplicationResponse"]["Arn"]
        my_arn = client.get_app(ApplicationId=mine)["ApplicationResponse"]["Arn"]
        with pytest.raises(ClientError) as excinfo:
            client.tag_resource(ResourceArn=their_arn, TagsModel={"tags": {"a": "b"}})
        assert theirs in forbidden(excinfo)
        with pytest.raises(ClientError) as excinfo:
            client.list_tags_for_resource(ResourceArn=their_arn)
        forbidden(excinfo)
        assert admin.list_tags_for_resource(ResourceArn=their_arn)["TagsModel"]["tags"] == {}
        client.tag_resource(ResourceArn=my_arn, TagsModel={"tags": {"a": "b"}})
        assert client.list_tags_for_resource(ResourceArn=my_arn)["TagsModel"]["tags"] == {"a": "b"}
        template_arn = my_arn.split(":apps/")[0] + ":templates/welcome/EMAIL"
        with pytest.raises(ClientError) as excinfo:
            client.list_tags_for_resource(ResourceArn=template_arn)
        assert "limited to projects" in forbidden(excinfo)


def test_operation_scoped_key(settings: Settings) -> None:
    sender = AccessKey(
        access_key_id="AKIDEVENTSONLY000001", secret_access_key="ev", operations=["PutEvents", "UpdateEndpoint"]
    )
    with running(settings.model_copy(update={"access_keys": [ADMIN, sender]})) as server:
        app_id = new_app(server.client())
        client = server.client(sender)
        events = {
            "BatchItem": {
                "e1": {"Endpoint": {}, "Events": {"v1": {"EventType": "t", "Timestamp": datetime.now(UTC).isoformat()}}}
            }
        }
        assert (
            client.put_events(ApplicationId=app_id, EventsRequest=events)["ResponseMetadata"]["HTTPStatusCode"] == 202
        )
        endpoint = {"ChannelType": "EMAIL", "Address": "s@example.com"}
        client.update_endpoint(ApplicationId=app_id, EndpointId="e2", EndpointRequest=endpoint)
        for operation, call in [
            ("GetApp", lambda: client.get_app(ApplicationId=app_id)),
            ("GetEndpoint", lambda: client.get_endpoint(ApplicationId=app_id, EndpointId="e2")),
            ("CreateApp", lambda: client.create_app(CreateApplicationRequest={"Name": "x"})),
            ("DeleteApp", lambda: client.delete_app(ApplicationId=app_id)),
        ]:
            with pytest.raises(ClientError) as excinfo:
                call()
            message = forbidden(excinfo)
            assert operation in message
            assert sender.access_key_id in message
        admin = server.client()
        assert admin.get_endpoint(ApplicationId=app_id, EndpointId="e2")["EndpointResponse"]["Address"] == (
            "s@example.com"
        )


# --------------------------------------------------------------------------------------------------------------
# Session credentials and insecure mode


def test_session_credentials(server: RunningServer) -> None:
    def session_client(secret: str) -> Any:
        return boto3.client(
            "pinpoint",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id=ADMIN.access_key_id,
            aws_secret_access_key=secret,
            aws_session_token="FwoGZXIvYXdzEBYaDH+session/token==",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    signed_headers: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        signed_headers.append(request.headers["Authorization"].decode().split("SignedHeaders=")[1].split(",")[0])

    client = session_client(ADMIN.secret_access_key)
    client.meta.events.register("before-send.pinpoint", capture)
    assert client.get_apps()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "x-amz-security-token" in signed_headers[0].split(";")

    with pytest.raises(ClientError) as excinfo:
        session_client("wrong").get_apps()
    assert "signature" in forbidden(excinfo)


def test_insecure_mode_accepts_any_credentials(settings: Settings) -> None:
    insecure = settings.model_copy(update={"insecure_any_credentials": True, "access_keys": [], "region": "us-east-1"})
    with running(insecure) as server:
        stranger = server.client(STRANGER, region="sa-east-1")
        app = stranger.create_app(CreateApplicationRequest={"Name": "dev"})["ApplicationResponse"]
        assert app["Arn"].startswith("arn:aws:mobiletargeting:sa-east-1:")
        other = server.client(AccessKey(access_key_id="ANYTHING", secret_access_key="x"), region="eu-central-1")
        assert other.get_app(ApplicationId=app["Id"])["ApplicationResponse"]["Arn"].startswith(
            "arn:aws:mobiletargeting:eu-central-1:"
        )
        # no signature at all: the configured region
        unsigned = unsigned_client(server, region="ap-south-1")
        assert unsigned.get_app(ApplicationId=app["Id"])["ApplicationResponse"]["Arn"].startswith(
            "arn:aws:mobiletargeting:us-east-1:"
        )
        assert auth_failures(server, "missing") == 0
