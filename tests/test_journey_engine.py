"""The journey engine end to end: boto3 writes journeys, the engine runs them, a real SMTP server receives them.

The engine does not run in the background here: each test drives it (`tick`) and moves the server's clock instead
of sleeping, so every wait, split and entry is deterministic, and counts show that each step happened once. Every
test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import RunningServer, driven_settings
from pinpoint_calls import add_endpoints, email_project, everyone
from smtp_relay import Relay
from structlog.testing import capture_logs
from web_recorder import WebRecorder

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import ProviderReport
from clarion.channels.sms.keywords import inbound_report
from clarion.config import Settings
from clarion.journeys.config import JourneySettings
from clarion.store.migrations import _journey_outcomes_of_stored_events


@pytest.fixture
def recorder() -> Iterator[WebRecorder]:
    """A webhook that answers 200 to everything: the custom channel and the contact-center stand-in."""
    hooks = WebRecorder(lambda body: (200, {}))
    try:
        yield hooks
    finally:
        hooks.close()


@pytest.fixture
def engine_server(
    migrated_settings: Settings, relay: tuple[Relay, int], recorder: WebRecorder, tmp_path: Path
) -> Iterator[RunningServer]:
    _, port = relay
    postal = tmp_path / "postal-zones.csv"
    postal.write_text("US,9,America/Los_Angeles\n")  # the operator's postal-code file: ZIP codes 9xxxx
    journeys = JourneySettings(
        engine=False,
        contact_center_url=recorder.url + "/dial",  # the contact center's stand-in, on 127.0.0.1
        step_retries=2,
        step_retry_seconds=1,
        postal_code_zones=postal,
    )
    delivery = DeliverySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
            # An SMS gateway that takes every message (the recorder), so SMS activities send.
            "sms": {
                "provider": "http",
                "http": {"url": recorder.url + "/sms", "body": {"to": "{to}", "text": "{body}"}},
            },
        }
    )
    with RunningServer(driven_settings(migrated_settings, port, journeys=journeys, delivery=delivery)) as running:
        yield running


@pytest.fixture
def project(pinpoint: Any) -> str:
    app_id = email_project(pinpoint, "journeys", 0)
    for name, subject in (("first-mail", "Hello {{Attributes.name}}"), ("second-mail", "Still there?")):
        pinpoint.create_email_template(TemplateName=name, EmailTemplateRequest={"Subject": subject, "TextPart": "Hi"})
    return app_id


def tick(server: RunningServer) -> int:
    return server.run(lambda services: services.journey_engine.tick())


def writes_of_a_pass(server: RunningServer) -> int:
    """Run an engine pass that steps nobody, counting the write transactions it makes."""
    db = server.services.db
    original, writes = db.write, []

    async def counted(work: Any, *args: Any, **kwargs: Any) -> Any:
        writes.append(work)
        return await original(work, *args, **kwargs)

    db.write = counted  # type: ignore[method-assign]
    try:
        assert tick(server) == 0
    finally:
        db.write = original  # type: ignore[method-assign]
    return len(writes)


def create(pinpoint: Any, app_id: str, activities: dict[str, Any], start: str, **members: Any) -> str:
    body = {"Name": "j", "Activities": activities, "StartActivity": start, "State": "ACTIVE", **members}
    return pinpoint.create_journey(ApplicationId=app_id, WriteJourneyRequest=body)["JourneyResponse"]["Id"]


def for_everyone(pinpoint: Any, app_id: str, activities: dict[str, Any], start: str, **members: Any) -> str:
    """An ACTIVE journey whose segment start is a new segment of every endpoint of the project."""
    return create(
        pinpoint, app_id, activities, start, StartCondition=segment_start(everyone(pinpoint, app_id)), **members
    )


def segment_start(segment_id: str) -> dict[str, Any]:
    return {"SegmentStartCondition": {"SegmentId": segment_id}}


def event_start(event_type: str = "purchase") -> dict[str, Any]:
    """A StartCondition on each event of `event_type` (Pinpoint's endpoint event filter)."""
    event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": [event_type]}}}
    return {"EventStartCondition": {"EventFilter": event_filter}}


def put_event(pinpoint: Any, app_id: str, endpoint_ids: list[str], event_id: str, event_type: str = "purchase") -> None:
    """One PutEvents call: an event of `event_type` for each of these endpoints."""
    event = {"EventType": event_type, "Timestamp": "2026-11-23T10:00:00Z"}
    batch = {e: {"Endpoint": {}, "Events": {event_id: event}} for e in endpoint_ids}
    pinpoint.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": batch})


THANKS = {"thanks": {"EMAIL": {"TemplateName": "second-mail"}}}  # one email, then the participant leaves


def journey_metrics(pinpoint: Any, app_id: str, journey_id: str) -> dict[str, str]:
    response = pinpoint.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    return response["JourneyExecutionMetricsResponse"]["Metrics"]


def run_metrics(pinpoint: Any, app_id: str, journey_id: str) -> list[dict[str, str]]:
    """Each run's metrics, oldest run first."""
    runs = pinpoint.get_journey_runs(ApplicationId=app_id, JourneyId=journey_id)["JourneyRunsResponse"]["Item"]
    return [
        pinpoint.get_journey_run_execution_metrics(ApplicationId=app_id, JourneyId=journey_id, RunId=run["RunId"])[
            "JourneyRunExecutionMetricsResponse"
        ]["Metrics"]
        for run in runs
    ]


def activity_metrics(pinpoint: Any, app_id: str, journey_id: str, activity_id: str) -> dict[str, str]:
    response = pinpoint.get_journey_execution_activity_metrics(
        ApplicationId=app_id, JourneyId=journey_id, JourneyActivityId=activity_id
    )
    return response["JourneyExecutionActivityMetricsResponse"]["Metrics"]


def state(pinpoint: Any, app_id: str, journey_id: str) -> str:
    return pinpoint.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]["State"]


def sent_messages(server: RunningServer, journey_id: str) -> dict[str, list[str]]:
    """Endpoint id -> the message ids the journey sent it, from the message log."""

    def read(tx: Any) -> list[tuple[str, str]]:
        sql = "SELECT endpoint_id, message_id FROM messages WHERE journey_id = ? ORDER BY created_at"
        return tx.fetchall(sql, (journey_id,))

    found: dict[str, list[str]] = {}
    for endpoint_id, message_id in server.run(lambda services: services.db.read(read)):
        found.setdefault(endpoint_id, []).append(message_id)
    return found


def opened(endpoint: str, ids: dict[str, list[str]]) -> ProviderReport:
    return ProviderReport("_email.open", "EMAIL", message_id=ids[endpoint][0])


OPEN = {"EventType": {"DimensionType": "INCLUSIVE", "Values": ["_email.open"]}}


def journey_sends(server: RunningServer, project: str) -> list[dict[str, Any]]:
    """The attributes of the project's `_journey.send` events."""

    def read(tx: Any) -> list[dict[str, Any]]:
        rows = tx.fetchall("SELECT doc FROM events WHERE app_id = ? AND event_type = '_journey.send'", (project,))
        return [json.loads(doc)["Attributes"] for (doc,) in rows]

    return server.run(lambda services: services.db.read(read))


