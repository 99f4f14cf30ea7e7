"""Input a hostile client controls, each refused or bounded where it enters: deep JSON, absurd timestamps in
signature headers, unsigned payloads, EffectiveDate, ids that are not UTF-8 or too long, replayed open pixels,
click links and STOP replies, and CUSTOM-channel addresses in one send."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import ADMIN, REGION, RunningServer
from structlog.testing import capture_logs

from clarion.channels.config import DeliverySettings, GenericHttpSettings, SmsSettings, TrackingSettings, TwilioSettings
from clarion.channels.custom import sign as clarion_sign
from clarion.channels.sms import generic_webhooks, twilio_webhooks
from clarion.config import Settings
from clarion.store import events as event_store

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated


@contextmanager
def running(settings: Settings, **delivery: Any) -> Iterator[RunningServer]:
    server = RunningServer(settings.model_copy(update={"delivery": DeliverySettings(**delivery)})).start()
    try:
        yield server
    finally:
        server.stop()


def signed_raw(
    server: RunningServer, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """A request signed by botocore's signer over exactly these path and body bytes."""
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(ADMIN.access_key_id, ADMIN.secret_access_key), "mobiletargeting", REGION).add_auth(request)
    prepared = request.prepare()
    response = urllib3.request(method, prepared.url, body=body, headers=dict(prepared.headers), retries=False)
    return response.status, json.loads(response.data or b"{}")


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def new_app(client: Any) -> str:
    return client.create_app(CreateApplicationRequest={"Name": "p"})["ApplicationResponse"]["Id"]


def opt_out_of(client: Any, app_id: str, endpoint_id: str) -> str:
    return client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)["EndpointResponse"]["OptOut"]


# --------------------------------------------------------------------------------------------------------------
# Bodies and headers


def test_deeply_nested_json_is_a_bad_request(server: RunningServer) -> None:
    depth = 100_000
    body = b'{"Name": "deep", "Unknown": ' + b"[" * depth + b"]" * depth + b"}"
    status, answer = signed_raw(server, "POST", "/v1/apps", body, {"Content-Type": "application/json"})
    assert status == 400, answer
    assert answer["__type"] == "BadRequestException"
    assert "nested too deeply" in answer["Message"]
    assert server.client().get_apps()["ApplicationsResponse"]["Item"] == []


FAKE_SIGNATURE = "0" * 64


@pytest.mark.parametrize(
    ("where", "headers", "query"),
    [
        ("X-Amz-Date", {"X-Amz-Date": "9" * 5000}, ""),
        ("Date", {"Date": "Sun, 22 Nov " + "9" * 5000 + " 10:15:00 GMT"}, ""),
        (
            "X-Amz-Expires",
            {},
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261122%2Fus-east-1%2Fmobiletargeting"
            "%2Faws4_request&X-Amz-Date=20261122T101500Z&X-Amz-SignedHeaders=host&X-Amz-Signature="
            + FAKE_SIGNATURE
            + "&X-Amz-Expires="
            + "9" * 5000,
        ),
    ],
)
def test_absurd_signature_times_are_refused_not_failed(
    server: RunningServer, where: str, headers: dict[str, str], query: str
) -> None:
    if not query:
        headers = {
            **headers,
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/mobiletargeting/aws4_request, "
            f"SignedHeaders=host, Signature={FAKE_SIGNATURE}",
        }
    response = urllib3.request("GET", f"{server.url}/v1/apps?{query}", headers=headers, retries=False)
    assert response.status == 403, (where, response.data[:300])
    answer = json.loads(response.data)
    assert answer["__type"] == "ForbiddenException"
    assert len(answer["Message"]) < 300, "the refusal does not echo the input back"


def test_absurd_webhook_timestamps_are_refused_not_failed(settings: Settings) -> None:
    sms = SmsSettings(http=GenericHttpSettings(webhook_secret="gw-secret"))
    public_key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAAAA"
    with running(settings, sms=sms, email_api={"webhook_public_key": public_key}) as server:
        generic = {"X-Clarion-Signature": "t=" + "9" * 5000 + ",v1=00", "Content-Type": "application/json"}
        status, body = post(server.url + generic_webhooks.PATH, b"[]", generic)
        assert status == 403 and b"must read t=" in body
        sendgrid = {
            "X-Twilio-Email-Event-Webhook-Signature": "AAAA",
            "X-Twilio-Email-Event-Webhook-Timestamp": "9" * 5000,
        }
        status, body = post(server.url + "/webhooks/email/sendgrid", b"[]", sendgrid)
        assert status == 403 and b"is not within" in body and len(body) < 300


