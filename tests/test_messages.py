"""Direct sends (SendMessages, SendUsersMessages), outcome events, email tracking links and GetInAppMessages,
through boto3 against a real server on both stores.

Delivery goes through the `log` transport (`delivery.dry_run`), a real component operators use for dry runs: it
logs each rendered message, which is what these tests read to see what a recipient would get.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
import trustme
from aiosmtpd.controller import Controller
from botocore.exceptions import ClientError
from conftest import ADMIN, RunningServer, free_port
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from push_stubs import ApnsStub, H2Stub, server_context
from structlog.testing import capture_logs

from clarion.channels.config import (
    DeliverySettings,
    GenericHttpSettings,
    PushSettings,
    SmsSettings,
    SmtpSettings,
    TrackingSettings,
)
from clarion.channels.delivery import ProviderReport
from clarion.config import AccessKey, Settings
from clarion.messages.inapp import put_in_app_message
from clarion.outbound.config import OutboundSettings
from clarion.store import events as event_store
from clarion.store import messages as message_store

# Where the local providers listen: the guarded client reaches it only where the settings allow it.
LOOPBACK = OutboundSettings(allow_networks=["127.0.0.0/8"])


@contextmanager
def running(settings: Settings, **delivery: Any) -> Iterator[RunningServer]:
    base_url = f"http://127.0.0.1:{settings.port}"
    values: dict[str, Any] = {"tracking": TrackingSettings(base_url=base_url, key="test-tracking-key"), **delivery}
    server = RunningServer(settings.model_copy(update={"delivery": DeliverySettings(**values)})).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sender(migrated_settings: Settings) -> Iterator[RunningServer]:
    with running(migrated_settings, dry_run=True) as server:
        yield server


def new_app(client: Any) -> str:
    return client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]


def events_of(server: RunningServer, app_id: str) -> list[dict[str, Any]]:
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 100)))
    return [{"endpoint": row.endpoint_id, **msgspec.json.decode(row.doc)} for row in reversed(rows)]


def logged(logs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The messages the log transport delivered, by address."""
    return {entry["address"]: entry for entry in logs if entry["event"] == "message_logged"}


def put_endpoint(client: Any, app_id: str, endpoint_id: str, **request: Any) -> None:
    client.update_endpoint(ApplicationId=app_id, EndpointId=endpoint_id, EndpointRequest=request)


EMAIL_CONFIG = {
    "EmailMessage": {
        "FromAddress": "shop@example.com",
        "SimpleEmail": {
            "Subject": {"Data": "Hello {{Name}}"},
            "HtmlPart": {
                "Data": '<html><body><p>Hi {{Name}}</p><a href="https://example.com/offer?a=1&amp;b=2">Offer</a> '
                '<a href="mailto:help@example.com">Help</a></body></html>'
            },
            "TextPart": {"Data": "Hi {{Name}}"},
        },
        "Substitutions": {"Name": ["friend"]},
    },
    "SMSMessage": {"Body": "Code {{Code}} for {{Address}}", "MessageType": "TRANSACTIONAL"},
    "DefaultMessage": {"Substitutions": {"Code": ["000"]}},
}


def test_send_to_addresses(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    with capture_logs() as logs:
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {
                    "ana@example.com": {"ChannelType": "EMAIL", "Substitutions": {"Name": ["Ana"]}},
                    "bo@example.com": {"ChannelType": "EMAIL", "TitleOverride": "Just for {{Name}}"},
                    "+14255550100": {"ChannelType": "SMS", "Substitutions": {"Code": ["4711"]}},
                },
                "Context": {"order": "o-17"},
                "MessageConfiguration": EMAIL_CONFIG,
            },
        )["MessageResponse"]
    assert response["ApplicationId"] == app_id and response["RequestId"]
    results = response["Result"]
    assert set(results) == {"ana@example.com", "bo@example.com", "+14255550100"}
    for result in results.values():
        assert result["DeliveryStatus"] == "SUCCESSFUL" and result["StatusCode"] == 200 and result["MessageId"]
    sent = logged(logs)
    ana = sent["ana@example.com"]["content"]
    assert ana["subject"] == "Hello Ana" and ana["text"] == "Hi Ana" and ana["from_address"] == "shop@example.com"
    assert "<p>Hi Ana</p>" in ana["html"]
    assert ana["unsubscribe_url"].startswith(f"{sender.url}/t/u/")
    assert sent["bo@example.com"]["content"]["subject"] == "Just for friend"  # recipient override, rendered
    assert sent["+14255550100"]["content"]["body"] == "Code 4711 for +14255550100"

    events = events_of(sender, app_id)
    kinds = sorted(event["EventType"] for event in events)
    assert kinds == ["_SMS.BUFFERED", "_email.send", "_email.send"]
    email_event = next(e for e in events if e["Attributes"].get("destination") == "ana@example.com")
    assert email_event["Attributes"]["message_id"] == results["ana@example.com"]["MessageId"]
    assert email_event["Attributes"]["order"] == "o-17"  # MessageRequest.Context joins the event attributes


