"""Event streams through the API and into a JSON-lines file sink, on both stores: PutEventStream, GetEventStream and
DeleteEventStream with Pinpoint's rules; every kind of event a project records arrives as one record that the
record schema (docs/event-streams.schema.json) accepts; a sink that is down holds records back, loses none, and the
lag shows in GetEventStream and the metrics.

Events come from Clarion's own paths: PutEvents, SendMessages and a campaign run through the log transport
(`delivery.dry_run`), provider and recipient reports through `Services.record_outcomes`. Journey sends are written
as the journey engine records them, with Pinpoint's attribute names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer
from structlog.testing import capture_logs

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import ProviderReport
from clarion.config import Settings
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker
from clarion.store import events as event_store
from clarion.store.events import EventRow
from clarion.store.streams import StreamEvent
from clarion.streams.config import StreamSettings
from clarion.streams.records import Lookups, RecordBuilder

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "event-streams.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/activity"
ROLE = "arn:aws:iam::123456789012:role/pinpoint-events"


def stream_settings(settings: Settings, **streams: Any) -> Settings:
    """The test settings with a file sink for Kinesis ARNs (files under <data_dir>/streams) and fast polling."""
    values: dict[str, Any] = {
        "sinks": [{"type": "file", "arn": "arn:aws:kinesis:*", "path": "{stream_name}.jsonl", "fsync": False}],
        "poll_seconds": 0.05,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        **streams,
    }
    return settings.model_copy(
        update={
            "streams": StreamSettings(**values),
            "delivery": DeliverySettings(dry_run=True),
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
        }
    )


@contextmanager
def streaming(settings: Settings, **streams: Any) -> Iterator[RunningServer]:
    server = RunningServer(stream_settings(settings, **streams)).start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """Poll until `condition` holds (the shipper runs on its own); a generous deadline for a loaded machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def records_in(folder: Path) -> list[dict[str, Any]]:
    """Every record in a file sink's files (rotated ones first, by name), each validated against the schema."""
    records = []
    for path in sorted(folder.glob("*.jsonl"), key=lambda p: (p.name.count("-") == 0, p.name)):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            VALIDATOR.validate(record)
            records.append(record)
    return records


def new_app(client: Any) -> str:
    return client.create_app(CreateApplicationRequest={"Name": "streamed"})["ApplicationResponse"]["Id"]


def put_stream(client: Any, app_id: str, arn: str = STREAM, role: str = ROLE) -> dict[str, Any]:
    return client.put_event_stream(
        ApplicationId=app_id, WriteEventStream={"DestinationStreamArn": arn, "RoleArn": role}
    )["EventStream"]


def put_events(client: Any, app_id: str, endpoint_id: str, events: dict[str, dict[str, Any]], **endpoint: Any) -> None:
    response = client.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {endpoint_id: {"Endpoint": endpoint, "Events": events}}}
    )
    statuses = response["EventsResponse"]["Results"][endpoint_id]["EventsItemResponse"]
    assert all(item["StatusCode"] == 202 for item in statuses.values()), statuses


def custom_events(count: int, start: int = 0) -> dict[str, dict[str, Any]]:
    return {
        f"e{n}": {"EventType": "level.done", "Timestamp": "2026-11-23T10:00:00Z", "Attributes": {"n": str(n)}}
        for n in range(start, start + count)
    }


