"""Domain events end to end: what boto3's writes record, dispatched after they commit, and nothing for a write that
was refused; a failing subscriber is logged and counted and costs neither the write nor the other subscribers.

The store-level rules (each write's events follow its own savepoint inside a group commit) are in test_store.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer
from structlog.testing import capture_logs

from clarion import domain_events
from clarion.channels.config import DeliverySettings
from clarion.config import Settings
from clarion.domain_events import Change, Subscriptions
from clarion.metrics import Metrics

KINDS = [
    domain_events.AppChanged,
    domain_events.AppSettingsChanged,
    domain_events.EndpointsWritten,
    domain_events.EndpointsDeleted,
    domain_events.EventsIngested,
    domain_events.CampaignChanged,
    domain_events.CampaignStateChanged,
    domain_events.SegmentChanged,
    domain_events.TemplateChanged,
    domain_events.ChannelChanged,
    domain_events.MessagesSent,
    domain_events.OutcomesReported,
]


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    running = RunningServer(settings.model_copy(update={"delivery": DeliverySettings(dry_run=True)})).start()
    try:
        yield running
    finally:
        running.stop()


def recording(server: RunningServer) -> list[Any]:
    """Every domain event the server dispatches from now on, in order."""
    seen: list[Any] = []
    for kind in KINDS:
        server.services.subscriptions.on(kind, seen.append)
    return seen


def test_writes_record_their_domain_events(server: RunningServer) -> None:
    client = server.client()
    seen = recording(server)
    app_id = client.create_app(CreateApplicationRequest={"Name": "events"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "a@example.com", "Identity": "example.com"}
    )
    client.update_endpoint(
        ApplicationId=app_id,
        EndpointId="ep-1",
        EndpointRequest={
            "ChannelType": "EMAIL",
            "Address": "one@example.org",
            "User": {"UserId": "u1", "UserAttributes": {"plan": ["pro"]}},
        },
    )
    event = {"EventType": "purchase", "Timestamp": datetime.now(UTC).isoformat()}
    client.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"e1": event}}}}
    )
    client.create_email_template(TemplateName="news", EmailTemplateRequest={"Subject": "Hi", "TextPart": "Hello"})
    segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"]
    segment_id = segment_id["Id"]
    with pytest.raises(ClientError):  # refused: records nothing
        client.create_campaign(
            ApplicationId=app_id,
            WriteCampaignRequest={"Name": "c", "SegmentId": "missing", "Schedule": {"StartTime": "IMMEDIATE"}},
        )
    campaign = {
        "Name": "c",
        "SegmentId": segment_id,
        "Schedule": {"StartTime": "2030-01-01T00:00:00Z", "Frequency": "ONCE"},
        "MessageConfiguration": {"EmailMessage": {"Title": "Hi", "Body": "Hello"}},
    }
    campaign_id = client.create_campaign(ApplicationId=app_id, WriteCampaignRequest=campaign)["CampaignResponse"]["Id"]
    client.update_campaign(ApplicationId=app_id, CampaignId=campaign_id, WriteCampaignRequest={"IsPaused": True})
    client.delete_campaign(ApplicationId=app_id, CampaignId=campaign_id)
    client.send_messages(
        ApplicationId=app_id,
        MessageRequest={
            "Endpoints": {"ep-1": {}},
            "MessageConfiguration": {
                "EmailMessage": {"SimpleEmail": {"Subject": {"Data": "s"}, "TextPart": {"Data": "t"}}}
            },
        },
    )
    client.update_application_settings(ApplicationId=app_id, WriteApplicationSettingsRequest={"Limits": {"Daily": 5}})
    client.delete_endpoint(ApplicationId=app_id, EndpointId="ep-1")
    client.delete_app(ApplicationId=app_id)

    assert [type(e).__name__ for e in seen] == [
        "AppChanged",
        "ChannelChanged",
        "EndpointsWritten",
        "EventsIngested",
        "TemplateChanged",
        "SegmentChanged",
        "CampaignChanged",
        "CampaignStateChanged",
        "CampaignChanged",
        "CampaignChanged",
        "MessagesSent",
        "AppSettingsChanged",
        "EndpointsDeleted",
        "AppChanged",
    ]
    app, channel, written, ingested, template, segment, created, paused, updated, deleted, sent, _, gone, removed = seen
    assert (app.app_id, app.change, removed.change) == (app_id, Change.CREATED, Change.DELETED)
    assert (channel.channel_type, channel.change) == ("EMAIL", Change.CREATED)
    assert (written.endpoint_ids, written.user_ids) == (("ep-1",), ("u1",))
    assert [(e.endpoint_id, e.event_id, e.event["EventType"]) for e in ingested.events] == [("ep-1", "e1", "purchase")]
    assert (template.name, template.template_type, template.change) == ("news", "EMAIL", Change.CREATED)
    assert (segment.segment_id, segment.change) == (segment_id, Change.CREATED)
    assert [c.change for c in (created, updated, deleted)] == [Change.CREATED, Change.UPDATED, Change.DELETED]
    assert (paused.campaign_id, paused.state) == (campaign_id, "PAUSED")
    [message] = sent.messages
    assert (message.endpoint_id, message.channel, message.status) == ("ep-1", "EMAIL", "SUCCESSFUL")
    assert gone.endpoint_ids == ("ep-1",)


def test_a_failing_subscriber_is_logged_and_counted_and_the_others_still_run() -> None:
    metrics = Metrics()
    subscriptions = Subscriptions(metrics.subscriber_failures)
    heard: list[str] = []

    def broken(event: domain_events.SegmentChanged) -> None:
        raise RuntimeError("cache is down")

    async def listening(event: domain_events.SegmentChanged) -> None:
        heard.append(event.segment_id)

    subscriptions.on(domain_events.SegmentChanged, broken)
    subscriptions.on(domain_events.SegmentChanged, listening)
    with capture_logs() as logs:
        asyncio.run(subscriptions.dispatch([domain_events.SegmentChanged("app", "seg", Change.UPDATED)]))
    assert heard == ["seg"]
    [failure] = [entry for entry in logs if entry["event"] == "domain event subscriber failed"]
    assert failure["domain_event"] == "SegmentChanged" and failure["subscriber"].endswith("broken")
    assert metrics.registry.get_sample_value("clarion_subscriber_failures_total", {"event": "SegmentChanged"}) == 1