def test_unsigned_payload_cannot_swap_the_body(server: RunningServer) -> None:
    """A captured request signed with UNSIGNED-PAYLOAD would verify with any body; the API refuses such signatures."""
    original = b'{"Name": "original"}'
    request = AWSRequest(
        method="POST",
        url=f"{server.url}/v1/apps",
        data=original,
        headers={"Content-Type": "application/json", "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    SigV4Auth(Credentials(ADMIN.access_key_id, ADMIN.secret_access_key), "mobiletargeting", REGION).add_auth(request)
    prepared = request.prepare()
    assert "x-amz-content-sha256" in prepared.headers["Authorization"]
    swapped = b'{"Name": "swapped"}'
    headers = {**dict(prepared.headers), "Content-Length": str(len(swapped))}
    response = urllib3.request("POST", prepared.url, body=swapped, headers=headers, retries=False)
    assert response.status == 403
    assert "UNSIGNED-PAYLOAD" in json.loads(response.data)["Message"]
    assert server.client().get_apps()["ApplicationsResponse"]["Item"] == []


# --------------------------------------------------------------------------------------------------------------
# Fields and ids


def test_effective_date_is_checked_not_replaced(client: Any, app_id: str) -> None:
    endpoint = {"ChannelType": "EMAIL", "Address": "a@example.com"}
    with pytest.raises(ClientError) as refused:
        client.update_endpoint(
            ApplicationId=app_id, EndpointId="e1", EndpointRequest={**endpoint, "EffectiveDate": "yesterday"}
        )
    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert "EffectiveDate" in refused.value.response["Error"]["Message"]
    batch = {"Item": [{**endpoint, "Id": "e2", "EffectiveDate": "2026-13-40"}]}
    with pytest.raises(ClientError) as refused:
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest=batch)
    assert "Item[0].EffectiveDate" in refused.value.response["Error"]["Message"]

    request = {**endpoint, "EffectiveDate": "2026-11-22T10:15:00Z"}
    client.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest=request)
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="e1")["EndpointResponse"]["EffectiveDate"]


def test_ids_that_are_not_utf8_are_refused_not_folded(server: RunningServer, client: Any, app_id: str) -> None:
    """%FF and %FE are different bytes; decoded leniently both became U+FFFD and named the same endpoint."""
    client.update_endpoint(
        ApplicationId=app_id, EndpointId="\ufffd", EndpointRequest={"ChannelType": "EMAIL", "Address": "r@example.com"}
    )
    for raw in ("%FF", "%FE", "ok%C3"):
        status, answer = signed_raw(server, "GET", f"/v1/apps/{app_id}/endpoints/{raw}")
        assert status == 400, (raw, answer)
        assert "EndpointId" in answer["Message"] and "UTF-8" in answer["Message"]
    status, answer = signed_raw(server, "GET", f"/v1/apps/{app_id}/endpoints/%EF%BF%BD")
    assert status == 200 and answer["Address"] == "r@example.com"
    status, answer = signed_raw(server, "GET", f"/v1/apps/{app_id}/segments?token=%FF")
    assert status == 400 and "query string" in answer["Message"]


def test_ids_are_bounded_in_length(server: RunningServer, client: Any, app_id: str) -> None:
    long_id = "e" * 1025
    status, answer = signed_raw(server, "GET", f"/v1/apps/{app_id}/endpoints/{long_id}")
    assert status == 400 and "at most 1024" in answer["Message"]
    batch = {"Item": [{"Id": long_id, "ChannelType": "EMAIL", "Address": "a@example.com"}]}
    with pytest.raises(ClientError) as refused:
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest=batch)
    assert "at most 1024" in refused.value.response["Error"]["Message"]
    user = {"ChannelType": "EMAIL", "Address": "a@example.com", "User": {"UserId": "u" * 1025}}
    with pytest.raises(ClientError) as refused:
        client.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest=user)
    assert "UserId" in refused.value.response["Error"]["Message"]
    fits = {"ChannelType": "EMAIL", "Address": "a@example.com"}
    client.update_endpoint(ApplicationId=app_id, EndpointId="e" * 1024, EndpointRequest=fits)


# --------------------------------------------------------------------------------------------------------------
# Replays


def events_of(server: RunningServer, app_id: str) -> list[str]:
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 100)))
    return [row.event_type for row in reversed(rows)]