def bad_request(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == "BadRequestException"
    return raised.value.response["Error"]["Message"]


def test_put_get_and_delete_follow_pinpoints_rules(settings: Settings) -> None:
    with streaming(settings) as server:
        client = server.client()
        app_id = new_app(client)
        with pytest.raises(ClientError) as missing:
            client.get_event_stream(ApplicationId=app_id)
        assert missing.value.response["Error"]["Code"] == "NotFoundException"

        assert "DestinationStreamArn" in bad_request(lambda: put_stream(client, app_id, arn="arn:aws:sqs:x"))
        assert "DestinationStreamArn" in bad_request(
            lambda: put_stream(client, app_id, arn="arn:aws:kinesis:us-east-1:123456789012:deliverystream/x")
        )
        assert "RoleArn" in bad_request(lambda: put_stream(client, app_id, role="pinpoint-role"))
        assert "RoleArn" in bad_request(lambda: put_stream(client, app_id, role=""))
        unmapped = bad_request(
            lambda: put_stream(client, app_id, arn="arn:aws:firehose:us-east-1:123456789012:deliverystream/x")
        )
        assert "not mapped to a sink" in unmapped and "streams.sinks" in unmapped
        # Without RoleArn at all (boto3 would not send it): refused naming the member.
        status, body = server.signed_request("POST", f"/v1/apps/{app_id}/eventstream", {"DestinationStreamArn": STREAM})
        assert status == 400 and "RoleArn" in body["Message"]

        put_events(client, app_id, "before", custom_events(2))  # before the stream: not streamed
        created = put_stream(client, app_id)
        assert created["ApplicationId"] == app_id and created["DestinationStreamArn"] == STREAM
        assert created["RoleArn"] == ROLE and created["LastUpdatedBy"] == "AKIDCLARIONADMIN0001"
        assert created["LastModifiedDate"].endswith("Z")
        put_events(client, app_id, "after", custom_events(3))
        folder = server.settings.data_dir / "streams"
        streamed = wait_for(lambda: len(records_in(folder)) >= 3 and records_in(folder), "three records")
        assert [r["client"]["client_id"] for r in streamed] == ["after"] * 3
        assert [r["attributes"]["n"] for r in streamed] == ["0", "1", "2"]  # in the order they were written

        got = client.get_event_stream(ApplicationId=app_id)["EventStream"]
        assert {k: got[k] for k in created} == created  # botocore keeps the modelled members
        # The delivery shows once the cursor moved past the records, a write that follows the sink's acknowledgement.
        delivery = wait_for(
            lambda: (
                (raw := server.signed_request("GET", f"/v1/apps/{app_id}/eventstream", {})[1]["ClarionDelivery"])
                and "LastDeliveredDate" in raw
                and raw
            ),
            "the delivery recorded",
        )
        assert delivery["Sink"] == "file" and delivery["LagRecords"] == 0 and delivery["ConsecutiveFailures"] == 0
        assert delivery["LastDeliveredDate"].endswith("Z")

        # The same destination again keeps the cursor; another destination starts from what comes next.
        put_stream(client, app_id)
        other = "arn:aws:kinesis:us-east-1:123456789012:stream/other"
        put_stream(client, app_id, arn=other)
        put_events(client, app_id, "later", custom_events(1, start=10))
        moved = wait_for(lambda: (folder / "other.jsonl").exists() and records_in(folder), "the new file")
        assert [r["client"]["client_id"] for r in moved].count("later") == 1
        assert json.loads((folder / "other.jsonl").read_text())["attributes"]["n"] == "10"

        deleted = client.delete_event_stream(ApplicationId=app_id)["EventStream"]
        assert deleted["DestinationStreamArn"] == other
        for call in (client.get_event_stream, client.delete_event_stream):
            with pytest.raises(ClientError) as gone:
                call(ApplicationId=app_id)
            assert gone.value.response["Error"]["Code"] == "NotFoundException"

        put_stream(client, app_id)
        client.delete_app(ApplicationId=app_id)
        assert server.project_row_counts(app_id)["event_streams"] == 0


def drive_campaigns(server: RunningServer) -> None:
    """One campaign scheduler pass, then the queue worked until nothing is due."""

    async def work(services: Any) -> None:
        worker = Worker(services.queue, services.queue_handlers, services.settings.queue)
        await services.campaign_scheduler.tick()
        while await worker.run_once():
            pass

    server.run(work)


def journey_send(app_id: str, endpoint_id: str, event_id: str, activity_type: str, at: int) -> EventRow:
    """A `_journey.send` as the journey engine records it (Pinpoint's attribute names)."""
    attributes = {
        "journey_id": "j-welcome",
        "journey_run_id": "run-1",
        "journey_activity_id": f"act-{activity_type.lower()}",
        "journey_activity_type": activity_type,
        "delivery_status": "SUCCESSFUL",
        "message_id": event_id,
    }
    doc = json.dumps({"EventType": "_journey.send", "Timestamp": "2026-11-23T10:00:00.000Z", "Attributes": attributes})
    return EventRow(app_id, endpoint_id, event_id, "_journey.send", at, at, None, doc)


def test_every_kind_of_event_is_one_record_in_pinpoints_format(settings: Settings) -> None:
    with streaming(settings) as server:
        client = server.client()
        app_id = new_app(client)
        put_stream(client, app_id)
        client.update_email_channel(
            ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
        )
        device = {
            "ChannelType": "GCM",
            "Address": "token-1",
            "Demographic": {
                "Locale": "de_DE",
                "Make": "Google",
                "Model": "Pixel 9",
                "Platform": "android",
                "PlatformVersion": "16",
                "AppVersion": "4.2",
            },
        }
        start = "2026-11-23T10:00:00.000Z"
        put_events(
            client,
            app_id,
            "phone-app",
            {
                "s1": {
                    "EventType": "_session.start",
                    "Timestamp": start,
                    "AppPackageName": "com.example.shop",
                    "AppTitle": "Shop",
                    "AppVersionCode": "42",
                    "SdkName": "aws-amplify",
                    "ClientSdkVersion": "6.0",
                    "Session": {"Id": "session-1", "StartTimestamp": start},
                },
                "s2": {
                    "EventType": "_session.stop",
                    "Timestamp": "2026-11-23T10:05:00.000Z",
                    "Session": {
                        "Id": "session-1",
                        "StartTimestamp": start,
                        "StopTimestamp": "2026-11-23T10:05:00.000Z",
                    },
                },
                "buy": {
                    "EventType": "_monetization.purchase",
                    "Timestamp": start,
                    "Attributes": {"_product_id": "sku-1", "_currency": "EUR"},
                    "Metrics": {"_item_price": 9.99, "_quantity": 2},
                },
                "push": {
                    "EventType": "_campaign.opened_notification",
                    "Timestamp": start,
                    "Attributes": {"campaign_id": "c-1", "campaign_activity_id": "a-1", "treatment_id": "0"},
                },
                "login": {"EventType": "_userauth.sign_in", "Timestamp": start},
                "custom": {
                    "EventType": "level.done",
                    "Timestamp": start,
                    "Attributes": {"level": "3"},
                    "Metrics": {"score": 1200},
                },
            },
            **device,
        )
        # Transactional sends, then what providers and recipients said about them.
        sent = client.send_messages(
            ApplicationId=app_id,
            MessageRequest={
                "Addresses": {
                    "ana@example.com": {"ChannelType": "EMAIL"},
                    "bo@example.com": {"ChannelType": "EMAIL"},
                    "+4915112345678": {"ChannelType": "SMS"},
                    "+14255550100": {"ChannelType": "SMS"},
                },
                "MessageConfiguration": {
                    "EmailMessage": {
                        "FromAddress": "shop@example.com",
                        "SimpleEmail": {"Subject": {"Data": "Your order"}, "TextPart": {"Data": "Hi"}},
                    },
                    "SMSMessage": {"Body": "Your code is 4711", "MessageType": "TRANSACTIONAL"},
                },
            },
        )["MessageResponse"]["Result"]
        ana, bo = sent["ana@example.com"]["MessageId"], sent["bo@example.com"]["MessageId"]
        sms, sms_us = sent["+4915112345678"]["MessageId"], sent["+14255550100"]["MessageId"]
        client_info = {"ip_address": "203.0.113.9", "user_agent": "Mail/1.0"}
        reports = [
            ProviderReport("_email.delivered", "EMAIL", provider_message_id=ana, attributes={"response": "250 ok"}),
            ProviderReport("_email.open", "EMAIL", message_id=ana, attributes=client_info),
            ProviderReport(
                "_email.click",
                "EMAIL",
                message_id=ana,
                attributes={**client_info, "url": "https://example.com/o"},
                distinct_by="o",
            ),
            ProviderReport("_email.unsubscribe", "EMAIL", message_id=ana, attributes=client_info),
            ProviderReport("_email.complaint", "EMAIL", message_id=ana),
            ProviderReport("_email.hardbounce", "EMAIL", message_id=bo, attributes={"reason": "550 no such user"}),
            ProviderReport("_email.softbounce", "EMAIL", message_id=bo, attributes={"type": "blocked"}),
            ProviderReport("_email.rejected", "EMAIL", message_id=bo, attributes={"reason": "policy"}),
            ProviderReport(
                "_SMS.SUCCESS",
                "SMS",
                provider_message_id=sms,
                attributes={"record_status": "DELIVERED", "origination_phone_number": "+4930123456"},
            ),
            ProviderReport(
                "_SMS.FAILURE", "SMS", provider_message_id=sms_us, attributes={"record_status": "UNREACHABLE"}
            ),
        ]
        server.run(lambda services: services.record_outcomes(reports))
        client.update_endpoint(
            ApplicationId=app_id,
            EndpointId="texter",
            EndpointRequest={"ChannelType": "SMS", "Address": "+4915112345679"},
        )
        stop = ProviderReport(
            "_SMS.OPTOUT",
            "SMS",
            address="+4915112345679",
            opt_out=True,
            attributes={"keyword": "STOP", "destination_phone_number": "+4915112345679"},
        )
        server.run(lambda services: services.record_outcomes([stop]))

        # A campaign to email, SMS and push endpoints, and one through a custom channel.
        client.update_endpoints_batch(
            ApplicationId=app_id,
            EndpointBatchRequest={
                "Item": [
                    {"Id": "mail-1", "ChannelType": "EMAIL", "Address": "cy@example.com"},
                    {"Id": "sms-1", "ChannelType": "SMS", "Address": "+4915112345670"},
                    {"Id": "push-1", "ChannelType": "GCM", "Address": "token-2"},
                ]
            },
        )
        segment = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})
        segment_id = segment["SegmentResponse"]["Id"]
        messages = {
            "EmailMessage": {"Title": "News", "Body": "Hello"},
            "SMSMessage": {"Body": "News"},
            "GCMMessage": {"Title": "News", "Body": "Hello", "Action": "OPEN_APP"},
        }
        base = {"SegmentId": segment_id, "Schedule": {"StartTime": "IMMEDIATE"}}
        campaign = client.create_campaign(
            ApplicationId=app_id, WriteCampaignRequest={**base, "Name": "news", "MessageConfiguration": messages}
        )["CampaignResponse"]
        client.create_campaign(
            ApplicationId=app_id,
            WriteCampaignRequest={
                **base,
                "Name": "custom",
                "MessageConfiguration": {"CustomMessage": {"Data": "x"}},
                "CustomDeliveryConfiguration": {"DeliveryUri": "https://hooks.example.com/x", "EndpointTypes": ["GCM"]},
            },
        )
        drive_campaigns(server)

        at = int(time.time() * 1000)
        journey_rows = [journey_send(app_id, "mail-1", f"journey-{kind}", kind, at) for kind in ("EMAIL", "PUSH")]
        server.run(lambda services: services.db.write(lambda tx: event_store.append(tx, journey_rows)))

        stored = server.run(lambda services: services.db.read(lambda tx: event_store.count(tx, app_id)))
        folder = server.settings.data_dir / "streams"
        records = wait_for(lambda: len(records_in(folder)) == stored and records_in(folder), f"{stored} records")

    # One record per recorded event, each valid (records_in validated them), every kind there.
    kinds = {record["event_type"] for record in records}
    assert kinds >= {
        "_session.start",
        "_session.stop",
        "_monetization.purchase",
        "_campaign.opened_notification",
        "_userauth.sign_in",
        "level.done",
        "_email.send",
        "_email.delivered",
        "_email.open",
        "_email.click",
        "_email.unsubscribe",
        "_email.complaint",
        "_email.hardbounce",
        "_email.softbounce",
        "_email.rejected",
        "_SMS.BUFFERED",
        "_SMS.SUCCESS",
        "_SMS.FAILURE",
        "_SMS.OPTOUT",
        "_campaign.send",
        "_journey.send",
    }
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["event_type"], []).append(record)

    [session] = by_type["_session.start"]
    assert session["event_version"] == "3.0" and session["client"]["client_id"] == "phone-app"
    assert session["application"] == {
        "app_id": app_id,
        "package_name": "com.example.shop",
        "sdk": {"name": "aws-amplify", "version": "6.0"},
        "title": "Shop",
        "version_name": "4.2",
        "version_code": "42",
    }
    assert session["device"] == {
        "locale": {"code": "de_DE", "country": "DE", "language": "de"},
        "make": "Google",
        "model": "Pixel 9",
        "platform": {"name": "android", "version": "16"},
    }
    assert session["session"] == {"session_id": "session-1", "start_timestamp": 1795428000000}
    assert by_type["_session.stop"][0]["session"]["stop_timestamp"] == 1795428300000
    assert by_type["_monetization.purchase"][0]["metrics"] == {"_item_price": 9.99, "_quantity": 2.0}
    assert all(record["awsAccountId"] == "000000000000" for record in records)

    [delivered] = by_type["_email.delivered"]
    [send] = [
        r for r in by_type["_email.send"] if r["facets"]["email_channel"]["mail_event"]["mail"]["message_id"] == ana
    ]
    mail = delivered["facets"]["email_channel"]["mail_event"]["mail"]
    assert mail == send["facets"]["email_channel"]["mail_event"]["mail"]  # every record of a message repeats it
    assert mail["from_address"] == "shop@example.com" and mail["destination"] == ["ana@example.com"]
    assert mail["common_headers"]["subject"] == "Your order"
    assert delivered["event_timestamp"] == send["event_timestamp"] == mail["message_send_timestamp"]
    assert delivered["facets"]["email_channel"]["mail_event"]["delivery"]["smtp_response"] == "250 ok"
    assert send["attributes"] == {"feedback": "received"}
    assert delivered["client_context"] == {"custom": {"legacy_identifier": app_id}}
    [click] = by_type["_email.click"]
    assert click["attributes"]["feedback"] == "https://example.com/o"
    assert click["facets"]["email_channel"]["mail_event"]["click"]["link"] == "https://example.com/o"
    [hard] = by_type["_email.hardbounce"]
    bounce = hard["facets"]["email_channel"]["mail_event"]["bounce"]
    assert (
        bounce["bounce_type"] == "Permanent"
        and bounce["bounced_recipients"][0]["diagnostic_code"] == "550 no such user"
    )

    success = by_type["_SMS.SUCCESS"][0]["attributes"]
    assert success["record_status"] == "DELIVERED" and success["iso_country_code"] == "DE"
    assert success["message_type"] == "Transactional" and success["message_id"] == sms
    assert by_type["_SMS.FAILURE"][0]["attributes"]["iso_country_code"] == "US"
    assert by_type["_SMS.OPTOUT"][0]["attributes"]["record_status"] == "OPTED_OUT"

    campaign_sends = {r["attributes"]["delivery_type"]: r for r in by_type["_campaign.send"]}
    assert set(campaign_sends) >= {"EMAIL", "SMS", "GCM", "CUSTOM"}
    push = campaign_sends["GCM"]["attributes"]
    assert push["campaign_id"] == campaign["Id"] and push["treatment_id"] == "0" and push["campaign_activity_id"]
    assert push["campaign_send_status"] == "SUCCESS"
    endpoint = json.loads(campaign_sends["GCM"]["client_context"]["custom"]["endpoint"])
    assert endpoint["ChannelType"] == "GCM" and endpoint["EndpointStatus"] == "ACTIVE"
    campaign_email = [r for r in by_type["_email.send"] if r["attributes"].get("campaign_id") == campaign["Id"]]
    assert campaign_email and campaign_email[0]["attributes"]["campaign_activity_id"] == push["campaign_activity_id"]

    journeys = {r["attributes"]["journey_activity_type"]: r["attributes"] for r in by_type["_journey.send"]}
    assert journeys["PUSH"] == {
        "journey_id": "j-welcome",
        "journey_run_id": "run-1",
        "journey_activity_id": "act-push",
        "journey_activity_type": "PUSH",
        "journey_send_status": "SUCCESS",
    }