def test_send_to_endpoints_with_template(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    client.create_email_template(
        TemplateName="welcome",
        EmailTemplateRequest={
            "Subject": "Welcome {{User.UserAttributes.FirstName}}",
            "HtmlPart": "<p>{{Attributes.Plan}} plan, {{Greeting}}</p>",
            "DefaultSubstitutions": '{"Greeting": "cheers", "Attributes": {"Plan": "free"}}',
        },
    )
    user = {"UserId": "u1", "UserAttributes": {"FirstName": ["Jane"]}}
    put_endpoint(
        client,
        app_id,
        "active",
        ChannelType="EMAIL",
        Address="jane@example.com",
        User=user,
        Attributes={"Plan": ["gold"]},
    )
    put_endpoint(client, app_id, "plain", ChannelType="EMAIL", Address="max@example.com")
    put_endpoint(client, app_id, "gone", ChannelType="EMAIL", Address="gone@example.com", OptOut="ALL")
    put_endpoint(client, app_id, "asleep", ChannelType="EMAIL", Address="zz@example.com", EndpointStatus="INACTIVE")
    with capture_logs() as logs:
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {"jane@example.com": {"ChannelType": "EMAIL"}},
                "Endpoints": {
                    "active": {},
                    "plain": {"Substitutions": {"Greeting": ["hello"]}},
                    "gone": {},
                    "asleep": {},
                    "nobody": {},
                },
                "MessageConfiguration": {"EmailMessage": {"FromAddress": "shop@example.com"}},
                "TemplateConfiguration": {"EmailTemplate": {"Name": "welcome"}},
            },
        )["MessageResponse"]
    assert response["Result"]["jane@example.com"]["DeliveryStatus"] == "SUCCESSFUL"
    endpoints = response["EndpointResult"]
    assert endpoints["active"]["DeliveryStatus"] == "DUPLICATE"  # the same address was already in Addresses
    assert endpoints["active"]["Address"] == "jane@example.com"
    assert endpoints["plain"]["DeliveryStatus"] == "SUCCESSFUL"
    assert endpoints["gone"]["DeliveryStatus"] == "OPT_OUT"
    assert (
        endpoints["asleep"]["DeliveryStatus"] == "PERMANENT_FAILURE"
        and "INACTIVE" in endpoints["asleep"]["StatusMessage"]
    )
    assert endpoints["nobody"]["DeliveryStatus"] == "PERMANENT_FAILURE" and endpoints["nobody"]["StatusCode"] == 404
    sent = logged(logs)
    assert set(sent) == {"jane@example.com", "max@example.com"}
    plain = sent["max@example.com"]["content"]
    assert plain["subject"] == "Welcome " and "free plan, hello" in plain["html"]  # default fills, override wins

    with capture_logs() as logs:
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Endpoints": {"active": {}},
                "MessageConfiguration": {"EmailMessage": {"FromAddress": "shop@example.com"}},
                "TemplateConfiguration": {"EmailTemplate": {"Name": "welcome", "Version": "1"}},
            },
        )["MessageResponse"]
    assert response["EndpointResult"]["active"]["DeliveryStatus"] == "SUCCESSFUL"
    jane = logged(logs)["jane@example.com"]["content"]
    assert jane["subject"] == "Welcome Jane" and "gold plan, cheers" in jane["html"]


