"""The campaign engine end to end: boto3 writes campaigns, the engine runs them, a real SMTP server receives them.

The scheduler and the queue worker do not run in the background here: each test drives them (`drive`), and moves
the server's clock instead of sleeping, so every schedule case is deterministic. Every test runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pinpoint_calls
import pytest
from conftest import RunningServer, driven_settings
from pinpoint_calls import email_project, everyone
from smtp_relay import Relay
from web_recorder import WebRecorder

from clarion.campaigns.config import CampaignSettings
from clarion.config import Settings
from clarion.queue.config import QueueSettings
from clarion.queue.work_queue import LeaseLost
from clarion.queue.worker import Worker
from clarion.store import events as event_store

EMAIL = {"EmailMessage": {"Title": "Hi {{Attributes.name}}", "Body": "Hello {{Attributes.name}}"}}


@pytest.fixture
def engine_server(migrated_settings: Settings, relay: tuple[Relay, int]) -> Iterator[RunningServer]:
    _, port = relay
    batches = CampaignSettings(scheduler=False, batch_size=10, plan_chunk=25)
    with RunningServer(driven_settings(migrated_settings, port, campaigns=batches)) as running:
        yield running


@pytest.fixture
def project(pinpoint: Any) -> str:
    return email_project(pinpoint, "engine", 0)


def add_endpoints(pinpoint: Any, app_id: str, count: int, **extra: Any) -> list[str]:
    """Email endpoints ep-0000, ep-0001, ... (pinpoint_calls.add_endpoints): four digits keep them in id order."""
    return pinpoint_calls.add_endpoints(pinpoint, app_id, count, width=4, **extra)


def campaign(pinpoint: Any, app_id: str, segment_id: str, **members: Any) -> dict[str, Any]:
    body = {"Name": "c", "SegmentId": segment_id, "Schedule": {"StartTime": "IMMEDIATE"}, "MessageConfiguration": EMAIL}
    body.update(members)
    return pinpoint.create_campaign(ApplicationId=app_id, WriteCampaignRequest=body)["CampaignResponse"]


def drive(server: RunningServer) -> int:
    """One scheduler pass, then the queue worked until nothing is due; the number of queue items run."""

    async def work(services: Any) -> int:
        worker = Worker(services.queue, services.queue_handlers, services.settings.queue)
        await services.campaign_scheduler.tick()
        total = 0
        while ran := await worker.run_once():
            total += ran
        return total

    return server.run(work)


def state(pinpoint: Any, app_id: str, campaign_id: str) -> str:
    response = pinpoint.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)
    return response["CampaignResponse"]["State"]["CampaignStatus"]


def activities(pinpoint: Any, app_id: str, campaign_id: str) -> list[dict[str, Any]]:
    response = pinpoint.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)
    return response["ActivitiesResponse"]["Item"]


def test_immediate_campaign_reaches_each_sendable_member_once(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    ids = add_endpoints(pinpoint, project, 45)
    pinpoint.update_endpoint(ApplicationId=project, EndpointId=ids[0], EndpointRequest={"OptOut": "ALL"})
    pinpoint.update_endpoint(ApplicationId=project, EndpointId=ids[1], EndpointRequest={"EndpointStatus": "INACTIVE"})
    created = campaign(pinpoint, project, everyone(pinpoint, project))
    drive(engine_server)
    drive(engine_server)  # a second pass finds nothing more to do
    assert sorted(sink.recipients()) == sorted(f"{e}@example.org" for e in ids[2:])
    message = next(r for r in sink.received if r.rcpt_tos == ["ep-0002@example.org"]).message()
    assert message["Subject"] == "Hi ep-0002" and message["From"] == "news@example.com"
    assert state(pinpoint, project, created["Id"]) == "COMPLETED"
    [activity] = activities(pinpoint, project, created["Id"])
    assert (activity["State"], activity["Result"], activity["TreatmentId"]) == ("COMPLETED", "SUCCESS", "0")
    assert activity["TotalEndpointCount"] == activity["SuccessfulEndpointCount"] == 43


def test_scheduled_campaign_waits_for_its_start(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 5)
    start = datetime.now(UTC) + timedelta(hours=2)
    created = campaign(
        pinpoint, project, everyone(pinpoint, project), Schedule={"StartTime": start.isoformat(), "Frequency": "ONCE"}
    )
    drive(engine_server)
    assert sink.received == [] and state(pinpoint, project, created["Id"]) == "SCHEDULED"
    engine_server.clock.offset += timedelta(hours=2, seconds=1)
    drive(engine_server)
    assert len(sink.received) == 5 and state(pinpoint, project, created["Id"]) == "COMPLETED"


def test_recurring_campaign_runs_until_its_end_within_the_total_limit(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    start = datetime.now(UTC) + timedelta(minutes=1)
    schedule = {
        "StartTime": start.isoformat(),
        "EndTime": (start + timedelta(days=3)).isoformat(),
        "Frequency": "DAILY",
    }
    created = campaign(pinpoint, project, everyone(pinpoint, project), Schedule=schedule, Limits={"Total": 2})
    for day in range(4):
        engine_server.clock.offset = timedelta(days=day, minutes=2)
        drive(engine_server)
        expected = "COMPLETED" if day == 3 else "PENDING_NEXT_RUN"
        assert state(pinpoint, project, created["Id"]) == expected
    assert Counter(sink.recipients()) == {f"ep-000{n}@example.org": 2 for n in range(3)}  # Total caps at 2
    runs = activities(pinpoint, project, created["Id"])
    assert len(runs) == 4 and [run["TotalEndpointCount"] for run in runs] == [0, 0, 3, 3]  # newest first
    assert runs[0]["ExecutionMetrics"]["LimitSkippedEndpoints"] == "3"


def test_treatments_and_holdout_split_the_audience(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 300)
    other = {"EmailMessage": {"Title": "Variant B", "Body": "b"}}
    created = campaign(
        pinpoint,
        project,
        everyone(pinpoint, project),
        HoldoutPercent=20,
        AdditionalTreatments=[{"SizePercent": 30, "MessageConfiguration": other}],
    )
    drive(engine_server)
    subjects = Counter(r.message()["Subject"] for r in sink.received)
    assert subjects["Variant B"] + sum(n for s, n in subjects.items() if s.startswith("Hi ")) == len(sink.received)
    assert 0.20 * 300 <= subjects["Variant B"] <= 0.40 * 300  # 30 % within tolerance
    assert 0.10 * 300 <= 300 - len(sink.received) <= 0.30 * 300  # 20 % held out
    by_treatment = {a["TreatmentId"]: a for a in activities(pinpoint, project, created["Id"])}
    assert by_treatment["1"]["SuccessfulEndpointCount"] == subjects["Variant B"]
    assert by_treatment["0"]["ExecutionMetrics"]["HoldoutEndpoints"] == str(300 - len(sink.received))


def test_local_time_sends_in_each_zone_and_quiet_time_skips(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    tokyo = add_endpoints(pinpoint, project, 2, Demographic={"Timezone": "Asia/Tokyo"})
    pinpoint.update_endpoint(
        ApplicationId=project,
        EndpointId="paris",
        EndpointRequest={
            "ChannelType": "EMAIL",
            "Address": "paris@example.org",
            "Demographic": {"Timezone": "Europe/Paris"},
        },
    )
    now = datetime.now(UTC)
    # 09:00 UTC tomorrow as local wall time: Tokyo (UTC+9) gets it at 00:00 UTC, Paris (UTC+1) at 08:00 UTC.
    wall = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    schedule = {"StartTime": wall.isoformat(), "IsLocalTime": True, "Timezone": "UTC", "Frequency": "ONCE"}
    campaign(pinpoint, project, everyone(pinpoint, project), Schedule=schedule)

    def at(moment: datetime) -> None:
        engine_server.clock.offset = moment - datetime.now(UTC)
        drive(engine_server)

    at(wall - timedelta(hours=9, minutes=1))
    assert sink.received == []
    at(wall - timedelta(hours=9) + timedelta(seconds=1))
    assert sorted(sink.recipients()) == sorted(f"{e}@example.org" for e in tokyo)
    at(wall - timedelta(hours=1) + timedelta(seconds=1))
    assert "paris@example.org" in sink.recipients()

    quiet = {"Start": "08:30", "End": "10:00"}
    quiet_schedule = {**schedule, "StartTime": (wall + timedelta(days=1)).isoformat(), "QuietTime": quiet}
    campaign(pinpoint, project, everyone(pinpoint, project), Name="quiet", Schedule=quiet_schedule)
    before = len(sink.received)
    at(wall + timedelta(days=1, hours=1))  # everyone's 09:00 has passed; 09:00 is inside quiet time everywhere
    assert len(sink.received) == before


def test_paused_campaign_holds_its_batches_until_resumed(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 20)
    start = datetime.now(UTC) + timedelta(minutes=5)
    created = campaign(
        pinpoint, project, everyone(pinpoint, project), Schedule={"StartTime": start.isoformat(), "Frequency": "ONCE"}
    )
    engine_server.clock.offset = timedelta(minutes=6)

    async def start_and_plan_only(services: Any) -> None:
        await services.campaign_scheduler.tick()
        worker = Worker(services.queue, {"campaign.plan": services.queue_handlers["campaign.plan"]}, QueueSettings())
        await worker.run_once()

    engine_server.run(start_and_plan_only)
    pinpoint.update_campaign(ApplicationId=project, CampaignId=created["Id"], WriteCampaignRequest={"IsPaused": True})
    assert state(pinpoint, project, created["Id"]) == "PAUSED"
    drive(engine_server)
    assert sink.received == []  # the run's batches wait
    pinpoint.update_campaign(ApplicationId=project, CampaignId=created["Id"], WriteCampaignRequest={"IsPaused": False})
    engine_server.clock.offset += timedelta(seconds=10)
    drive(engine_server)
    assert len(sink.received) == 20 and state(pinpoint, project, created["Id"]) == "COMPLETED"


def test_event_campaign_sends_to_the_endpoint_that_performed_the_event(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    event_filter = {
        "FilterType": "ENDPOINT",
        "Dimensions": {
            "EventType": {"DimensionType": "INCLUSIVE", "Values": ["purchase"]},
            "Attributes": {"plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}},
        },
    }
    schedule = {"StartTime": datetime.now(UTC).isoformat(), "Frequency": "EVENT", "EventFilter": event_filter}
    created = campaign(pinpoint, project, everyone(pinpoint, project), Schedule=schedule)

    def put(endpoint_id: str, event_id: str, event_type: str, plan: str) -> None:
        event = {"EventType": event_type, "Timestamp": datetime.now(UTC).isoformat(), "Attributes": {"plan": plan}}
        pinpoint.put_events(
            ApplicationId=project,
            EventsRequest={"BatchItem": {endpoint_id: {"Endpoint": {}, "Events": {event_id: event}}}},
        )

    put("ep-0000", "e1", "purchase", "pro")
    put("ep-0001", "e2", "purchase", "free")  # attribute does not match
    put("ep-0002", "e3", "signup", "pro")  # type does not match
    drive(engine_server)
    assert sink.recipients() == ["ep-0000@example.org"]
    put("ep-0000", "e1", "purchase", "pro")  # the same event again (a retried PutEvents): no second message
    drive(engine_server)
    assert sink.recipients() == ["ep-0000@example.org"]
    assert state(pinpoint, project, created["Id"]) == "SCHEDULED"


def test_real_users_get_one_message_on_the_first_channel_they_can_receive(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """The seed's targeting: only people active in the last 30 days (a ClarionBehavior segment), each reached once
    by ClarionChannelOrder GCM → EMAIL: push where it works, email where push does not."""

    def endpoint(endpoint_id: str, channel: str, address: str, user: str | None, **extra: Any) -> dict[str, Any]:
        item = {"Id": endpoint_id, "ChannelType": channel, "Address": address, **extra}
        return {**item, "User": {"UserId": user}} if user else item

    items = [
        endpoint("u1-push", "GCM", "token-1", "u1", OptOut="ALL"),  # push switched off: falls back to email
        endpoint("u1-mail", "EMAIL", "u1@example.org", "u1"),
        endpoint("u2-mail", "EMAIL", "u2@example.org", "u2"),
        endpoint("u3-push", "GCM", "token-3", "u3"),  # push works: no email for u3
        endpoint("u3-mail", "EMAIL", "u3@example.org", "u3"),
        endpoint("u4-mail", "EMAIL", "u4@example.org", "u4"),  # not active lately: not targeted
        endpoint("loose-sms", "SMS", "+14255550100", None),  # SMS is not in the order
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    now = datetime.now(UTC).isoformat()
    batch = {
        endpoint_id: {"Endpoint": {}, "Events": {f"s-{endpoint_id}": {"EventType": "_session.start", "Timestamp": now}}}
        for endpoint_id in ("u1-push", "u2-mail", "u3-mail", "loose-sms")
    }
    pinpoint.put_events(ApplicationId=project, EventsRequest={"BatchItem": batch})
    active = {"ClarionBehavior": [{"EventType": "_session.start", "WithinDays": 30}]}
    status, segment = engine_server.signed_request(
        "POST", f"/v1/apps/{project}/segments", {"Name": "real users", "Dimensions": active}
    )
    assert status == 201, segment
    body = {
        "Name": "we miss you",
        "SegmentId": segment["Id"],
        "Schedule": {"StartTime": "IMMEDIATE"},
        "MessageConfiguration": {**EMAIL, "DefaultMessage": {"Title": "Come back", "Body": "We miss you"}},
        "ClarionChannelOrder": ["GCM", "EMAIL"],
    }
    status, created = engine_server.signed_request("POST", f"/v1/apps/{project}/campaigns", body)
    assert status == 201 and created["ClarionChannelOrder"] == ["GCM", "EMAIL"], created
    drive(engine_server)
    assert sorted(sink.recipients()) == ["u1@example.org", "u2@example.org"]
    [activity] = activities(pinpoint, project, created["Id"])
    # u3 was targeted on GCM: this project has no GCM channel, so the push is logged as a failure, not sent.
    assert (activity["TotalEndpointCount"], activity["SuccessfulEndpointCount"]) == (3, 2)
    status, error = engine_server.signed_request(
        "POST", f"/v1/apps/{project}/campaigns", {**body, "ClarionChannelOrder": ["EMAIL", "EMAIL"]}
    )
    assert status == 400 and "ClarionChannelOrder names a channel twice" in error["Message"]


@pytest.fixture
def hook_server() -> Iterator[WebRecorder]:
    """A FILTER hook that keeps the endpoints whose id ends in an even digit and renames them for the message."""

    def keep_even(event: dict[str, Any]) -> tuple[int, Any]:
        if "Endpoints" not in event:
            return 200, None
        kept = {
            endpoint_id: {**endpoint, "Attributes": {"name": [f"hooked-{endpoint_id}"]}}
            for endpoint_id, endpoint in event["Endpoints"].items()
            if int(endpoint_id[-1]) % 2 == 0
        }
        return 200, kept

    recorder = WebRecorder(keep_even)
    yield recorder
    recorder.close()


def test_filter_hook_chooses_and_personalises(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay, hook_server: WebRecorder
) -> None:
    add_endpoints(pinpoint, project, 10)
    hook = {"WebUrl": hook_server.url + "/filter", "Mode": "FILTER"}
    created = campaign(pinpoint, project, everyone(pinpoint, project), Hook=hook)
    drive(engine_server)
    assert sorted(sink.recipients()) == [f"ep-000{n}@example.org" for n in (0, 2, 4, 6, 8)]
    assert {r.message()["Subject"] for r in sink.received} == {f"Hi hooked-ep-000{n}" for n in (0, 2, 4, 6, 8)}
    [(path, _, event)] = hook_server.requests
    assert path == "/filter" and event["CampaignId"] == created["Id"] and event["TreatmentId"] == "0"
    assert len(event["Endpoints"]) == 10 and event["ActivityId"] and event["MessageConfiguration"] == EMAIL
    [activity] = activities(pinpoint, project, created["Id"])
    assert activity["ExecutionMetrics"]["HookFilteredEndpoints"] == "5"


def test_delivery_hook_and_custom_channel_take_the_messages(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay, hook_server: WebRecorder
) -> None:
    add_endpoints(pinpoint, project, 3)
    segment_id = everyone(pinpoint, project)
    delivered = campaign(
        pinpoint, project, segment_id, Hook={"WebUrl": hook_server.url + "/deliver", "Mode": "DELIVERY"}
    )
    custom = campaign(
        pinpoint,
        project,
        segment_id,
        Name="custom",
        MessageConfiguration={"CustomMessage": {"Data": "offer for {{Attributes.name}}"}},
        CustomDeliveryConfiguration={"DeliveryUri": hook_server.url + "/custom", "EndpointTypes": ["EMAIL"]},
    )
    drive(engine_server)
    assert sink.received == []  # neither campaign used the email channel
    paths = Counter(path for path, _, _ in hook_server.requests)
    assert paths == {"/deliver": 1, "/custom": 3}
    custom_events = [event for path, _, event in hook_server.requests if path == "/custom"]
    assert sorted(e["Data"] for e in custom_events) == [f"offer for ep-000{n}" for n in range(3)]
    assert all(e["CampaignId"] == custom["Id"] and len(e["Endpoints"]) == 1 for e in custom_events)
    for created in (delivered, custom):
        [activity] = activities(pinpoint, project, created["Id"])
        assert activity["SuccessfulEndpointCount"] == 3


def test_in_app_campaign_leaves_its_message_for_each_member(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    add_endpoints(pinpoint, project, 2)
    start = datetime.now(UTC) + timedelta(minutes=1)
    in_app = {
        "Layout": "BOTTOM_BANNER",
        "Content": [{"BodyConfig": {"Body": "Hello", "Alignment": "LEFT", "TextColor": "#000000"}}],
    }
    schedule = {
        "StartTime": start.isoformat(),
        "EndTime": (start + timedelta(days=7)).isoformat(),
        "Frequency": "IN_APP_EVENT",
        "EventFilter": {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["opened_cart"]}}},
    }
    created = campaign(
        pinpoint,
        project,
        everyone(pinpoint, project),
        Schedule=schedule,
        MessageConfiguration={"InAppMessage": in_app},
        Priority=2,
    )
    engine_server.clock.offset = timedelta(minutes=2)
    drive(engine_server)
    messages = pinpoint.get_in_app_messages(ApplicationId=project, EndpointId="ep-0001")["InAppMessagesResponse"]
    [stored] = messages["InAppMessageCampaigns"]
    assert stored["CampaignId"] == created["Id"] and stored["Priority"] == 2
    assert stored["InAppMessage"]["Layout"] == "BOTTOM_BANNER"
    assert stored["Schedule"]["EventFilter"]["Dimensions"]["EventType"]["Values"] == ["opened_cart"]
    assert state(pinpoint, project, created["Id"]) == "COMPLETED"
    pinpoint.delete_campaign(ApplicationId=project, CampaignId=created["Id"])
    after = pinpoint.get_in_app_messages(ApplicationId=project, EndpointId="ep-0001")["InAppMessagesResponse"]
    assert after["InAppMessageCampaigns"] == []


def test_in_app_campaign_with_a_template_leaves_the_template_s_message(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    add_endpoints(pinpoint, project, 1)
    content = [{"BodyConfig": {"Body": "From the template", "Alignment": "CENTER", "TextColor": "#000000"}}]
    pinpoint.create_in_app_template(
        TemplateName="banner", InAppTemplateRequest={"Layout": "TOP_BANNER", "Content": content}
    )
    start = datetime.now(UTC) + timedelta(minutes=1)
    schedule = {
        "StartTime": start.isoformat(),
        "Frequency": "IN_APP_EVENT",
        "EventFilter": {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["opened_cart"]}}},
    }
    body = {"Name": "in-app", "SegmentId": everyone(pinpoint, project), "Schedule": schedule}
    body["TemplateConfiguration"] = {"InAppTemplate": {"Name": "banner"}}
    pinpoint.create_campaign(ApplicationId=project, WriteCampaignRequest=body)
    engine_server.clock.offset = timedelta(minutes=2)
    drive(engine_server)
    messages = pinpoint.get_in_app_messages(ApplicationId=project, EndpointId="ep-0000")["InAppMessagesResponse"]
    [stored] = messages["InAppMessageCampaigns"]
    assert stored["InAppMessage"]["Layout"] == "TOP_BANNER"
    assert stored["InAppMessage"]["Content"][0]["BodyConfig"]["Body"] == "From the template"


def test_project_defaults_apply_where_the_campaign_is_silent(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """ApplicationSettings.Limits caps a campaign that sets no Limits of its own."""
    add_endpoints(pinpoint, project, 4)
    pinpoint.update_application_settings(
        ApplicationId=project, WriteApplicationSettingsRequest={"Limits": {"Total": 1}}
    )
    start = datetime.now(UTC) + timedelta(minutes=1)
    schedule = {
        "StartTime": start.isoformat(),
        "EndTime": (start + timedelta(days=1)).isoformat(),
        "Frequency": "DAILY",
    }
    created = campaign(pinpoint, project, everyone(pinpoint, project), Schedule=schedule)
    for day in range(2):
        engine_server.clock.offset = timedelta(days=day, minutes=2)
        drive(engine_server)
    assert len(sink.received) == 4  # the second day's run is over the project's Total of 1
    latest, first = activities(pinpoint, project, created["Id"])
    assert (first["SuccessfulEndpointCount"], latest["ExecutionMetrics"]["LimitSkippedEndpoints"]) == (4, "4")


def test_temporary_failures_are_retried_with_backoff(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    sink.data_replies["ep-0001@example.org"] = "451 4.3.0 Mailbox busy, try later"
    created = campaign(pinpoint, project, everyone(pinpoint, project))
    drive(engine_server)
    assert sorted(sink.recipients()) == ["ep-0000@example.org", "ep-0002@example.org"]
    assert state(pinpoint, project, created["Id"]) == "EXECUTING"  # one message waits for its retry
    del sink.data_replies["ep-0001@example.org"]
    engine_server.clock.offset += timedelta(seconds=3)
    drive(engine_server)
    assert sorted(sink.recipients()) == [f"ep-000{n}@example.org" for n in range(3)]
    [activity] = activities(pinpoint, project, created["Id"])
    assert (activity["TotalEndpointCount"], activity["SuccessfulEndpointCount"]) == (3, 3)
    assert (
        activity["ExecutionMetrics"]["RetriedEndpoints"] == "1"
        and state(pinpoint, project, created["Id"]) == "COMPLETED"
    )

    async def sends(services: Any) -> list[dict[str, Any]]:
        rows = await services.db.read(lambda tx: event_store.recent(tx, project, 100))
        return [json.loads(row.doc) for row in rows if row.event_type == "_campaign.send"]

    events = engine_server.run(sends)
    assert len(events) == 4  # three first attempts and the retry
    assert {e["Attributes"]["campaign_id"] for e in events} == {created["Id"]}
    assert {e["Attributes"]["treatment_id"] for e in events} == {"0"}
    assert {e["Attributes"]["campaign_activity_id"] for e in events} == {activity["Id"]}
    # Pinpoint's names, each once: the Context's CampaignId, TreatmentId, ActivityId, ApplicationId and
    # ScheduledTime go to the transport only.
    assert {name for e in events for name in e["Attributes"]} == {
        "message_id",
        "channel_type",
        "destination",
        "campaign_id",
        "treatment_id",
        "campaign_activity_id",
        "delivery_status",
        "status_code",
        "from_address",
        "subject",
    }


def test_a_retry_is_not_held_back_by_the_limit_its_first_attempt_counted_toward(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """The failed first attempt is in the message log, so Total 1 would skip the retry if retries were limited."""
    add_endpoints(pinpoint, project, 2)
    sink.data_replies["ep-0001@example.org"] = "451 4.3.0 Mailbox busy, try later"
    created = campaign(pinpoint, project, everyone(pinpoint, project), Limits={"Total": 1})
    drive(engine_server)
    del sink.data_replies["ep-0001@example.org"]
    engine_server.clock.offset += timedelta(seconds=3)
    drive(engine_server)
    assert sorted(sink.recipients()) == ["ep-0000@example.org", "ep-0001@example.org"]
    [activity] = activities(pinpoint, project, created["Id"])
    assert activity["SuccessfulEndpointCount"] == 2 and "LimitSkippedEndpoints" not in activity["ExecutionMetrics"]


def test_a_run_whose_segment_is_gone_fails_and_the_campaign_is_deleted(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 2)
    segment_id = everyone(pinpoint, project)
    start = datetime.now(UTC) + timedelta(minutes=1)
    created = campaign(pinpoint, project, segment_id, Schedule={"StartTime": start.isoformat(), "Frequency": "DAILY"})
    engine_server.clock.offset = timedelta(minutes=2)

    async def start_run(services: Any) -> None:
        await services.campaign_scheduler.tick()

    engine_server.run(start_run)
    pinpoint.delete_segment(ApplicationId=project, SegmentId=segment_id)
    drive(engine_server)
    assert sink.received == [] and state(pinpoint, project, created["Id"]) == "DELETED"
    [activity] = activities(pinpoint, project, created["Id"])
    assert (activity["State"], activity["Result"]) == ("COMPLETED", "FAIL")
    engine_server.clock.offset = timedelta(days=1, minutes=2)
    drive(engine_server)
    assert len(activities(pinpoint, project, created["Id"])) == 1  # no further runs


def test_a_holder_whose_lease_ran_out_and_went_to_another_worker_sends_nothing(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """A stalled process whose batch was leased again by another, both now running it: the stale holder learns so
    just before sending and stops, so the batch goes out once (by the new holder), not twice. (Campaign sends do
    not claim recipients: the lease is what makes a batch's holder its only sender.)"""
    add_endpoints(pinpoint, project, 10)  # one batch of 10
    campaign(pinpoint, project, everyone(pinpoint, project))

    async def stale_and_new_holder(services: Any) -> None:
        await services.campaign_scheduler.tick()
        await Worker(
            services.queue, {"campaign.plan": services.queue_handlers["campaign.plan"]}, QueueSettings()
        ).run_once()
        [stale] = await services.queue.lease(["campaign.batch"], 1, 1)
        engine_server.clock.offset += timedelta(seconds=2)  # its lease runs out while it is stalled...
        [current] = await services.queue.lease(["campaign.batch"], 1, 60)  # ...and another worker takes the batch
        deliver = services.queue_handlers["campaign.batch"]
        outcomes = await asyncio.gather(deliver(stale), deliver(current), return_exceptions=True)  # both at once
        assert isinstance(outcomes[0], LeaseLost) and outcomes[1] is None

    engine_server.run(stale_and_new_holder)
    assert Counter(sink.recipients()) == {f"ep-{n:04d}@example.org": 1 for n in range(10)}