def test_mail_wait_and_a_split_on_opens_step_each_participant_once(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    ids = add_endpoints(pinpoint, project, 6)
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="texter", EndpointRequest={"ChannelType": "SMS", "Address": "+4915112345678"}
    )
    activities = {
        "mail": {"EMAIL": {"TemplateName": "first-mail", "NextActivity": "hour"}},
        "hour": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}, "NextActivity": "opened"}},
        "opened": {
            "ConditionalSplit": {
                "Condition": {"Conditions": [{"EventCondition": {"Dimensions": OPEN, "MessageActivity": "mail"}}]},
                "TrueActivity": "done",
                "FalseActivity": "again",
            }
        },
        "done": {"Holdout": {"Percentage": 100}},
        "again": {"EMAIL": {"TemplateName": "second-mail"}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "mail",
    )
    tick(engine_server)
    assert sorted(sink.recipients()) == sorted(f"{e}@example.org" for e in ids)
    assert next(r for r in sink.received if r.rcpt_tos == ["ep-0@example.org"]).message()["Subject"] == "Hello ep-0"
    assert state(pinpoint, project, journey_id) == "CLOSED"  # no refresh: closed to new entrants, still running
    assert journey_metrics(pinpoint, project, journey_id) == {"ENDPOINT_ACTIVE": "7", "ENDPOINT_ENTERED": "7"}
    assert tick(engine_server) == 0 and len(sink.received) == 6  # the wait holds them: nothing due, nothing sent
    assert writes_of_a_pass(engine_server) == 0  # a pass that finds nothing due reads, and writes nothing

    messages = sent_messages(engine_server, journey_id)
    engine_server.run(lambda services: services.record_outcomes([opened("ep-0", messages), opened("ep-1", messages)]))
    engine_server.clock.offset += timedelta(minutes=61)
    tick(engine_server)
    assert Counter(sink.recipients()) == {
        **{f"{e}@example.org": 1 for e in ids[:2]},
        **{f"{e}@example.org": 2 for e in ids[2:]},
    }
    assert tick(engine_server) == 0 and len(sink.received) == 10  # each step happened once
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "SUCCESSFUL": "6",
    }
    assert activity_metrics(pinpoint, project, journey_id, "hour") == {"COMPLETED": "7", "ENTERED": "7"}
    assert activity_metrics(pinpoint, project, journey_id, "opened") == {
        "Branch_1": "2",
        "Branch_2": "5",
        "ENTERED": "7",
    }
    assert activity_metrics(pinpoint, project, journey_id, "done") == {"ENTERED": "2", "HELD_OUT": "2"}
    assert journey_metrics(pinpoint, project, journey_id) == {
        "ENDPOINT_ACTIVE": "0",
        "ENDPOINT_ENTERED": "7",
        "ENDPOINT_LEFT": "7",
    }
    assert state(pinpoint, project, journey_id) == "COMPLETED"
    [run] = pinpoint.get_journey_runs(ApplicationId=project, JourneyId=journey_id)["JourneyRunsResponse"]["Item"]
    assert run["Status"] == "COMPLETED"
    run_metrics = pinpoint.get_journey_run_execution_activity_metrics(
        ApplicationId=project, JourneyId=journey_id, RunId=run["RunId"], JourneyActivityId="again"
    )["JourneyRunExecutionActivityMetricsResponse"]
    assert run_metrics["Metrics"] == {"ENDPOINT_CHANNEL_MISMATCH": "1", "SUCCESSFUL": "4"}

    sends = journey_sends(engine_server, project)
    assert len(sends) == 10
    assert {(s["journey_id"], s["journey_run_id"], s["journey_activity_type"]) for s in sends} == {
        (journey_id, run["RunId"], "EMAIL")
    }
    assert Counter(s["journey_activity_id"] for s in sends) == {"mail": 6, "again": 4}


def test_message_event_conditions_after_a_wait_longer_than_retention_read_what_the_journey_kept(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """Retention prunes the event log (90 days here): a split 100 days after the message still finds its opens, an
    app's push-open naming the journey and the send itself."""
    add_endpoints(pinpoint, project, 3)
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="texter", EndpointRequest={"ChannelType": "SMS", "Address": "+4915112345678"}
    )

    def on(values: list[str]) -> dict[str, Any]:
        dimensions = {"EventType": {"DimensionType": "INCLUSIVE", "Values": values}}
        return {"Condition": {"EventCondition": {"Dimensions": dimensions, "MessageActivity": "mail"}}}

    activities = {
        "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "later"}},
        "later": {
            "MultiCondition": {
                "EvaluationWaitTime": {"WaitFor": "P100D"},
                "Branches": [
                    {**on(["_email.open"]), "NextActivity": "opened"},
                    {**on(["_journey.opened_notification"]), "NextActivity": "app"},
                    {**on(["_email.send"]), "NextActivity": "sent"},
                ],
                "DefaultActivity": "none",
            }
        },
        **{name: {"Wait": {"WaitTime": {"WaitFor": "P1D"}}} for name in ("opened", "app", "sent", "none")},
    }
    journey_id = for_everyone(pinpoint, project, activities, "mail")
    tick(engine_server)
    messages = sent_messages(engine_server, journey_id)
    engine_server.run(lambda services: services.record_outcomes([opened("ep-0", messages)]))
    runs = pinpoint.get_journey_runs(ApplicationId=project, JourneyId=journey_id)["JourneyRunsResponse"]["Item"]
    run_id = runs[0]["RunId"]
    push_open = {
        "EventType": "_journey.opened_notification",
        "Timestamp": datetime.now(UTC).isoformat(),
        "Attributes": {"journey_id": journey_id, "journey_activity_id": "mail", "journey_run_id": run_id},
    }
    pinpoint.put_events(
        ApplicationId=project, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"o": push_open}}}}
    )

    def kept(tx: Any) -> list[tuple[Any, ...]]:
        return sorted(tx.fetchall("SELECT * FROM journey_outcomes WHERE app_id = ?", (project,)))

    outcomes = engine_server.run(lambda services: services.db.read(kept))
    assert [(row[3], row[4], row[5]) for row in outcomes] == [
        ("ep-0", messages["ep-0"][0], "_email.open"),
        ("ep-1", f"run:{run_id}", "_journey.opened_notification"),
    ]

    def stored_events(tx: Any) -> int:
        return int(tx.scalar("SELECT count(*) FROM events WHERE app_id = ?", (project,)))

    def refill(tx: Any) -> None:  # the migration's backfill finds the same in the stored events
        tx.execute("DELETE FROM journey_outcomes")
        tx.execute(_journey_outcomes_of_stored_events(tx.dialect))

    engine_server.run(lambda services: services.db.write(refill))
    assert engine_server.run(lambda services: services.db.read(kept)) == outcomes

    engine_server.clock.offset += timedelta(days=100, minutes=1)
    pruned = engine_server.run(lambda services: services.retention.prune_once())
    assert pruned["events"] > 0 and engine_server.run(lambda services: services.db.read(stored_events)) == 0
    tick(engine_server)
    engine_server.clock.offset = timedelta()  # back to the clock the client signs with
    assert activity_metrics(pinpoint, project, journey_id, "later") == {
        "Branch_1": "1",  # ep-0 opened the email
        "Branch_2": "1",  # ep-1's app reported the open of the journey's message
        "Branch_3": "1",  # ep-2 was sent it
        "Branch_4": "1",  # texter has no email: nothing was sent
        "ENTERED": "4",
    }