def test_send_users_messages(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    user = {"UserId": "u1", "UserAttributes": {"FirstName": ["Jane"]}}
    put_endpoint(client, app_id, "mail", ChannelType="EMAIL", Address="jane@example.com", User=user)
    put_endpoint(client, app_id, "phone", ChannelType="SMS", Address="+14255550101", User=user)
    put_endpoint(client, app_id, "push", ChannelType="GCM", Address="token-1", User={"UserId": "u2"})
    with capture_logs() as logs:
        response = client.send_users_messages(
            ApplicationId=app_id,
            SendUsersMessageRequest={
                "Users": {"u1": {"Substitutions": {"Extra": ["!"]}}, "u2": {}, "nobody": {}},
                "MessageConfiguration": {
                    "DefaultMessage": {"Body": "Hi {{User.UserAttributes.FirstName}}{{Extra}}"},
                    "EmailMessage": {"FromAddress": "shop@example.com", "SimpleEmail": {"Subject": {"Data": "News"}}},
                    "GCMMessage": {"Title": "For {{User.UserId}}", "Data": {"k": "v"}},
                },
            },
        )["SendUsersMessageResponse"]
    result = response["Result"]
    assert set(result["u1"]) == {"mail", "phone"} and set(result["u2"]) == {"push"} and result["nobody"] == {}
    assert all(r["DeliveryStatus"] == "SUCCESSFUL" for user_result in result.values() for r in user_result.values())
    sent = logged(logs)
    assert sent["jane@example.com"]["content"]["text"] == "Hi Jane!"
    assert sent["+14255550101"]["content"]["body"] == "Hi Jane!"
    push = sent["token-1"]["content"]
    assert push["title"] == "For u2" and push["body"] == "Hi " and push["data"] == {"k": "v"}
    kinds = sorted(e["EventType"] for e in events_of(sender, app_id))
    assert kinds == ["_SMS.BUFFERED", "_email.send"]  # transactional push records no event (as in Pinpoint)


def test_trace_id_makes_a_retry_idempotent(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    request = {
        "Addresses": {"+14255550102": {"ChannelType": "SMS"}},
        "MessageConfiguration": {"SMSMessage": {"Body": "once"}},
        "TraceId": "order-42",
    }
    with capture_logs() as logs:
        first = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
        again = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
        other = client.send_messages(ApplicationId=app_id, MessageRequest={**request, "TraceId": "order-43"})
    assert len([entry for entry in logs if entry["event"] == "message_logged"]) == 2
    message_id = first["Result"]["+14255550102"]["MessageId"]
    assert again["Result"]["+14255550102"]["MessageId"] == message_id
    assert other["MessageResponse"]["Result"]["+14255550102"]["MessageId"] != message_id


def test_a_retry_finds_a_message_logged_under_the_older_request_key(sender: RunningServer) -> None:
    """Request keys are ordered now (a digest of the trace, then the endpoint key); a message an older server
    logged under a digest of everything is still found, so a send in flight across an upgrade is not repeated."""
    client = sender.client()
    app_id = new_app(client)
    put_endpoint(client, app_id, "E1", ChannelType="SMS", Address="+14255550103")
    old_key = hashlib.sha256(f"{app_id}\0order-44\0e:e1".encode()).hexdigest()
    row = message_store.MessageRow(
        "logged-before", app_id, old_key, "E1", None, "SMS", "+14255550103", None, None, None, None,
        "SUCCESSFUL", 200, "", "2026-12-01T00:00:00.000Z", "{}",
    )  # fmt: skip

    def upgraded(tx: Any) -> None:  # as migration 30 leaves a store that held keys of the older form
        message_store.insert(tx, [row])
        until = int((datetime.now(UTC) + timedelta(days=30)).timestamp() * 1000)
        tx.execute("INSERT INTO store_facts (name, value) VALUES ('legacy_request_keys_until', ?)", (str(until),))

    sender.run(lambda s: s.db.write(upgraded))
    request = {
        "Endpoints": {"E1": {}},
        "MessageConfiguration": {"SMSMessage": {"Body": "once"}},
        "TraceId": "order-44",
    }
    with capture_logs() as logs:
        response = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
        other = client.send_messages(ApplicationId=app_id, MessageRequest={**request, "TraceId": "order-45"})
    assert response["EndpointResult"]["E1"]["MessageId"] == "logged-before"
    assert len([entry for entry in logs if entry["event"] == "message_logged"]) == 1  # only order-45 was sent
    sent = uuid.UUID(other["MessageResponse"]["EndpointResult"]["E1"]["MessageId"])
    assert sent.version == 7  # time-ordered: the log's indexes grow at their end
    stored = sender.run(lambda s: s.db.read(lambda tx: message_store.get(tx, str(sent))))
    assert stored is not None and stored.request_key is not None and stored.request_key.endswith("e:e1")


def test_an_upgraded_store_that_held_request_keys_looks_up_the_older_form_for_30_days(tmp_path: Path) -> None:
    """Migration 30 notes whether the message log held request keys (all of the older form then); a store that
    held none never looks them up."""
    from clarion.store.database import SQLITE, Transaction, connect_sqlite
    from clarion.store.migrations import migrate

    def store(with_key: bool) -> int | None:
        conn = connect_sqlite(tmp_path / f"store-{with_key}.db")
        tx = Transaction(conn, SQLITE)
        tx._recorded = []
        migrate(tx)
        conn.execute("DROP TABLE store_facts")
        conn.execute("DELETE FROM schema_migrations WHERE version = 30")  # the store as it was before the upgrade
        row = message_store.MessageRow(
            "m1", "app", "ab" * 32 if with_key else None, "e1", None, "SMS", "+14255550103", None, None, None,
            None, "SUCCESSFUL", 200, "", "2026-12-01T00:00:00.000Z", "{}",
        )  # fmt: skip
        message_store.insert(tx, [row])
        assert migrate(tx) == [30]
        until = message_store.legacy_keys_until(tx)
        conn.close()
        return until

    assert store(with_key=False) is None
    until = store(with_key=True)
    expected = (datetime.now(UTC) + timedelta(days=30)).timestamp() * 1000
    assert until is not None and abs(until - expected) < 60_000


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_tracking_round_trip(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    put_endpoint(client, app_id, "e1", ChannelType="EMAIL", Address="ana@example.com")
    request = {"Endpoints": {"e1": {"Substitutions": {"Name": ["Ana"]}}}, "MessageConfiguration": EMAIL_CONFIG}
    with capture_logs() as logs:
        response = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
    message_id = response["EndpointResult"]["e1"]["MessageId"]
    content = logged(logs)["ana@example.com"]["content"]
    html = content["html"]
    links = re.findall(r'href="([^"]+)"', html)
    assert links[1] == "mailto:help@example.com"  # only http(s) links are tracked
    click = links[0].replace("&amp;", "&")
    assert click.startswith(f"{sender.url}/t/c/")
    pixel = re.search(r'<img src="([^"]+)"', html)
    assert pixel and html.index(pixel.group(0)) < html.index("</body>")

    status, headers, body = fetch(pixel.group(1))
    assert status == 200 and headers["content-type"] == "image/gif" and body.startswith(b"GIF89a")
    status, headers, _ = fetch(click)
    assert status == 302 and headers["location"] == "https://example.com/offer?a=1&b=2"

    # A tampered link or another kind's token is refused, and records nothing.
    token = click.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    evil = msgspec.json.encode({"m": message_id, "u": "https://evil.example"}).hex()
    assert fetch(f"{sender.url}/t/c/{evil}.{signature}")[0] == 404
    assert fetch(f"{sender.url}/t/c/{payload}.{signature[:-2]}AA")[0] == 404
    assert fetch(f"{sender.url}/t/u/{token}")[0] == 404

    unsubscribe = content["unsubscribe_url"]
    status, _, page = fetch(unsubscribe)  # GET: a confirmation page; link scanners must not unsubscribe
    assert status == 200 and b'method="post"' in page
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="e1")["EndpointResponse"]["OptOut"] == "NONE"
    status, _, page = fetch(unsubscribe, data=b"List-Unsubscribe=One-Click")  # RFC 8058 one-click POST
    assert status == 200 and b"Unsubscribed" in page
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="e1")["EndpointResponse"]["OptOut"] == "ALL"

    events = [e for e in events_of(sender, app_id) if e["endpoint"] == "e1"]
    assert [e["EventType"] for e in events] == ["_email.send", "_email.open", "_email.click", "_email.unsubscribe"]
    assert events[2]["Attributes"]["url"] == "https://example.com/offer?a=1&b=2"
    assert all(e["Attributes"]["message_id"] == message_id for e in events)

    again = client.send_messages(ApplicationId=app_id, MessageRequest=request)["MessageResponse"]
    assert again["EndpointResult"]["e1"]["DeliveryStatus"] == "OPT_OUT"
    bare = {"Addresses": {"ana@example.com": {"ChannelType": "EMAIL"}}, "MessageConfiguration": EMAIL_CONFIG}
    again = client.send_messages(ApplicationId=app_id, MessageRequest=bare)["MessageResponse"]
    assert again["Result"]["ana@example.com"]["DeliveryStatus"] == "OPT_OUT"  # the address is suppressed too


def test_provider_reports(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    put_endpoint(client, app_id, "phone", ChannelType="SMS", Address="+14255550103")
    response = client.send_messages(
        ApplicationId=app_id,
        MessageRequest={"Endpoints": {"phone": {}}, "MessageConfiguration": {"SMSMessage": {"Body": "hi"}}},
    )["MessageResponse"]
    message_id = response["EndpointResult"]["phone"]["MessageId"]
    # The log transport reports Clarion's id as the provider's: a delivery receipt finds the message by it.
    receipt = ProviderReport("_SMS.SUCCESS", "SMS", provider_message_id=message_id, attributes={"carrier": "x"})
    stop = ProviderReport("_SMS.OPTOUT", "SMS", address="+14255550103", opt_out=True)
    unknown = ProviderReport("_SMS.SUCCESS", "SMS", provider_message_id="never-sent")
    sender.run(lambda s: s.record_outcomes([receipt, stop, unknown]))
    sender.run(lambda s: s.record_outcomes([receipt]))  # a re-delivered webhook records nothing new
    events = events_of(sender, app_id)
    assert [e["EventType"] for e in events] == ["_SMS.BUFFERED", "_SMS.SUCCESS", "_SMS.OPTOUT"]
    assert events[1]["Attributes"]["carrier"] == "x" and events[1]["Attributes"]["message_id"] == message_id
    assert client.get_endpoint(ApplicationId=app_id, EndpointId="phone")["EndpointResponse"]["OptOut"] == "ALL"
    logged_rows = sender.run(lambda s: s.db.read(lambda tx: message_store.recent(tx, app_id, 10)))
    assert [(row.endpoint_id, row.channel, row.status) for row in logged_rows] == [("phone", "SMS", "SUCCESSFUL")]


def test_channel_not_configured(settings: Settings) -> None:
    with running(settings) as server:
        client = server.client()
        app_id = new_app(client)
        response = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {"+14255550104": {"ChannelType": "SMS"}, "tok": {"ChannelType": "GCM"}},
                "MessageConfiguration": {"DefaultMessage": {"Body": "hi"}},
            },
        )["MessageResponse"]
        for result in response["Result"].values():
            assert result["DeliveryStatus"] == "PERMANENT_FAILURE"
            assert "channel is not configured for this project" in result["StatusMessage"]
        assert events_of(server, app_id)[0]["EventType"] == "_SMS.FAILURE"