def test_a_sink_that_is_down_loses_nothing_and_its_lag_shows(settings: Settings) -> None:
    with streaming(settings) as server:
        client = server.client()
        app_id = new_app(client)
        folder = server.settings.data_dir / "streams"
        folder.mkdir(parents=True)
        blocker = folder / "activity.jsonl"
        blocker.mkdir()  # the sink's file cannot be opened: a folder stands where it goes
        put_stream(client, app_id)
        with capture_logs() as logs:
            put_events(client, app_id, "d1", custom_events(50))
            _, raw = wait_for(
                lambda: (
                    (answer := server.signed_request("GET", f"/v1/apps/{app_id}/eventstream", {}))[1][
                        "ClarionDelivery"
                    ].get("ConsecutiveFailures", 0)
                    >= 2
                    and answer
                ),
                "failed deliveries",
            )
        delivery = raw["ClarionDelivery"]
        assert delivery["LagRecords"] == 50 and delivery["LagSeconds"] >= 0
        assert "activity.jsonl" in delivery["LastError"] and delivery["LastErrorDate"].endswith("Z")
        failed = [line for line in logs if line["event"] == "event_stream_delivery_failed"]
        assert failed and failed[0]["application_id"] == app_id and failed[0]["records"] == 50
        assert failed[0]["sink"] == "file" and failed[0]["retry_in_seconds"] >= 0
        metrics = server.services.metrics
        assert metrics.stream_failures.labels("file")._value.get() >= 2
        wait_for(lambda: metrics.stream_lag_records.labels(app_id)._value.get() == 50, "the lag metric")

        put_events(client, app_id, "d1", custom_events(30, start=50))  # more while it is down
        blocker.rmdir()  # the sink is back
        records = wait_for(lambda: len(records_in(folder)) == 80 and records_in(folder), "all 80 records")
        assert [int(r["attributes"]["n"]) for r in records] == list(range(80))  # none lost, in order, once
        delivery = wait_for(  # the cursor's write, which clears the failures, follows the sink's acknowledgement
            lambda: (
                (raw := server.signed_request("GET", f"/v1/apps/{app_id}/eventstream", {})[1]["ClarionDelivery"])
                and raw["ConsecutiveFailures"] == 0
                and raw
            ),
            "the failures cleared",
        )
        assert delivery["LagRecords"] == 0 and "LastError" not in delivery
        wait_for(lambda: metrics.stream_lag_records.labels(app_id)._value.get() == 0, "the lag metric at 0")
        assert metrics.stream_records.labels("file")._value.get() == 80