def test_each_message_event_a_condition_names_sends_its_participant_down_the_first_branch_it_matches(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """What became of an email (delivered, bounced hard or soft, complaint, unsubscribe) and of an SMS (delivered,
    failed; opted out: a STOP reply, which answers the last SMS sent to the number), reported after the send, each
    holds for the branch that names it, the first match first; then EXCLUSIVE inverts a condition and Operator ANY
    lets a SegmentCondition carry the participant."""
    pinpoint.update_sms_channel(ApplicationId=project, SMSChannelRequest={"Enabled": True, "SenderId": "SHOP"})
    pinpoint.create_sms_template(TemplateName="ping-sms", SMSTemplateRequest={"Body": "Hi"})
    mail_ids = ["m-delivered", "m-both", "m-hard", "m-soft", "m-complained", "m-unsubscribed", "m-quiet"]
    text_ids = ["t-reached", "t-failed", "t-stopped", "t-quiet"]
    items = [
        {"Id": e, "ChannelType": "EMAIL", "Address": f"{e}@example.org", "Attributes": {"kind": ["mail"]}}
        for e in mail_ids
    ] + [
        {"Id": e, "ChannelType": "SMS", "Address": f"+4915112345{n:03d}", "Attributes": {"kind": ["text"]}}
        for n, e in enumerate(text_ids)
    ]
    items[0]["Attributes"]["vip"] = ["yes"]  # m-delivered
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})

    def segment(name: str, attribute: str, value: str) -> str:
        request = {"Name": name, "Dimensions": {"Attributes": {attribute: {"Values": [value]}}}}
        return pinpoint.create_segment(ApplicationId=project, WriteSegmentRequest=request)["SegmentResponse"]["Id"]

    def on(source: str, *types: str, exclusive: bool = False) -> dict[str, Any]:
        dimension = {"DimensionType": "EXCLUSIVE" if exclusive else "INCLUSIVE", "Values": list(types)}
        return {"EventCondition": {"Dimensions": {"EventType": dimension}, "MessageActivity": source}}

    def branches(source: str, *groups: tuple[str, ...]) -> dict[str, Any]:
        return {
            "MultiCondition": {
                "EvaluationWaitTime": {"WaitFor": "PT1H"},
                "Branches": [{"Condition": on(source, *types), "NextActivity": "check"} for types in groups],
                "DefaultActivity": "check",
            }
        }

    day = {"Wait": {"WaitTime": {"WaitFor": "P1D"}}}
    vip = {"SegmentCondition": {"SegmentId": segment("vip", "vip", "yes")}}

    def check(source: str, event: str) -> dict[str, Any]:
        conditions = [vip, on(source, event, exclusive=True)]
        split = {"Condition": {"Conditions": conditions, "Operator": "ANY"}, "TrueActivity": "yes"}
        return {"ConditionalSplit": {**split, "FalseActivity": "no"}}

    mail = create(
        pinpoint,
        project,
        {
            "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "later"}},
            "later": branches(
                "mail",
                ("_email.delivered",),
                ("_email.hardbounce", "_email.softbounce"),
                ("_email.complaint",),
                ("_email.unsubscribe",),
            ),
            "check": check("mail", "_email.delivered"),
            "yes": day,
            "no": day,
        },
        "mail",
        StartCondition=segment_start(segment("mailers", "kind", "mail")),
    )
    text = create(
        pinpoint,
        project,
        {
            "text": {"SMS": {"TemplateName": "ping-sms", "NextActivity": "later"}},
            "later": branches("text", ("_SMS.SUCCESS",), ("_SMS.FAILURE",), ("_SMS.OPTOUT",)),
            "check": check("text", "_SMS.OPTOUT"),
            "yes": day,
            "no": day,
        },
        "text",
        StartCondition=segment_start(segment("texters", "kind", "text")),
    )
    tick(engine_server)
    assert activity_metrics(pinpoint, project, mail, "mail") == {"SUCCESSFUL": "7"}
    assert activity_metrics(pinpoint, project, text, "text") == {"SUCCESSFUL": "4"}
    sent = {**sent_messages(engine_server, mail), **sent_messages(engine_server, text)}
    reports = [
        ProviderReport(event, "EMAIL", message_id=sent[endpoint][0])
        for endpoint, event in (
            ("m-delivered", "_email.delivered"),
            ("m-both", "_email.delivered"),
            ("m-both", "_email.complaint"),  # the delivery's branch comes first
            ("m-hard", "_email.hardbounce"),
            ("m-soft", "_email.softbounce"),
            ("m-complained", "_email.complaint"),
            ("m-unsubscribed", "_email.unsubscribe"),
        )
    ] + [
        ProviderReport("_SMS.SUCCESS", "SMS", message_id=sent["t-reached"][0]),
        ProviderReport("_SMS.FAILURE", "SMS", message_id=sent["t-failed"][0]),
        inbound_report("+4915112345002", "SHOP", "STOP", "http"),  # t-stopped answers the journey's SMS
    ]
    assert engine_server.run(lambda services: services.record_outcomes(reports)) == len(reports)
    engine_server.clock.offset += timedelta(minutes=61)
    tick(engine_server)
    assert activity_metrics(pinpoint, project, mail, "later") == {
        "ENTERED": "7",
        "Branch_1": "2",  # delivered (m-both too: the first match wins)
        "Branch_2": "2",  # hard or soft bounce
        "Branch_3": "1",  # complaint
        "Branch_4": "1",  # unsubscribe
        "Branch_5": "1",  # nothing reported: the default path
    }
    assert activity_metrics(pinpoint, project, text, "later") == {
        "ENTERED": "4",
        "Branch_1": "1",
        "Branch_2": "1",
        "Branch_3": "1",
        "Branch_4": "1",
    }

    def where(tx: Any) -> dict[str, str]:
        sql = "SELECT endpoint_id, activity_id FROM journey_participants WHERE journey_id IN (?, ?)"
        return dict(tx.fetchall(sql, (mail, text)))

    # Not delivered (EXCLUSIVE), or in the vip segment (ANY): only m-both, delivered and no vip, is false; on SMS
    # only the opted-out one.
    placed = engine_server.run(lambda services: services.db.read(where))
    assert placed == {e: "no" if e in ("m-both", "t-stopped") else "yes" for e in mail_ids + text_ids}