def bad_request(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    error = excinfo.value.response["Error"]
    assert error["Code"] == "BadRequestException", error
    return error["Message"]


def test_bad_requests(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    config = {"DefaultMessage": {"Body": "hi"}}

    def send(**request: Any) -> None:
        client.send_messages(ApplicationId=app_id, MessageRequest={"MessageConfiguration": config, **request})

    with pytest.raises(ClientError) as excinfo:
        send()
    assert "no recipients" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        send(Addresses={f"+1425555{i:04d}": {"ChannelType": "SMS"} for i in range(101)})
    assert "at most 100" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        send(Addresses={"a@example.com": {}})
    assert "ChannelType is required" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {"x": {"ChannelType": "SMS"}},
                "MessageConfiguration": {"SMSMessage": {"Body": "{{#if}}broken"}},
            },
        )
    assert "MessageConfiguration.SMSMessage.Body" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        send(
            Addresses={"x": {"ChannelType": "EMAIL"}},
            MessageConfiguration={"EmailMessage": {"RawEmail": {"Data": b"x"}}},
        )
    assert "RawEmail.Data cannot be sent: it has no empty line" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        send(Addresses={"x": {"ChannelType": "SMS"}}, TemplateConfiguration={"InAppTemplate": {"Name": "t"}})
    assert "InAppTemplate" in bad_request(excinfo)
    with pytest.raises(ClientError) as excinfo:
        send(Addresses={"x": {"ChannelType": "SMS"}}, TemplateConfiguration={"SMSTemplate": {"Name": "missing"}})
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.send_users_messages(
            ApplicationId="no-such-app", SendUsersMessageRequest={"Users": {"u": {}}, "MessageConfiguration": config}
        )
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
    for recipients in ({"Addresses": {"x": {"ChannelType": "SMS"}}}, {"Endpoints": {"e": {}}}):
        with pytest.raises(ClientError) as excinfo:
            client.send_messages(
                ApplicationId="no-such-app", MessageRequest={**recipients, "MessageConfiguration": config}
            )
        assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
        assert "no-such-app" in excinfo.value.response["Error"]["Message"]