def test_files_rotate_and_a_restarted_server_resumes_from_the_cursor(settings: Settings) -> None:
    sinks = [
        {
            "type": "file",
            "arn": "arn:aws:kinesis:*",
            "path": "{stream_name}.jsonl",
            "rotate_bytes": 2000,
            "batch_records": 5,
            "fsync": True,
        }
    ]
    with streaming(settings, sinks=sinks) as server:
        client = server.client()
        app_id = new_app(client)
        put_stream(client, app_id)
        put_events(client, app_id, "d1", custom_events(40))
        folder = server.settings.data_dir / "streams"
        wait_for(lambda: len(records_in(folder)) == 40, "40 records")
    assert len(list(folder.glob("activity-*.jsonl"))) >= 2  # rotated beside the current file
    with streaming(settings, sinks=sinks) as server:  # the same store and data folder
        client = server.client()
        put_events(client, app_id, "d1", custom_events(10, start=40))
        records = wait_for(lambda: len(records_in(folder)) == 50 and records_in(folder), "50 records")
    assert sorted(int(r["attributes"]["n"]) for r in records) == list(range(50))


def test_records_describe_the_endpoint_as_it_is_when_they_are_built(settings: Settings) -> None:
    """A pump keeps the endpoints it has read between batches: one updated or deleted since is read again, so the
    next record shows it as it is (a device that changed, no device once it is gone)."""
    with streaming(settings) as server:
        client = server.client()
        app_id = new_app(client)
        put_stream(client, app_id)
        folder = server.settings.data_dir / "streams"
        phone = {"ChannelType": "GCM", "Address": "token-1", "Demographic": {"Make": "Google", "Platform": "android"}}
        put_events(client, app_id, "d1", custom_events(2), **phone)
        tablet = {"ChannelType": "GCM", "Address": "token-2", "Demographic": {"Make": "Apple"}}
        put_events(client, app_id, "d2", custom_events(1, start=2), **tablet)
        wait_for(lambda: len(records_in(folder)) == 3, "the first records")
        client.update_endpoint(
            ApplicationId=app_id, EndpointId="d1", EndpointRequest={"Demographic": {"Make": "Samsung"}}
        )
        put_events(client, app_id, "d1", custom_events(1, start=3))
        client.delete_endpoint(ApplicationId=app_id, EndpointId="d2")
        late = EventRow(app_id, "d2", "late", "level.done", 1000, 1000, None, json.dumps({"EventType": "level.done"}))
        server.run(lambda services: services.db.write(lambda tx: event_store.append(tx, [late])))
        records = wait_for(lambda: len(records_in(folder)) == 5 and records_in(folder), "the later records")
    devices = [(r["client"]["client_id"], r["device"]) for r in records]
    assert devices == [
        ("d1", {"make": "Google", "platform": {"name": "android"}}),
        ("d1", {"make": "Google", "platform": {"name": "android"}}),
        ("d2", {"make": "Apple", "platform": {}}),
        ("d1", {"make": "Samsung", "platform": {"name": "android"}}),
        ("d2", {"platform": {}}),
    ]