def test_a_step_under_way_finishes_when_its_journey_is_cancelled_or_paused_meanwhile(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """The webhook of a CUSTOM activity changes its journey's state while the step waits for it: the step finishes
    and counts its messages; then a cancelled journey's participants leave before the next activity, and a paused
    one's wait where the step left them, set aside, until it resumes."""
    add_endpoints(pinpoint, project, 2)
    change = {"to": "CANCELLED"}

    def meanwhile(body: dict[str, Any]) -> tuple[int, Any]:
        """The first call (the step posts each endpoint) changes the state; every call is answered 200."""
        if to := change.pop("to", None):
            request = {"State": to}
            pinpoint.update_journey_state(
                ApplicationId=project, JourneyId=body["JourneyId"], JourneyStateRequest=request
            )
        return 200, {}

    hook = WebRecorder(meanwhile)
    activities = {
        "hook": {"CUSTOM": {"DeliveryUri": hook.url + "/hook", "MessageConfig": {"Data": "x"}, "NextActivity": "mail"}},
        "mail": {"EMAIL": {"TemplateName": "second-mail"}},
    }
    try:
        cancelled = for_everyone(pinpoint, project, activities, "hook")
        tick(engine_server)
        assert len(hook.requests) == 2 and state(pinpoint, project, cancelled) == "CANCELLED"
        assert activity_metrics(pinpoint, project, cancelled, "hook") == {"SUCCESSFUL": "2"}
        assert activity_metrics(pinpoint, project, cancelled, "mail") == {} and sink.received == []
        metrics = journey_metrics(pinpoint, project, cancelled)
        assert (metrics["CANCELLED"], metrics["ENDPOINT_ACTIVE"]) == ("2", "0")

        change["to"] = "PAUSED"
        paused = for_everyone(pinpoint, project, activities, "hook", RefreshFrequency="P1D")
        tick(engine_server)
        assert len(hook.requests) == 4 and state(pinpoint, project, paused) == "PAUSED"
        assert activity_metrics(pinpoint, project, paused, "hook") == {"SUCCESSFUL": "2"}

        def set_aside(tx: Any) -> list[tuple[str, Any, bool]]:
            sql = "SELECT activity_id, due_at, paused_due IS NOT NULL FROM journey_participants WHERE journey_id = ?"
            return tx.fetchall(sql, (paused,))

        assert engine_server.run(lambda services: services.db.read(set_aside)) == [("mail", None, True)] * 2
        assert tick(engine_server) == 0 and sink.received == []
        engine_server.clock.offset += timedelta(minutes=6)
        pinpoint.update_journey_state(ApplicationId=project, JourneyId=paused, JourneyStateRequest={"State": "ACTIVE"})
        tick(engine_server)
        assert sorted(sink.recipients()) == ["ep-0@example.org", "ep-1@example.org"]
    finally:
        hook.close()


def test_activities_that_read_nothing_are_passed_through_in_the_move_that_reaches_them(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    """A message, then a holdout, a random split and a wait: each participant is claimed and committed once, the
    three counted as if each had been a step of its own."""
    add_endpoints(pinpoint, project, 4)
    activities = {
        "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "hold"}},
        "hold": {"Holdout": {"Percentage": 0, "NextActivity": "draw"}},
        "draw": {
            "RandomSplit": {
                "Branches": [{"Percentage": 50, "NextActivity": "day"}, {"Percentage": 50, "NextActivity": "day"}]
            }
        },
        "day": {"Wait": {"WaitTime": {"WaitFor": "P1D"}, "NextActivity": "bye"}},
        "bye": {"Holdout": {"Percentage": 100}},
    }
    journey_id = for_everyone(pinpoint, project, activities, "mail")
    assert tick(engine_server) == 4  # one step each: sent, passed the holdout, drawn, waiting
    assert len(sink.received) == 4
    assert activity_metrics(pinpoint, project, journey_id, "hold") == {"ENTERED": "4", "PASSED": "4"}
    draws = activity_metrics(pinpoint, project, journey_id, "draw")
    assert draws["ENTERED"] == "4" and int(draws.get("Branch_1", 0)) + int(draws.get("Branch_2", 0)) == 4
    assert activity_metrics(pinpoint, project, journey_id, "day") == {"ENTERED": "4"}
    assert tick(engine_server) == 0  # the wait's timer is set
    engine_server.clock.offset += timedelta(days=1, seconds=1)
    assert tick(engine_server) == 4  # the wait ends and the holdout lets them out in the same step
    assert activity_metrics(pinpoint, project, journey_id, "day") == {"COMPLETED": "4", "ENTERED": "4"}
    assert activity_metrics(pinpoint, project, journey_id, "bye") == {"ENTERED": "4", "HELD_OUT": "4"}
    assert journey_metrics(pinpoint, project, journey_id)["ENDPOINT_LEFT"] == "4"


def test_random_split_and_multi_condition_on_endpoint_dimensions(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    ios = add_endpoints(pinpoint, project, 12, Demographic={"Platform": "ios"})
    items = [{"Id": f"droid-{n}", "ChannelType": "EMAIL", "Address": f"d{n}@example.org"} for n in range(8)]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    platform = {"SegmentDimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}
    until = "2030-01-01T00:00:00Z"
    activities = {
        "coin": {"RandomSplit": {"Branches": [{"Percentage": 50, "NextActivity": "which"}, {"Percentage": 50}]}},
        "which": {
            "MultiCondition": {
                "Branches": [{"Condition": platform, "NextActivity": "later"}],
                "DefaultActivity": "later",
                "EvaluationWaitTime": {"WaitFor": "PT10M"},
            }
        },
        "later": {"Wait": {"WaitTime": {"WaitUntil": until}}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "coin",
    )
    tick(engine_server)
    coin = activity_metrics(pinpoint, project, journey_id, "coin")
    assert int(coin["Branch_1"]) + int(coin["Branch_2"]) == 20 and coin["ENTERED"] == "20"
    assert 3 <= int(coin["Branch_1"]) <= 17  # about half
    assert activity_metrics(pinpoint, project, journey_id, "which") == {"ENTERED": coin["Branch_1"]}
    engine_server.clock.offset += timedelta(minutes=11)
    tick(engine_server)
    which = activity_metrics(pinpoint, project, journey_id, "which")
    assert int(which.get("Branch_1", "0")) + int(which.get("Branch_2", "0")) == int(coin["Branch_1"])

    def chosen(tx: Any) -> list[str]:
        sql = "SELECT endpoint_id FROM journey_participants WHERE journey_id = ? AND activity_id = 'later'"
        return [row[0] for row in tx.fetchall(sql, (journey_id,))]

    waiting = engine_server.run(lambda services: services.db.read(chosen))
    assert len(waiting) == int(coin["Branch_1"])
    assert int(which.get("Branch_1", "0")) == len([e for e in waiting if e in ios])  # the first match wins
    assert journey_metrics(pinpoint, project, journey_id)["ENDPOINT_ACTIVE"] == coin["Branch_1"]


def test_event_entry_and_re_entry_limits(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 2)
    activities = {"day": {"Wait": {"WaitTime": {"WaitFor": "P1D"}, "NextActivity": "thanks"}}, **THANKS}
    journey_id = create(
        pinpoint, project, activities, "day", StartCondition=event_start(), Limits={"EndpointReentryCap": 2}
    )

    def purchase(endpoint_id: str, event_id: str) -> None:
        put_event(pinpoint, project, [endpoint_id], event_id)

    purchase("ep-0", "p1")
    purchase("ep-0", "p2")  # still in the journey: rejected
    tick(engine_server)
    assert journey_metrics(pinpoint, project, journey_id) == {
        "ACTIVE_ENDPOINT_REJECTED": "1",
        "ENDPOINT_ACTIVE": "1",
        "ENDPOINT_ENTERED": "1",
    }
    engine_server.clock.offset += timedelta(days=1, minutes=1)
    tick(engine_server)
    assert sink.recipients() == ["ep-0@example.org"]
    purchase("ep-0", "p3")  # left: may enter a second time
    tick(engine_server)
    engine_server.clock.offset += timedelta(days=1, minutes=1)
    tick(engine_server)
    purchase("ep-0", "p4")  # the cap is two entries
    purchase("ep-1", "p5")
    tick(engine_server)
    assert sink.recipients() == ["ep-0@example.org"] * 2
    metrics = journey_metrics(pinpoint, project, journey_id)
    assert (metrics["ENDPOINT_ENTERED"], metrics["REENTRY_CAP_EXCEEDED"], metrics["ENDPOINT_ACTIVE"]) == ("3", "1", "1")
    assert state(pinpoint, project, journey_id) == "ACTIVE"


def test_pause_freezes_waits_refresh_lets_in_new_members_cancel_and_delete(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    activities = {
        "two": {"Wait": {"WaitTime": {"WaitFor": "PT2H"}, "NextActivity": "mail"}},
        "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "week"}},
        "week": {"Wait": {"WaitTime": {"WaitFor": "P7D"}}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "two",
        RefreshFrequency="PT1H",
    )

    def move(state_name: str) -> None:
        pinpoint.update_journey_state(
            ApplicationId=project, JourneyId=journey_id, JourneyStateRequest={"State": state_name}
        )

    def timers(tx: Any) -> tuple[int, int]:
        """(timers in the due-time index the engine scans, segment entries due) of this journey."""
        due = "SELECT count(*) FROM journey_participants WHERE journey_id = ? AND due_at IS NOT NULL"
        entry = "SELECT count(*) FROM journeys WHERE id = ? AND next_entry_at IS NOT NULL"
        return int(tx.scalar(due, (journey_id,))), int(tx.scalar(entry, (journey_id,)))

    tick(engine_server)
    assert engine_server.run(lambda services: services.db.read(timers)) == (3, 1)
    move("PAUSED")
    assert engine_server.run(lambda services: services.db.read(timers)) == (0, 0)  # a paused journey costs no pass
    engine_server.clock.offset += timedelta(hours=3)
    tick(engine_server)
    assert sink.received == []  # paused: the waits are frozen, nobody enters
    move("ACTIVE")  # three hours after the pause: the 2-hour waits end two hours from now
    assert engine_server.run(lambda services: services.db.read(timers)) == (3, 1)
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="late", EndpointRequest={"ChannelType": "EMAIL", "Address": "l@example.org"}
    )
    tick(engine_server)  # the refresh is overdue: only the new member enters
    assert sink.received == []
    assert journey_metrics(pinpoint, project, journey_id)["ENDPOINT_ENTERED"] == "4"
    engine_server.clock.offset += timedelta(hours=2, minutes=1)
    tick(engine_server)
    assert sorted(sink.recipients()) == ["ep-0@example.org", "ep-1@example.org", "ep-2@example.org", "l@example.org"]
    assert (
        len(pinpoint.get_journey_runs(ApplicationId=project, JourneyId=journey_id)["JourneyRunsResponse"]["Item"]) >= 2
    )
    move("CANCELLED")
    metrics = journey_metrics(pinpoint, project, journey_id)
    assert (metrics["CANCELLED"], metrics["ENDPOINT_ACTIVE"]) == ("4", "0")
    runs = pinpoint.get_journey_runs(ApplicationId=project, JourneyId=journey_id)["JourneyRunsResponse"]["Item"]
    assert {run["Status"] for run in runs} <= {"CANCELLED", "COMPLETED"} and runs[-1]["Status"] == "CANCELLED"
    engine_server.clock.offset += timedelta(days=8)
    assert tick(engine_server) == 0 and len(sink.received) == 4
    pinpoint.delete_journey(ApplicationId=project, JourneyId=journey_id)

    def left(tx: Any) -> int:
        return tx.scalar("SELECT count(*) FROM journey_participants WHERE journey_id = ?", (journey_id,))

    assert engine_server.run(lambda services: services.db.read(left)) == 0


def offset_to(server: RunningServer, zone: str, weekday: int, hour: int) -> None:
    """Move the server's clock to the next `weekday` (0 Monday) at `hour`:00 local time in `zone`."""
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    days = (weekday - local.weekday()) % 7 or 7
    target = (local + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    server.clock.offset = target - datetime.now(UTC)


def test_sending_schedule_quiet_time_by_phone_number_and_timeframe_cap(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    pinpoint.update_endpoint(
        ApplicationId=project,
        EndpointId="ny",
        EndpointRequest={
            "ChannelType": "EMAIL",
            "Address": "ny@example.org",
            "Demographic": {"Timezone": "America/New_York"},
        },
    )
    pinpoint.update_endpoint(  # no time zone of its own: the number is German
        ApplicationId=project, EndpointId="de", EndpointRequest={"ChannelType": "SMS", "Address": "+4915112345678"}
    )
    pinpoint.create_sms_template(TemplateName="night-sms", SMSTemplateRequest={"Body": "Hi"})
    pinpoint.update_sms_channel(ApplicationId=project, SMSChannelRequest={"Enabled": True, "SenderId": "SHOP"})
    weekdays = {day: [{"StartTime": "09:00", "EndTime": "17:00"}] for day in ("MONDAY", "TUESDAY")}
    activities = {
        "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "again"}},
        "again": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "text"}},
        "text": {"SMS": {"TemplateName": "night-sms"}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "mail",
        SendingSchedule=True,
        OpenHours={"EMAIL": weekdays},
        QuietTime={"Start": "22:00", "End": "07:00"},
        WaitForQuietTime=True,
        TimezoneEstimationMethods=["PHONE_NUMBER"],
        Limits={"TimeframeCap": {"Cap": 1, "Days": 7}},
    )
    offset_to(engine_server, "America/New_York", 6, 12)  # Sunday noon in New York (18:00 in Berlin)
    tick(engine_server)
    assert sink.received == []  # Sunday: no open hours for email
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "SENDING_SCHEDULE_WAIT": "1",
    }
    engine_server.clock.offset += timedelta(hours=21, minutes=1)  # Monday 09:01 in New York, 15:01 in Berlin
    tick(engine_server)
    assert sink.recipients() == ["ny@example.org"]  # sent once: the second email is over the timeframe cap
    assert activity_metrics(pinpoint, project, journey_id, "again") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "LIMIT_REACHED": "1",
    }
    # The SMS waited for nothing at 15:00 in Berlin; a second journey entering at 23:00 Berlin time waits.
    assert "QUIET_TIME_WAIT" not in activity_metrics(pinpoint, project, journey_id, "text")
    night = for_everyone(
        pinpoint,
        project,
        {"text": {"SMS": {"TemplateName": "night-sms"}}},
        "text",
        QuietTime={"Start": "22:00", "End": "07:00"},
        WaitForQuietTime=True,
        TimezoneEstimationMethods=["PHONE_NUMBER"],
    )
    skipped = for_everyone(  # the same without WaitForQuietTime: the message is not sent at all
        pinpoint,
        project,
        {"text": {"SMS": {"TemplateName": "night-sms"}}},
        "text",
        QuietTime={"Start": "22:00", "End": "07:00"},
        TimezoneEstimationMethods=["PHONE_NUMBER"],
    )
    offset_to(engine_server, "Europe/Berlin", 2, 23)
    # SMS closed from an hour ago until 08:00 in Berlin (a quiet time is required with ClosedDays; this one is short).
    closed_from = engine_server.clock.now() - timedelta(hours=1)
    maintenance = {"Name": "maintenance", "StartDateTime": closed_from.isoformat()}
    maintenance["EndDateTime"] = (closed_from + timedelta(hours=10)).isoformat()
    closed = for_everyone(
        pinpoint,
        project,
        {"text": {"SMS": {"TemplateName": "night-sms"}}},
        "text",
        SendingSchedule=True,
        QuietTime={"Start": "03:00", "End": "03:01"},
        ClosedDays={"SMS": [maintenance]},
    )
    tick(engine_server)
    assert activity_metrics(pinpoint, project, night, "text") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "QUIET_TIME_WAIT": "1",
    }
    assert activity_metrics(pinpoint, project, skipped, "text") == {"ENDPOINT_CHANNEL_MISMATCH": "1", "QUIET_TIME": "1"}
    assert journey_metrics(pinpoint, project, skipped)["ENDPOINT_LEFT"] == "2"
    assert activity_metrics(pinpoint, project, closed, "text") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "SENDING_SCHEDULE_WAIT": "1",
    }
    engine_server.clock.offset += timedelta(hours=8, minutes=1)  # 07:01 in Berlin
    tick(engine_server)
    texted = activity_metrics(pinpoint, project, night, "text")
    assert texted == {"ENDPOINT_CHANNEL_MISMATCH": "1", "QUIET_TIME_WAIT": "1", "SUCCESSFUL": "1"}
    assert journey_metrics(pinpoint, project, night)["ENDPOINT_ACTIVE"] == "0"
    assert "SUCCESSFUL" not in activity_metrics(pinpoint, project, closed, "text")  # closed until 08:00
    engine_server.clock.offset += timedelta(hours=1)  # 08:01: the closed days are over
    tick(engine_server)
    assert activity_metrics(pinpoint, project, closed, "text") == {
        "ENDPOINT_CHANNEL_MISMATCH": "1",
        "SENDING_SCHEDULE_WAIT": "1",
        "SUCCESSFUL": "1",
    }


def test_custom_activity_passes_other_endpoint_types_through_and_the_contact_center_stand_in_is_called(
    engine_server: RunningServer, pinpoint: Any, project: str, recorder: WebRecorder
) -> None:
    add_endpoints(pinpoint, project, 2)
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="texter", EndpointRequest={"ChannelType": "SMS", "Address": "+4915112345678"}
    )
    activities = {
        "hook": {
            "CUSTOM": {
                "DeliveryUri": recorder.url + "/hook",
                "EndpointTypes": ["SMS"],
                "MessageConfig": {"Data": "hello"},
                "NextActivity": "call",
            }
        },
        "call": {"ContactCenter": {}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "hook",
        JourneyChannelSettings={"ConnectCampaignArn": "arn:aws:connect:eu-west-1:1:instance/x/campaign/y"},
    )
    tick(engine_server)
    hooks = [body for path, _, body in recorder.requests if path == "/hook"]
    assert len(hooks) == 1 and hooks[0]["Data"] == "hello" and list(hooks[0]["Endpoints"]) == ["texter"]
    assert (hooks[0]["JourneyId"], hooks[0]["ActivityId"]) == (journey_id, "hook")
    # The webhook's names stay out of the send event, which names the activity as Pinpoint's stream does.
    [sent] = journey_sends(engine_server, project)
    assert (sent["journey_id"], sent["journey_activity_id"]) == (journey_id, "hook")
    assert not {"JourneyId", "ActivityId"} & set(sent)
    [dial] = [body for path, _, body in recorder.requests if path == "/dial"]
    assert dial["JourneyId"] == journey_id and dial["JourneyActivityId"] == "call"
    assert sorted(p["EndpointId"] for p in dial["Participants"]) == ["ep-0", "ep-1", "texter"]
    assert dial["JourneyChannelSettings"]["ConnectCampaignArn"].endswith("campaign/y")
    assert activity_metrics(pinpoint, project, journey_id, "hook") == {
        "ENDPOINT_CHANNEL_MISMATCH": "2",
        "SUCCESSFUL": "1",
    }
    assert activity_metrics(pinpoint, project, journey_id, "call") == {"ENTERED": "3", "SUCCESSFUL": "3"}
    assert state(pinpoint, project, journey_id) == "COMPLETED"


def test_the_contact_center_call_is_retried_from_the_store_across_a_restart_and_a_call_that_never_works_fails(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    add_endpoints(pinpoint, project, 2)
    answers = [503, 503]  # then 200
    dial = WebRecorder(lambda body: (answers.pop(0) if answers else 200, {}))
    engine_server.stop()  # again with a contact center that fails at first
    journeys = engine_server.settings.journeys.model_copy(update={"contact_center_url": dial.url + "/dial"})
    settings = engine_server.settings.model_copy(update={"journeys": journeys})
    activities = {
        "call": {"ContactCenter": {"NextActivity": "after"}},
        "after": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}},
    }
    calls = Counter[str]()

    def count(server: RunningServer) -> None:
        contact = server.services.metrics.journey_contact_center
        for outcome in ("successful", "retried", "failed"):
            calls[outcome] = int(contact.labels(outcome)._value.get())

    try:
        with RunningServer(settings) as server:
            client = server.client()
            journey_id = for_everyone(client, project, activities, "call")
            with capture_logs() as logs:
                tick(server)  # 503: both wait at the activity for the retry, a second away
            assert activity_metrics(client, project, journey_id, "call") == {"ENTERED": "2", "RETRIED": "2"}
            [retry] = [line for line in logs if line["event"] == "journey_contact_center_retry"]
            assert (retry["log_level"], retry["error"], retry["participants"]) == ("warning", "HTTP 503", 2)
            assert tick(server) == 0
            server.clock.offset += timedelta(seconds=1)
            tick(server)  # 503 again: the next try two seconds later
            count(server)
            assert calls == {"successful": 0, "retried": 4, "failed": 0}
        with RunningServer(settings) as server:  # restarted: the retry is the participants' timer in the store
            client = server.client()
            server.clock.offset = timedelta(seconds=3)
            tick(server)
            assert activity_metrics(client, project, journey_id, "call") == {
                "ENTERED": "2",
                "RETRIED": "4",
                "SUCCESSFUL": "2",
            }
            assert activity_metrics(client, project, journey_id, "after") == {"ENTERED": "2"}
            assert len(dial.requests) == 3
            assert {(p["EndpointId"], p["Entry"]) for p in dial.requests[-1][2]["Participants"]} == {
                ("ep-0", 1),
                ("ep-1", 1),
            }
            answers[:] = [500] * 3  # a contact center that never answers 2xx: three tries, then FAILED
            never = for_everyone(client, project, activities, "call")
            tick(server)
            server.clock.offset += timedelta(seconds=1)
            tick(server)
            server.clock.offset += timedelta(seconds=2)
            with capture_logs() as logs:
                tick(server)
            assert activity_metrics(client, project, never, "call") == {"ENTERED": "2", "RETRIED": "4", "FAILED": "2"}
            assert activity_metrics(client, project, never, "after") == {"ENTERED": "2"}  # it moved on
            [failed] = [line for line in logs if line["event"] == "journey_contact_center_failed"]
            assert (failed["log_level"], failed["participants"], failed["tries"]) == ("error", 2, 3)
            count(server)
            assert calls == {"successful": 2, "retried": 4, "failed": 2}
    finally:
        dial.close()


def test_endpoint_conditions_are_ored_across_the_users_endpoints(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    items = [
        {
            "Id": "phone-1",
            "ChannelType": "GCM",
            "Address": "t1",
            "Demographic": {"Platform": "android"},
            "User": {"UserId": "u1"},
        },
        {
            "Id": "tablet-1",
            "ChannelType": "APNS",
            "Address": "t2",
            "Demographic": {"Platform": "ios"},
            "User": {"UserId": "u1"},
        },
        {
            "Id": "phone-2",
            "ChannelType": "GCM",
            "Address": "t3",
            "Demographic": {"Platform": "android"},
            "User": {"UserId": "u2"},
        },
        {"Id": "alone", "ChannelType": "GCM", "Address": "t4", "Demographic": {"Platform": "android"}},
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    androids = pinpoint.create_segment(
        ApplicationId=project,
        WriteSegmentRequest={"Name": "android", "Dimensions": {"Demographic": {"Platform": {"Values": ["android"]}}}},
    )["SegmentResponse"]["Id"]
    ios = {"SegmentDimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}
    activities = {
        "apple": {
            "ConditionalSplit": {"Condition": {"Conditions": [ios]}, "TrueActivity": "yes", "FalseActivity": "no"}
        },
        "yes": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}},
        "no": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}},
    }
    journey_id = create(pinpoint, project, activities, "apple", StartCondition=segment_start(androids))
    tick(engine_server)

    def where(tx: Any) -> dict[str, str]:
        sql = "SELECT endpoint_id, activity_id FROM journey_participants WHERE journey_id = ?"
        return dict(tx.fetchall(sql, (journey_id,)))

    # phone-1's user also has an iOS tablet: the condition holds for it; the others have no iOS endpoint.
    assert engine_server.run(lambda services: services.db.read(where)) == {
        "phone-1": "yes",
        "phone-2": "no",
        "alone": "no",
    }


def test_a_temporary_failure_is_tried_again_at_the_same_activity(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 2)
    sink.rcpt_replies["ep-0@example.org"] = "451 4.3.0 mailbox busy, try later"
    activities = {"mail": {"EMAIL": {"TemplateName": "second-mail"}}}
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "mail",
    )
    tick(engine_server)
    assert sink.recipients() == ["ep-1@example.org"]
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {"RETRIED": "1", "SUCCESSFUL": "1"}
    del sink.rcpt_replies["ep-0@example.org"]
    engine_server.clock.offset += timedelta(seconds=3)  # the first retry is 2 s later
    tick(engine_server)
    assert sorted(sink.recipients()) == ["ep-0@example.org", "ep-1@example.org"]
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {"RETRIED": "1", "SUCCESSFUL": "2"}
    assert state(pinpoint, project, journey_id) == "COMPLETED"