def test_in_app_messages(sender: RunningServer) -> None:
    client = sender.client()
    app_id = new_app(client)
    put_endpoint(client, app_id, "Device-1", ChannelType="IN_APP", Address="device-1")
    now = datetime.now(UTC)
    content = [{"BodyConfig": {"Alignment": "LEFT", "Body": "Sale", "TextColor": "#000000"}}]

    def campaign(campaign_id: str, priority: int, end: datetime) -> dict[str, Any]:
        return {
            "CampaignId": campaign_id,
            "TreatmentId": "0",
            "Priority": priority,
            "DailyCap": 1,
            "InAppMessage": {"Layout": "BOTTOM_BANNER", "Content": content},
            "Schedule": {"EndDate": end.isoformat(), "EventFilter": {"FilterType": "SYSTEM", "Dimensions": {}}},
        }

    later = now + timedelta(days=1)
    for message in (campaign("low", 3, later), campaign("high", 1, later), campaign("over", 2, now - timedelta(1))):
        sender.run(lambda s, m=message: s.db.write(lambda tx: put_in_app_message(tx, app_id, ["device-1"], m, now)))
    response = client.get_in_app_messages(ApplicationId=app_id, EndpointId="DEVICE-1")["InAppMessagesResponse"]
    campaigns = response["InAppMessageCampaigns"]
    assert [c["CampaignId"] for c in campaigns] == ["high", "low"]  # priority order, ended campaign not served
    assert campaigns[0]["InAppMessage"]["Content"][0]["BodyConfig"]["Body"] == "Sale"
    assert campaigns[0]["DailyCap"] == 1 and campaigns[0]["TreatmentId"] == "0"
    other = client.get_in_app_messages(ApplicationId=app_id, EndpointId="other")["InAppMessagesResponse"]
    assert other["InAppMessageCampaigns"] == []