def fetch(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_open_pixel_and_click_link_record_once(settings: Settings) -> None:
    tracking = TrackingSettings(base_url=f"http://127.0.0.1:{settings.port}", key="tracking-key")
    with running(settings, dry_run=True, tracking=tracking) as server:
        client = server.client()
        app_id = new_app(client)
        client.update_endpoint(
            ApplicationId=app_id, EndpointId="e1", EndpointRequest={"ChannelType": "EMAIL", "Address": "a@example.com"}
        )
        html = '<html><body><a href="https://example.com/a">A</a><a href="https://example.com/b">B</a></body></html>'
        config = {"EmailMessage": {"FromAddress": "s@example.com", "SimpleEmail": {"Subject": {"Data": "s"}}}}
        config["EmailMessage"]["SimpleEmail"]["HtmlPart"] = {"Data": html}
        with capture_logs() as logs:
            client.send_messages(
                ApplicationId=app_id, MessageRequest={"Endpoints": {"e1": {}}, "MessageConfiguration": config}
            )
        sent = next(entry for entry in logs if entry["event"] == "message_logged")["content"]["html"]
        first, second = [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', sent)]
        pixel = re.search(r'<img src="([^"]+)"', sent)
        assert pixel
        for _ in range(3):
            assert fetch(pixel.group(1)) == 200
            assert fetch(first) == 302
        assert fetch(second) == 302
        assert events_of(server, app_id) == ["_email.send", "_email.open", "_email.click", "_email.click"]


OK_NUMBER = "+14255550100"


def test_replayed_stop_cannot_undo_a_later_start(settings: Settings) -> None:
    sms = SmsSettings(
        twilio=TwilioSettings(account_sid="AC1", auth_token="twilio-token"),
        webhook_base_url="https://sms.example",
        http=GenericHttpSettings(webhook_secret="gw-secret"),
    )
    with running(settings, sms=sms) as server:
        client = server.client()
        app_id = new_app(client)
        endpoint = {"ChannelType": "SMS", "Address": OK_NUMBER}
        client.update_endpoint(ApplicationId=app_id, EndpointId="phone", EndpointRequest=endpoint)

        def generic(body: str, signed_at: int) -> tuple[int, bytes]:
            payload = json.dumps([{"type": "inbound", "from": OK_NUMBER, "to": "+1", "body": body}]).encode()
            headers = {"X-Clarion-Signature": clarion_sign("gw-secret", signed_at, payload)}
            return post(server.url + generic_webhooks.PATH, payload, headers)

        now = int(time.time())
        assert generic("STOP", now - 60)[0] == 204
        assert opt_out_of(client, app_id, "phone") == "ALL"
        assert generic("START", now - 30)[0] == 204
        assert opt_out_of(client, app_id, "phone") == "NONE"
        assert generic("STOP", now - 60)[0] == 204  # the first STOP, replayed byte for byte
        assert opt_out_of(client, app_id, "phone") == "NONE"
        assert generic("STOP", now - 45)[0] == 204  # delivered late: older than the START
        assert opt_out_of(client, app_id, "phone") == "NONE"
        assert generic("STOP", now)[0] == 204  # a new STOP after the START counts
        assert opt_out_of(client, app_id, "phone") == "ALL"

        def twilio(sid: str, body: str) -> int:
            path = twilio_webhooks.INBOUND_PATH
            params = {"MessageSid": sid, "From": OK_NUMBER, "To": "+1", "Body": body}
            signature = twilio_webhooks.twilio_signature(
                "twilio-token", "https://sms.example" + path, list(params.items())
            )
            headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
            return post(server.url + path, urlencode(params).encode(), headers)[0]

        assert twilio("SM-start", "START") == 200
        assert opt_out_of(client, app_id, "phone") == "NONE"
        assert twilio("SM-stop", "STOP") == 200
        assert twilio("SM-start-2", "START") == 200
        assert twilio("SM-stop", "STOP") == 200  # Twilio's STOP replayed: its MessageSid is already recorded
        assert opt_out_of(client, app_id, "phone") == "NONE"
        choices = [kind for kind in events_of(server, app_id) if kind in ("_SMS.OPTOUT", "_SMS.OPTIN")]
        assert choices == ["_SMS.OPTOUT", "_SMS.OPTIN", "_SMS.OPTOUT", "_SMS.OPTIN", "_SMS.OPTOUT", "_SMS.OPTIN"]


# --------------------------------------------------------------------------------------------------------------
# One send, several CUSTOM addresses


def test_custom_addresses_in_one_send_are_distinct_recipients(settings: Settings) -> None:
    with running(settings, dry_run=True) as server:
        client = server.client()
        app_id = new_app(client)
        addresses = {url: {"ChannelType": "CUSTOM"} for url in ("https://hooks.example/a", "https://hooks.example/b")}
        request = {"Addresses": addresses, "MessageConfiguration": {"DefaultMessage": {"Body": "hello"}}}
        result = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]["Result"]
        assert {url: item["DeliveryStatus"] for url, item in result.items()} == {
            "https://hooks.example/a": "SUCCESSFUL",
            "https://hooks.example/b": "SUCCESSFUL",
        }