def test_a_step_that_keeps_failing_is_retried_with_backoff_then_marked_failed(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    pinpoint.create_email_template(TemplateName="doomed", EmailTemplateRequest={"Subject": "s", "TextPart": "t"})
    activities = {
        "hour": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}, "NextActivity": "mail"}},
        "mail": {"EMAIL": {"TemplateName": "doomed"}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "hour",
    )
    tick(engine_server)
    pinpoint.delete_email_template(TemplateName="doomed")  # the message step now raises
    failures = engine_server.services.metrics.journey_step_failures

    def failed(outcome: str) -> float:
        return failures.labels(outcome)._value.get()

    before = failed("retried"), failed("gave_up")
    engine_server.clock.offset += timedelta(hours=1, seconds=1)
    tick(engine_server)
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {"STEP_RETRIED": "3"}
    assert tick(engine_server) == 0  # backing off: the retry is a second away, then two
    engine_server.clock.offset += timedelta(seconds=1)
    tick(engine_server)
    assert tick(engine_server) == 0
    engine_server.clock.offset += timedelta(seconds=1)
    assert tick(engine_server) == 0  # two seconds after the second try, not one
    engine_server.clock.offset += timedelta(seconds=1)
    tick(engine_server)
    assert activity_metrics(pinpoint, project, journey_id, "mail") == {"STEP_FAILED": "3", "STEP_RETRIED": "6"}
    metrics = journey_metrics(pinpoint, project, journey_id)
    assert (metrics["ENDPOINT_FAILED"], metrics["ENDPOINT_ACTIVE"]) == ("3", "0") and "ENDPOINT_LEFT" not in metrics
    assert (failed("retried") - before[0], failed("gave_up") - before[1]) == (6, 3)
    assert sink.received == []
    engine_server.clock.offset += timedelta(days=1)
    assert tick(engine_server) == 0  # given up: never tried again

    def marked(tx: Any) -> list[tuple[str, str | None]]:
        sql = "SELECT failed_activity, activity_id FROM journey_participants WHERE journey_id = ?"
        return tx.fetchall(sql, (journey_id,))

    assert engine_server.run(lambda services: services.db.read(marked)) == [("mail", None)] * 3