def test_send_only_key(settings: Settings) -> None:
    """docs/messages.md: a key that can only send, for one project, from its own networks."""
    with running(settings, dry_run=True) as server:
        admin = server.client()
        mine, theirs = new_app(admin), new_app(admin)
    send_only = AccessKey(
        access_key_id="AKIDSENDONLY00000001",
        secret_access_key="send",
        projects=[mine],
        operations=["SendMessages", "SendUsersMessages"],
        allow_networks=["127.0.0.0/8"],
    )
    elsewhere = send_only.model_copy(update={"access_key_id": "AKIDSENDONLY00000002", "allow_networks": ["10.0.0.0/8"]})
    with running(settings.model_copy(update={"access_keys": [ADMIN, send_only, elsewhere]}), dry_run=True) as server:
        client = server.client(send_only)
        request = {
            "Addresses": {"+14255550105": {"ChannelType": "SMS"}},
            "MessageConfiguration": {"SMSMessage": {"Body": "ok"}},
        }
        result = client.send_messages(ApplicationId=mine, MessageRequest=request)["MessageResponse"]["Result"]
        assert result["+14255550105"]["DeliveryStatus"] == "SUCCESSFUL"
        for call in (
            lambda: client.get_endpoint(ApplicationId=mine, EndpointId="e"),
            lambda: client.send_messages(ApplicationId=theirs, MessageRequest=request),
            lambda: server.client(elsewhere).send_messages(ApplicationId=mine, MessageRequest=request),
        ):
            with pytest.raises(ClientError) as excinfo:
                call()
            assert excinfo.value.response["Error"]["Code"] == "ForbiddenException"