def test_a_campaign_send_stored_with_the_context_s_names_is_recorded_like_one_stored_now() -> None:
    """Campaign sends stored before their events named the campaign once (CampaignId, TreatmentId, ActivityId,
    ApplicationId and ScheduledTime beside campaign_id and treatment_id) give the same record as those stored now."""
    now = {
        "message_id": "m-1",
        "channel_type": "GCM",
        "destination": "token-1",
        "campaign_id": "c-1",
        "treatment_id": "0",
        "campaign_activity_id": "a-1",
        "delivery_status": "SUCCESSFUL",
        "status_code": "200",
    }
    context = {"ApplicationId": "a" * 32, "CampaignId": "c-1", "TreatmentId": "0", "ActivityId": "a-1"}
    before = {**{k: v for k, v in now.items() if k != "campaign_activity_id"}, **context, "ScheduledTime": "x"}
    endpoint = json.dumps({"ChannelType": "GCM", "Address": "token-1"})
    lookups = Lookups(endpoints={"device-1": (endpoint, "ACTIVE", "NONE", "2026-11-23T09:00:00.000Z")})
    records = []
    for attributes in (now, before):
        doc = {"EventType": "_campaign.send", "Timestamp": "2026-11-23T10:00:00.000Z", "Attributes": attributes}
        event = StreamEvent(1, 7, "device-1", "m-1:campaign", "_campaign.send", 1000, 2000, json.dumps(doc))
        records.append(json.loads(RecordBuilder("a" * 32, "123456789012").encode(event, doc, lookups)))
    VALIDATOR.validate(records[0])
    assert records[0] == records[1]
    assert records[0]["attributes"] == {
        "campaign_id": "c-1",
        "campaign_activity_id": "a-1",
        "treatment_id": "0",
        "delivery_type": "GCM",
        "campaign_send_status": "SUCCESS",
    }