def test_local_time_starts_each_participant_at_the_start_time_on_its_own_clock(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    for endpoint_id, zone in (("tokyo", "Asia/Tokyo"), ("newyork", "America/New_York")):
        pinpoint.update_endpoint(
            ApplicationId=project,
            EndpointId=endpoint_id,
            EndpointRequest={
                "ChannelType": "EMAIL",
                "Address": f"{endpoint_id}@example.org",
                "Demographic": {"Timezone": zone},
            },
        )
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    journey_id = for_everyone(
        pinpoint,
        project,
        {"mail": {"EMAIL": {"TemplateName": "second-mail"}}},
        "mail",
        Schedule={"StartTime": start.isoformat(), "Timezone": "UTC"},
        LocalTime=True,
    )

    def at(moment: datetime) -> None:
        engine_server.clock.offset = moment - datetime.now(UTC)
        tick(engine_server)

    at(start - timedelta(hours=14, minutes=1))
    assert journey_metrics(pinpoint, project, journey_id) == {}  # 09:00 has come nowhere yet
    at(start - timedelta(hours=13, minutes=59))  # 09:00 has come in UTC+14: the segment enters
    assert journey_metrics(pinpoint, project, journey_id)["ENDPOINT_ENTERED"] == "2" and sink.received == []
    at(start - timedelta(hours=8, minutes=59))  # 09:01 in Tokyo
    assert sink.recipients() == ["tokyo@example.org"]
    at(start + timedelta(hours=5, minutes=1))  # 09:01 in New York (EST)
    assert sink.recipients() == ["tokyo@example.org", "newyork@example.org"]


def test_an_event_journey_closes_at_its_end_and_completes_when_empty(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    add_endpoints(pinpoint, project, 1)
    ends = datetime.now(UTC) + timedelta(hours=1)
    journey_id = create(
        pinpoint,
        project,
        {"hour": {"Wait": {"WaitTime": {"WaitFor": "PT2H"}}}},
        "hour",
        StartCondition=event_start("visit"),
        Schedule={"EndTime": ends.isoformat()},
    )
    put_event(pinpoint, project, ["ep-0"], "v", "visit")
    tick(engine_server)
    engine_server.clock.offset += timedelta(hours=1, minutes=1)
    tick(engine_server)
    assert state(pinpoint, project, journey_id) == "CLOSED"  # past its end: ep-0 still waits inside
    put_event(pinpoint, project, ["ep-0"], "w", "visit")
    engine_server.clock.offset += timedelta(hours=1)
    tick(engine_server)
    assert state(pinpoint, project, journey_id) == "COMPLETED"
    assert journey_metrics(pinpoint, project, journey_id)["ENDPOINT_ENTERED"] == "1"


def test_daily_and_total_caps_with_the_projects_journey_limits(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 2)
    # The project's JourneyLimits fill what a journey leaves unset: here its daily cap.
    pinpoint.update_application_settings(
        ApplicationId=project, WriteApplicationSettingsRequest={"JourneyLimits": {"DailyCap": 1}}
    )
    day = {"WaitTime": {"WaitFor": "P1D"}}
    activities = {
        "m1": {"EMAIL": {"TemplateName": "first-mail", "NextActivity": "m2"}},
        "m2": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "d1"}},
        "d1": {"Wait": {**day, "NextActivity": "m3"}},
        "m3": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "d2"}},
        "d2": {"Wait": {**day, "NextActivity": "m4"}},
        "m4": {"EMAIL": {"TemplateName": "second-mail"}},
    }
    journey_id = for_everyone(
        pinpoint,
        project,
        activities,
        "m1",
        Limits={"TotalCap": 2},
    )
    tick(engine_server)
    assert len(sink.received) == 2  # the first email; the second, the same day, is over the daily cap
    assert activity_metrics(pinpoint, project, journey_id, "m2") == {"LIMIT_REACHED": "2"}
    engine_server.clock.offset += timedelta(days=1, minutes=1)
    tick(engine_server)
    assert len(sink.received) == 4  # a day later: under both caps
    assert activity_metrics(pinpoint, project, journey_id, "m3") == {"SUCCESSFUL": "2"}
    engine_server.clock.offset += timedelta(days=1, minutes=1)
    tick(engine_server)
    assert len(sink.received) == 4  # two emails ever: the total cap
    assert activity_metrics(pinpoint, project, journey_id, "m4") == {"LIMIT_REACHED": "2"}
    assert Counter(sink.recipients()) == {"ep-0@example.org": 2, "ep-1@example.org": 2}