class Gateway(BaseHTTPRequestHandler):
    """A generic HTTP SMS gateway: records each JSON request and answers a provider message id."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(msgspec.json.decode(body))
        answer = msgspec.json.encode({"id": f"gw-{len(self.received)}"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # the http.server API
        return None


class Inbox:
    """An aiosmtpd handler keeping every message that arrives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # the aiosmtpd API
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 2.0.0 Ok: queued"


def test_real_delivery_over_smtp_and_an_sms_gateway(settings: Settings) -> None:
    inbox = Inbox()
    relay = Controller(inbox, hostname="127.0.0.1", port=free_port())
    relay.start()
    Gateway.received = []
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    sms = SmsSettings(
        provider="http",
        http=GenericHttpSettings(
            url=f"http://127.0.0.1:{gateway.server_port}/send",
            body={"to": "{to}", "text": "{body}", "ref": "{message_id}"},
            message_id_path="id",
        ),
    )
    smtp = SmtpSettings(host="127.0.0.1", port=relay.port, security="none")
    try:
        with running(settings.model_copy(update={"outbound": LOOPBACK}), smtp=smtp, sms=sms) as server:
            client = server.client()
            app_id = new_app(client)
            client.update_email_channel(
                ApplicationId=app_id,
                EmailChannelRequest={
                    "FromAddress": "shop@example.com",
                    "Identity": "arn:aws:ses:eu-west-1:000000000000:identity/example.com",
                    "Enabled": True,
                },
            )
            client.update_sms_channel(ApplicationId=app_id, SMSChannelRequest={"Enabled": True})
            put_endpoint(client, app_id, "phone", ChannelType="SMS", Address="+14255550106")
            response = client.send_messages(
                ApplicationId=app_id,
                MessageRequest={
                    "Addresses": {"ana@example.com": {"ChannelType": "EMAIL", "Substitutions": {"Name": ["Ana"]}}},
                    "Endpoints": {"phone": {"Substitutions": {"Code": ["123"]}}},
                    "MessageConfiguration": {
                        **EMAIL_CONFIG,
                        "EmailMessage": {k: v for k, v in EMAIL_CONFIG["EmailMessage"].items() if k != "FromAddress"},
                    },
                },
            )["MessageResponse"]
            assert response["Result"]["ana@example.com"]["DeliveryStatus"] == "SUCCESSFUL"
            phone = response["EndpointResult"]["phone"]
            assert phone["DeliveryStatus"] == "SUCCESSFUL"

            [mail] = inbox.messages
            assert mail["Subject"] == "Hello Ana" and "shop@example.com" in mail["From"]  # the channel's sender
            assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert f"{server.url}/t/u/" in mail["List-Unsubscribe"]
            html = mail.get_body(("html",)).get_content()
            assert f"{server.url}/t/c/" in html and f"{server.url}/t/o/" in html

            [sent] = Gateway.received
            assert sent == {"to": "+14255550106", "text": "Code 123 for +14255550106", "ref": phone["MessageId"]}
            # The gateway's delivery receipt, as its webhook would hand it over, finds the message by its own id.
            server.run(lambda s: s.record_outcomes([ProviderReport("_SMS.SUCCESS", "SMS", provider_message_id="gw-1")]))
            events = [(e["endpoint"], e["EventType"]) for e in events_of(server, app_id)]
            assert sorted(events) == [("", "_email.send"), ("phone", "_SMS.BUFFERED"), ("phone", "_SMS.SUCCESS")]
    finally:
        gateway.shutdown()
        relay.stop()