def test_an_app_event_stored_with_loose_types_is_recorded_as_pinpoint_writes_it() -> None:
    """A stored event whose attributes are not strings or whose metrics are integers (PutEvents never stores one;
    an older or hand-made document may) still gives strings and numbers; an endpoint not stored, an empty device."""
    doc = {
        "EventType": "level.done",
        "Timestamp": "2026-11-23T10:00:00.000Z",
        "Attributes": {"level": 5, "ranked": True},
        "Metrics": {"score": 3},
        "Session": {
            "Id": "s-1",
            "StartTimestamp": "2026-11-23T09:58:00Z",
            "StopTimestamp": "2026-11-23T10:58:00+02:00",
        },
    }
    event = StreamEvent(1, 7, "device-1", "e-1", "level.done", 1000, 2000, json.dumps(doc))
    record = json.loads(RecordBuilder("a" * 32, "123456789012").encode(event, None, Lookups()))
    VALIDATOR.validate(record)
    assert record["attributes"] == {"level": "5", "ranked": "True"}
    assert record["metrics"] == {"score": 3.0}
    assert record["session"] == {"session_id": "s-1", "start_timestamp": 1795427880000, "stop_timestamp": 1795424280000}
    assert record["device"] == {"platform": {}}
    assert record["application"] == {"app_id": "a" * 32, "sdk": {}}