class RecordingBuckets:
    """The server's own MessagesPerSecond buckets, noting each reservation (key, rate, count)."""

    def __init__(self, buckets: Any) -> None:
        self.buckets = buckets
        self.reserved: list[tuple[str, float, int]] = []

    async def reserve(self, key: str, per_second: float, count: int) -> float:
        self.reserved.append((key, per_second, count))
        return float(await self.buckets.reserve(key, per_second, count))

    async def aclose(self) -> None:
        await self.buckets.aclose()


def test_messages_per_second_paces_the_journeys_own_bucket(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 3)
    delivery = engine_server.services.delivery
    recording = RecordingBuckets(delivery.buckets)
    delivery.buckets = recording
    try:
        activities = {"mail": {"EMAIL": {"TemplateName": "second-mail"}}}
        segment = segment_start(everyone(pinpoint, project))
        paced = create(pinpoint, project, activities, "mail", StartCondition=segment, Limits={"MessagesPerSecond": 5})
        free = create(pinpoint, project, activities, "mail", StartCondition=segment)
        tick(engine_server)
    finally:
        delivery.buckets = recording.buckets
    assert len(sink.received) == 6
    # Only the journey with a rate draws, from a bucket of its own (every process of a group shares it), for
    # each message it sends.
    assert recording.reserved == [(f"mps:{paced}", 5, 3)]
    assert f"mps:{free}" not in {key for key, _, _ in recording.reserved}


def test_reentry_interval_keeps_an_endpoint_out_until_it_has_passed(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 1)
    limits = {"EndpointReentryInterval": "PT12H"}
    journey_id = create(pinpoint, project, THANKS, "thanks", StartCondition=event_start(), Limits=limits)

    def purchase(event_id: str) -> None:
        put_event(pinpoint, project, ["ep-0"], event_id)

    purchase("p1")
    tick(engine_server)
    engine_server.clock.offset += timedelta(hours=11)
    purchase("p2")  # left the journey, but entered 11 hours ago
    tick(engine_server)
    assert len(sink.received) == 1
    assert journey_metrics(pinpoint, project, journey_id)["REENTRY_CAP_EXCEEDED"] == "1"
    engine_server.clock.offset += timedelta(hours=1, minutes=1)
    purchase("p3")  # 12 hours on: no cap, so it enters again
    tick(engine_server)
    assert sink.recipients() == ["ep-0@example.org"] * 2
    metrics = journey_metrics(pinpoint, project, journey_id)
    assert (metrics["ENDPOINT_ENTERED"], metrics["REENTRY_CAP_EXCEEDED"]) == ("2", "1")