@contextmanager
def apns_provider(stub: ApnsStub, ca: trustme.CA) -> Iterator[str]:
    """A local APNs (tests/push_stubs.py) on its own event loop thread; yields its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = H2Stub(stub, server_context(ca.issue_cert("localhost")))
    try:
        yield asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_push_through_apns(settings: Settings, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    key = ec.generate_private_key(ec.SECP256R1())
    stub = ApnsStub(key.public_key(), "KEY7654321", "TEAM123456", "com.example.shop")
    with apns_provider(stub, ca) as url:
        push = PushSettings(apns_url=url, apns_sandbox_url=url, ca_file=str(ca_file))
        with running(settings.model_copy(update={"outbound": LOOPBACK}), push=push) as server:
            client = server.client()
            app_id = new_app(client)
            pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
            client.update_apns_channel(
                ApplicationId=app_id,
                APNSChannelRequest={
                    "BundleId": "com.example.shop",
                    "TeamId": "TEAM123456",
                    "TokenKey": pem,
                    "TokenKeyId": "KEY7654321",
                    "DefaultAuthenticationMethod": "TOKEN",
                    "Enabled": True,
                },
            )
            device = "ab" * 32
            put_endpoint(client, app_id, "phone", ChannelType="APNS", Address=device, User={"UserId": "u7"})
            response = client.send_messages(
                ApplicationId=app_id,
                MessageRequest={
                    "Endpoints": {"phone": {}},
                    "Addresses": {"410" + "cd" * 30 + "0": {"ChannelType": "APNS"}},
                    "Context": {"order": "o-9"},
                    "MessageConfiguration": {
                        "DefaultPushNotificationMessage": {"Title": "Hi {{User.UserId}}", "Body": "Order shipped"},
                        "APNSMessage": {"Badge": 2, "Data": {"order": "o-9"}},
                    },
                },
            )["MessageResponse"]
    result = response["EndpointResult"]["phone"]
    assert result["DeliveryStatus"] == "SUCCESSFUL" and result["StatusCode"] == 200
    gone = next(iter(response["Result"].values()))
    assert gone["DeliveryStatus"] == "PERMANENT_FAILURE" and "Unregistered" in gone["StatusMessage"]
    [delivered] = stub.delivered
    assert delivered.path == f"/3/device/{device}"
    assert delivered.headers["apns-id"] == result["MessageId"]
    payload = delivered.json()
    assert payload["aps"]["alert"] == {"title": "Hi u7", "body": "Order shipped"} and payload["aps"]["badge"] == 2
    assert payload["data"]["pinpoint"]["order"] == "o-9"  # MessageRequest.Context reaches the device


def test_a_message_without_template_syntax_is_rendered_once_for_everyone() -> None:
    """Push, SMS and voice content that holds no `{{` is the same for every recipient without overrides: rendered
    for the first and handed to the others as it is; one with a variable, or a recipient's override, is their own."""
    from clarion.messages.rendering import MessageBuilder, Recipient

    async def contents(config: dict[str, Any], recipients: list[Recipient]) -> list[Any]:
        builder = MessageBuilder(config, {})
        return [await builder.content(recipient, None, None) for recipient in recipients]

    plain = {"GCMMessage": {"Title": "Hello", "Body": "World", "Data": {"k": "v"}}}
    personal = {"GCMMessage": {"Title": "Hello {{User.UserAttributes.Name}}", "Body": "World"}}
    ana = Recipient("GCM", {"User": {"UserAttributes": {"Name": ["Ana"]}}}, {})
    bo = Recipient("GCM", {"User": {"UserAttributes": {"Name": ["Bo"]}}}, {})
    overridden = Recipient("GCM", {}, {"TitleOverride": "Just you"})
    first, second, third = asyncio.run(contents(plain, [ana, bo, overridden]))
    assert first is second and (first.title, first.body, dict(first.data)) == ("Hello", "World", {"k": "v"})
    assert third.title == "Just you"
    first, second = asyncio.run(contents(personal, [ana, bo]))
    assert (first.title, second.title) == ("Hello Ana", "Hello Bo")