def test_refresh_on_segment_update_lets_new_members_in_until_the_end(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    gold = {"Attributes": {"plan": {"Values": ["gold"]}}}
    add_endpoints(pinpoint, project, 1, Attributes={"plan": ["gold"]})
    segment = {"Name": "gold", "Dimensions": gold}
    segment_id = pinpoint.create_segment(ApplicationId=project, WriteSegmentRequest=segment)["SegmentResponse"]["Id"]
    ends = (engine_server.clock.now() + timedelta(days=2)).isoformat()
    activities = {"mail": {"EMAIL": {"TemplateName": "second-mail"}}}
    refreshed = create(
        pinpoint,
        project,
        activities,
        "mail",
        StartCondition=segment_start(segment_id),
        RefreshOnSegmentUpdate=True,
        Schedule={"EndTime": ends},
    )
    once = create(pinpoint, project, activities, "mail", StartCondition=segment_start(segment_id))
    tick(engine_server)
    assert (state(pinpoint, project, refreshed), state(pinpoint, project, once)) == ("ACTIVE", "COMPLETED")
    pinpoint.update_endpoint(
        ApplicationId=project,
        EndpointId="late",
        EndpointRequest={"ChannelType": "EMAIL", "Address": "late@example.org", "Attributes": {"plan": ["gold"]}},
    )
    tick(engine_server)
    assert len(sink.received) == 2  # a new member, but the segment itself has not been updated
    pinpoint.update_segment(ApplicationId=project, SegmentId=segment_id, WriteSegmentRequest=segment)
    tick(engine_server)
    assert Counter(sink.recipients()) == {"ep-0@example.org": 2, "late@example.org": 1}  # only the new member
    assert journey_metrics(pinpoint, project, refreshed)["ENDPOINT_ENTERED"] == "2"
    assert (
        len(pinpoint.get_journey_runs(ApplicationId=project, JourneyId=refreshed)["JourneyRunsResponse"]["Item"]) == 2
    )
    engine_server.clock.offset += timedelta(days=2, minutes=1)
    tick(engine_server)
    tick(engine_server)
    assert state(pinpoint, project, refreshed) == "COMPLETED"  # closed at its end, and nobody is left


def test_a_user_with_several_endpoints_enters_once(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    people = [
        ("alice-mail", "EMAIL", "alice@example.org", "alice"),
        ("alice-work", "EMAIL", "alice@work.example.org", "alice"),
        ("solo", "EMAIL", "solo@example.org", None),
    ]
    items = [
        {"Id": i, "ChannelType": c, "Address": a, **({"User": {"UserId": u}} if u else {})} for i, c, a, u in people
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    activities = {
        "mail": {"EMAIL": {"TemplateName": "second-mail", "NextActivity": "day"}},
        "day": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}},
    }
    segment = segment_start(everyone(pinpoint, project))
    journey_id = create(pinpoint, project, activities, "mail", StartCondition=segment)
    tick(engine_server)
    assert sorted(sink.recipients()) == ["alice@example.org", "solo@example.org"]  # alice by her first endpoint
    assert run_metrics(pinpoint, project, journey_id) == [
        {
            "ENDPOINT_ACTIVE": "2",
            "ENDPOINT_ENTERED": "2",
            "ENDPOINT_PRODUCED": "3",
            "DUPLICATE_USER": "1",  # alice's second endpoint
        }
    ]
    assert journey_metrics(pinpoint, project, journey_id) == {"ENDPOINT_ACTIVE": "2", "ENDPOINT_ENTERED": "2"}

    # An event journey: while one of a user's endpoints is in it, the user's other endpoints are kept out.
    on_event = create(pinpoint, project, activities, "mail", StartCondition=event_start())
    for endpoint_id in ("alice-mail", "alice-work"):
        put_event(pinpoint, project, [endpoint_id], "p")
    tick(engine_server)
    metrics = journey_metrics(pinpoint, project, on_event)
    assert (metrics["ENDPOINT_ENTERED"], metrics["ACTIVE_ENDPOINT_REJECTED"]) == ("1", "1")


def test_local_time_ends_an_event_journey_on_each_endpoints_clock(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    items = [
        {"Id": name, "ChannelType": "EMAIL", "Address": f"{name}@example.org", "Demographic": {"Timezone": zone}}
        for name, zone in (("auckland", "Pacific/Auckland"), ("la", "America/Los_Angeles"))
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    ends = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    journey_id = create(
        pinpoint,
        project,
        THANKS,
        "thanks",
        StartCondition=event_start(),
        LocalTime=True,
        Schedule={"EndTime": ends.strftime("%Y-%m-%dT%H:%M:%SZ"), "Timezone": "UTC"},
    )
    # At the end's wall-clock time as UTC reads it: past it in Auckland (UTC+13), eight hours before it in LA.
    engine_server.clock.offset = ends + timedelta(minutes=1) - datetime.now(UTC)
    put_event(pinpoint, project, ["auckland", "la"], "p")
    tick(engine_server)
    assert sink.recipients() == ["la@example.org"]
    assert state(pinpoint, project, journey_id) == "ACTIVE"  # it is still before the end somewhere
    engine_server.clock.offset = ends + timedelta(hours=12, minutes=1) - datetime.now(UTC)  # past it in UTC-12
    tick(engine_server)
    tick(engine_server)
    assert state(pinpoint, project, journey_id) == "COMPLETED"


def test_a_segment_updated_during_a_pause_lets_its_new_members_in_on_resuming(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    add_endpoints(pinpoint, project, 1)
    segment = {"Name": "all"}
    segment_id = pinpoint.create_segment(ApplicationId=project, WriteSegmentRequest=segment)["SegmentResponse"]["Id"]
    journey_id = create(
        pinpoint,
        project,
        {"mail": {"EMAIL": {"TemplateName": "second-mail"}}},
        "mail",
        StartCondition=segment_start(segment_id),
        RefreshFrequency="P7D",
        RefreshOnSegmentUpdate=True,
    )
    tick(engine_server)

    def move(state_name: str) -> None:
        request = {"State": state_name}
        pinpoint.update_journey_state(ApplicationId=project, JourneyId=journey_id, JourneyStateRequest=request)

    move("PAUSED")
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="late", EndpointRequest={"ChannelType": "EMAIL", "Address": "l@example.org"}
    )
    pinpoint.update_segment(ApplicationId=project, SegmentId=segment_id, WriteSegmentRequest=segment)
    tick(engine_server)
    assert sink.recipients() == ["ep-0@example.org"]  # paused: nobody enters
    engine_server.clock.offset += timedelta(minutes=6)
    move("ACTIVE")
    tick(engine_server)  # the update's reading is due at once, not at the next weekly refresh
    assert sorted(sink.recipients()) == ["ep-0@example.org", "l@example.org"]


def test_reentry_cap_and_interval_count_the_users_entries_through_any_of_its_endpoints(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    items = [
        {"Id": i, "ChannelType": "EMAIL", "Address": a, "User": {"UserId": "alice"}}
        for i, a in (("alice-mail", "alice@example.org"), ("alice-work", "alice@work.example.org"))
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    limits = {"EndpointReentryCap": 2, "EndpointReentryInterval": "PT12H"}
    journey_id = create(pinpoint, project, THANKS, "thanks", StartCondition=event_start(), Limits=limits)

    def purchase(endpoint_id: str, hours_later: int) -> None:
        engine_server.clock.offset += timedelta(hours=hours_later)
        put_event(pinpoint, project, [endpoint_id], f"p{hours_later}")
        tick(engine_server)

    purchase("alice-mail", 0)
    purchase("alice-work", 1)  # its first event, but alice entered an hour ago through her other endpoint
    assert sink.recipients() == ["alice@example.org"]
    assert journey_metrics(pinpoint, project, journey_id)["REENTRY_CAP_EXCEEDED"] == "1"
    purchase("alice-work", 12)  # 13 hours after alice's entry: her second
    purchase("alice-mail", 13)  # this endpoint entered once, but alice twice: the cap is hers
    assert sink.recipients() == ["alice@example.org", "alice@work.example.org"]
    metrics = journey_metrics(pinpoint, project, journey_id)
    assert (metrics["ENDPOINT_ENTERED"], metrics["REENTRY_CAP_EXCEEDED"], metrics["ENDPOINT_ACTIVE"]) == ("2", "2", "0")


def test_a_runs_metrics_count_the_endpoints_its_reading_filtered_out_and_why(
    engine_server: RunningServer, pinpoint: Any, project: str
) -> None:
    gold = {"plan": ["gold"]}
    items = [
        {"Id": "gold", "ChannelType": "EMAIL", "Address": "gold@example.org", "Attributes": gold},
        {"Id": "plain", "ChannelType": "EMAIL", "Address": "plain@example.org"},
        {"Id": "alice-1", "ChannelType": "EMAIL", "Address": "a1@example.org", "User": {"UserId": "alice"}},
        {"Id": "alice-2", "ChannelType": "EMAIL", "Address": "a2@example.org", "User": {"UserId": "alice"}},
        {"Id": "opted", "ChannelType": "EMAIL", "Address": "o@example.org", "OptOut": "ALL", "Attributes": gold},
        {"Id": "gone", "ChannelType": "EMAIL", "Address": "g@example.org", "EndpointStatus": "INACTIVE"},
        {"Id": "no-address", "ChannelType": "EMAIL"},
        {"Id": "no-channel", "Attributes": gold},
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    is_gold = {"SegmentDimensions": {"Attributes": {"plan": {"Values": ["gold"]}}}}
    activities = {  # gold members wait a week; the others leave at once
        "which": {"ConditionalSplit": {"Condition": {"Conditions": [is_gold]}, "TrueActivity": "week"}},
        "week": {"Wait": {"WaitTime": {"WaitFor": "P7D"}}},
    }
    segment = segment_start(everyone(pinpoint, project))
    journey_id = create(pinpoint, project, activities, "which", StartCondition=segment, RefreshFrequency="PT1H")
    tick(engine_server)
    filtered = {
        "ENDPOINT_OPT_OUT": "1",
        "ENDPOINT_INACTIVE": "1",
        "ENDPOINT_MISSING_ADDRESS": "1",
        "ENDPOINT_MISSING_CHANNEL": "1",
    }
    first = {"ENDPOINT_PRODUCED": "8", "ENDPOINT_ENTERED": "3", "DUPLICATE_USER": "1", **filtered}
    assert run_metrics(pinpoint, project, journey_id) == [{**first, "ENDPOINT_ACTIVE": "1", "ENDPOINT_LEFT": "2"}]

    # The hourly reading: one new member enters; gold is still inside; plain and alice have been through it.
    pinpoint.update_endpoint(
        ApplicationId=project, EndpointId="late", EndpointRequest={"ChannelType": "EMAIL", "Address": "l@example.org"}
    )
    engine_server.clock.offset += timedelta(minutes=61)
    tick(engine_server)
    second = {
        "ENDPOINT_PRODUCED": "9",
        "ENDPOINT_ENTERED": "1",
        "ACTIVE_ENDPOINT_REJECTED": "1",
        "REENTRY_CAP_EXCEEDED": "3",
        "ENDPOINT_ACTIVE": "0",
        "ENDPOINT_LEFT": "1",
        **filtered,
    }
    assert run_metrics(pinpoint, project, journey_id)[1] == second
    # The journey's own metrics count participants, not what each reading filtered.
    assert journey_metrics(pinpoint, project, journey_id) == {
        "ENDPOINT_ENTERED": "4",
        "ENDPOINT_ACTIVE": "1",
        "ENDPOINT_LEFT": "3",
        "ACTIVE_ENDPOINT_REJECTED": "1",
        "REENTRY_CAP_EXCEEDED": "3",
    }

    # An event start: the events' endpoints outside its segment, or opted out, do not enter either.
    segment_id = pinpoint.create_segment(
        ApplicationId=project, WriteSegmentRequest={"Name": "gold", "Dimensions": is_gold["SegmentDimensions"]}
    )["SegmentResponse"]["Id"]
    start = event_start()
    start["EventStartCondition"]["SegmentId"] = segment_id
    on_event = create(pinpoint, project, THANKS, "thanks", StartCondition=start)
    put_event(pinpoint, project, ["gold", "plain", "opted"], "p")
    tick(engine_server)
    assert run_metrics(pinpoint, project, on_event) == [
        {
            "ENDPOINT_PRODUCED": "3",
            "FILTERED_OUT_BY_SEGMENT": "1",
            "ENDPOINT_OPT_OUT": "1",
            "ENDPOINT_ENTERED": "1",
            "ENDPOINT_ACTIVE": "0",
            "ENDPOINT_LEFT": "1",
        }
    ]


def test_postal_code_estimation_reads_the_country_and_the_operators_postal_file(
    engine_server: RunningServer, pinpoint: Any, project: str, sink: Relay
) -> None:
    places = {
        "tokyo": {"Country": "JP"},  # one clock in Japan: the country is enough
        "la": {"Country": "US", "PostalCode": "90210"},  # several in the US: the operator's file says 9xxxx
        "atlanta": {"Country": "US", "PostalCode": "30301"},  # not in the file: no zone, so UTC
    }
    items = [
        {"Id": name, "ChannelType": "EMAIL", "Address": f"{name}@example.org", "Location": location}
        for name, location in places.items()
    ]
    pinpoint.update_endpoints_batch(ApplicationId=project, EndpointBatchRequest={"Item": items})
    offset_to(engine_server, "UTC", 2, 12)  # 21:00 in Tokyo, 04:00 or 05:00 in Los Angeles
    journey_id = for_everyone(
        pinpoint,
        project,
        THANKS,
        "thanks",
        QuietTime={"Start": "20:00", "End": "06:00"},
        WaitForQuietTime=True,
        TimezoneEstimationMethods=["POSTAL_CODE"],
    )
    tick(engine_server)
    assert sink.recipients() == ["atlanta@example.org"]
    assert activity_metrics(pinpoint, project, journey_id, "thanks") == {"QUIET_TIME_WAIT": "2", "SUCCESSFUL": "1"}
    engine_server.clock.offset += timedelta(hours=9, minutes=1)  # 06:01 in Tokyo, 13:01 or 14:01 in Los Angeles
    tick(engine_server)
    assert sorted(sink.recipients()) == ["atlanta@example.org", "la@example.org", "tokyo@example.org"]
