"""Journeys through boto3 against a running Clarion: the resource API of Pinpoint's API Reference, "Journeys".

CreateJourney, GetJourney, ListJourneys, UpdateJourney, UpdateJourneyState, DeleteJourney, tags on the journey ARN,
runs and execution metrics of a journey that has not run, and every value rule with the member it names. Running
journeys is the engine's (tests/test_journey_engine.py). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import RunningServer

from clarion.config import Settings
from clarion.journeys.config import JourneySettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def journey_server(migrated_settings: Settings) -> Iterator[RunningServer]:
    # The tests move the server's clock by minutes; signatures are made with the real one. The engine stays off:
    # these tests look at the resource, whose state it would move (a journey without refresh becomes CLOSED).
    tuned = migrated_settings.model_copy(
        update={"max_clock_skew_seconds": 86_400, "journeys": JourneySettings(engine=False)}
    )
    with RunningServer(tuned) as running:
        yield running


@pytest.fixture
def pinpoint(journey_server: RunningServer) -> Any:
    return journey_server.client()


@pytest.fixture
def project(pinpoint: Any) -> str:
    return pinpoint.create_app(CreateApplicationRequest={"Name": "journeys"})["ApplicationResponse"]["Id"]


@pytest.fixture
def segment_id(pinpoint: Any, project: str) -> str:
    response = pinpoint.create_segment(ApplicationId=project, WriteSegmentRequest={"Name": "everyone"})
    return response["SegmentResponse"]["Id"]


@pytest.fixture
def templates(pinpoint: Any) -> None:
    pinpoint.create_email_template(TemplateName="nudge-mail", EmailTemplateRequest={"Subject": "Hi", "TextPart": "Hi"})
    pinpoint.create_sms_template(TemplateName="nudge-sms", SMSTemplateRequest={"Body": "Hi"})
    pinpoint.create_push_template(
        TemplateName="nudge-push", PushNotificationTemplateRequest={"Default": {"Title": "Hi", "Body": "Hi"}}
    )


def activities() -> dict[str, Any]:
    """Every activity type but ContactCenter, wired into one path with two splits."""
    opened = {"EventType": {"DimensionType": "INCLUSIVE", "Values": ["_push.opened"]}}
    return {
        "push": {
            "PUSH": {"TemplateName": "nudge-push", "MessageConfig": {"TimeToLive": "3600"}, "NextActivity": "wait"}
        },
        "wait": {"Wait": {"WaitTime": {"WaitFor": "P1D"}, "NextActivity": "opened"}, "Description": "a day"},
        "opened": {
            "ConditionalSplit": {
                "Condition": {"Conditions": [{"EventCondition": {"Dimensions": opened, "MessageActivity": "push"}}]},
                "EvaluationWaitTime": {"WaitFor": "PT1H"},
                "TrueActivity": "hold",
                "FalseActivity": "mail",
            }
        },
        "hold": {"Holdout": {"Percentage": 10, "NextActivity": "split"}},
        "split": {
            "RandomSplit": {
                "Branches": [{"Percentage": 50, "NextActivity": "sms"}, {"Percentage": 50, "NextActivity": "custom"}]
            }
        },
        "mail": {
            "EMAIL": {
                "TemplateName": "nudge-mail",
                "TemplateVersion": "1",
                "MessageConfig": {"FromAddress": "news@example.com"},
                "NextActivity": "which",
            }
        },
        "which": {
            "MultiCondition": {
                "Branches": [
                    {
                        "Condition": {"SegmentDimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}},
                        "NextActivity": "sms",
                    }
                ],
                "DefaultActivity": "custom",
                "EvaluationWaitTime": {"WaitUntil": "2030-01-01T00:00:00Z"},
            }
        },
        "sms": {"SMS": {"TemplateName": "nudge-sms", "MessageConfig": {"MessageType": "PROMOTIONAL"}}},
        "custom": {
            "CUSTOM": {
                "DeliveryUri": "https://hooks.example.com/journey",
                "EndpointTypes": ["EMAIL", "SMS"],
                "MessageConfig": {"Data": "{}"},
            }
        },
    }


def full_request(segment_id: str, **members: Any) -> dict[str, Any]:
    """Every WriteJourneyRequest member Clarion stores."""
    body = {
        "Name": "re-engage_1",
        "Activities": activities(),
        "StartActivity": "push",
        "StartCondition": {"Description": "real users", "SegmentStartCondition": {"SegmentId": segment_id}},
        "Schedule": {"StartTime": "2030-01-01T09:00:00Z", "EndTime": "2030-06-01T09:00:00Z", "Timezone": "UTC+01"},
        "LocalTime": True,
        "Limits": {
            "DailyCap": 3,
            "TotalCap": 10,
            "EndpointReentryCap": 2,
            "EndpointReentryInterval": "PT12H",
            "MessagesPerSecond": 50,
            "TimeframeCap": {"Cap": 5, "Days": 7},
        },
        "QuietTime": {"Start": "22:00", "End": "07:00"},
        "WaitForQuietTime": True,
        "RefreshFrequency": "PT1H",
        "RefreshOnSegmentUpdate": True,
        "JourneyChannelSettings": {"ConnectCampaignArn": "arn:aws:connect:x", "ConnectCampaignExecutionRoleArn": "r"},
        "SendingSchedule": True,
        "OpenHours": {"EMAIL": {"MONDAY": [{"StartTime": "09:00", "EndTime": "17:00"}]}},
        "ClosedDays": {
            "SMS": [
                {"Name": "new year", "StartDateTime": "2030-01-01T00:00:00Z", "EndDateTime": "2030-01-02T00:00:00Z"}
            ]
        },
        "TimezoneEstimationMethods": ["PHONE_NUMBER", "POSTAL_CODE"],
        "State": "DRAFT",
    }
    body.update(members)
    return body


def create(pinpoint: Any, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = pinpoint.create_journey(ApplicationId=app_id, WriteJourneyRequest=body)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return response["JourneyResponse"]


def bad_request(call: Any, **kwargs: Any) -> str:
    with pytest.raises(Exception) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "BadRequestException", info.value  # type: ignore[attr-defined]
    return info.value.response["Error"]["Message"]  # type: ignore[attr-defined]


def test_every_member_is_stored_and_echoed(pinpoint: Any, project: str, segment_id: str, templates: None) -> None:
    body = full_request(segment_id, CreationDate="1999-01-01T00:00:00Z")
    journey = create(pinpoint, project, body)
    assert re.fullmatch(r"[0-9a-f]{32}", journey["Id"]) and journey["ApplicationId"] == project
    assert ISO_MILLIS.fullmatch(journey["CreationDate"]) and journey["LastModifiedDate"] == journey["CreationDate"]
    assert journey["State"] == "DRAFT" and journey["tags"] == {}
    for member, value in body.items():
        if member == "Schedule":
            assert {k: v.isoformat() if k != "Timezone" else v for k, v in journey[member].items()} == {
                "StartTime": "2030-01-01T09:00:00+00:00",
                "EndTime": "2030-06-01T09:00:00+00:00",
                "Timezone": "UTC+01",
            }
        elif member not in ("CreationDate", "LastModifiedDate"):  # the server's own
            assert journey[member] == value, member
    got = pinpoint.get_journey(ApplicationId=project, JourneyId=journey["Id"])["JourneyResponse"]
    assert got == journey
    listed = pinpoint.list_journeys(ApplicationId=project)["JourneysResponse"]["Item"]
    assert listed == [journey]


def test_paging_and_tags_on_the_journey_arn(pinpoint: Any, project: str, segment_id: str) -> None:
    ids = [create(pinpoint, project, {"Name": f"j{n}"})["Id"] for n in range(3)]
    first = pinpoint.list_journeys(ApplicationId=project, PageSize="2")["JourneysResponse"]
    rest = pinpoint.list_journeys(ApplicationId=project, PageSize="2", Token=first["NextToken"])["JourneysResponse"]
    assert [j["Id"] for j in first["Item"] + rest["Item"]] == ids and "NextToken" not in rest
    app_arn = pinpoint.get_app(ApplicationId=project)["ApplicationResponse"]["Arn"]
    arn = f"{app_arn}/journeys/{ids[0]}"
    pinpoint.tag_resource(ResourceArn=arn, TagsModel={"tags": {"a": "1", "b": "2"}})
    pinpoint.untag_resource(ResourceArn=arn, TagKeys=["b"])
    assert pinpoint.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"a": "1"}
    assert pinpoint.get_journey(ApplicationId=project, JourneyId=ids[0])["JourneyResponse"]["tags"] == {"a": "1"}
    with pytest.raises(pinpoint.exceptions.NotFoundException):
        pinpoint.list_tags_for_resource(ResourceArn=f"{app_arn}/journeys/nope")


def test_publish_update_and_the_activities_of_an_active_journey(
    pinpoint: Any, project: str, segment_id: str, templates: None
) -> None:
    journey = create(pinpoint, project, full_request(segment_id))
    journey_id = journey["Id"]
    changed = {**activities(), "hold": {"Holdout": {"Percentage": 20, "NextActivity": "split"}}}
    draft = pinpoint.update_journey(
        ApplicationId=project, JourneyId=journey_id, WriteJourneyRequest=full_request(segment_id, Activities=changed)
    )["JourneyResponse"]
    assert draft["Activities"]["hold"]["Holdout"]["Percentage"] == 20  # a DRAFT's activities may change
    published = pinpoint.update_journey(
        ApplicationId=project,
        JourneyId=journey_id,
        WriteJourneyRequest=full_request(segment_id, Activities=changed, State="ACTIVE"),
    )["JourneyResponse"]
    assert published["State"] == "ACTIVE"
    message = bad_request(
        pinpoint.update_journey,
        ApplicationId=project,
        JourneyId=journey_id,
        WriteJourneyRequest=full_request(segment_id, State="ACTIVE"),
    )
    assert message.startswith("Activities:")
    # Activities left out keep the stored ones; the other members are replaced (QuietTime etc. dropped here).
    start = published["StartCondition"]
    renamed = pinpoint.update_journey(
        ApplicationId=project, JourneyId=journey_id, WriteJourneyRequest={"Name": "renamed", "StartCondition": start}
    )["JourneyResponse"]
    assert renamed["Name"] == "renamed" and renamed["Activities"] == changed and "QuietTime" not in renamed
    assert renamed["State"] == "ACTIVE" and renamed["LastModifiedDate"] >= renamed["CreationDate"]
    message = bad_request(
        pinpoint.update_journey,
        ApplicationId=project,
        JourneyId=journey_id,
        WriteJourneyRequest={"Name": "renamed", "StartCondition": start, "State": "DRAFT"},
    )
    assert message.startswith("State:")


def test_state_changes(journey_server: RunningServer, pinpoint: Any, project: str, segment_id: str) -> None:
    simple = {"w": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}}}
    start = {"SegmentStartCondition": {"SegmentId": segment_id}}
    body = {"Name": "once", "Activities": simple, "StartActivity": "w", "StartCondition": start, "State": "ACTIVE"}
    once = create(pinpoint, project, body)

    def move(journey_id: str, state: str) -> dict[str, Any]:
        return pinpoint.update_journey_state(
            ApplicationId=project, JourneyId=journey_id, JourneyStateRequest={"State": state}
        )["JourneyResponse"]

    def refused(journey_id: str, state: str) -> str:
        return bad_request(
            pinpoint.update_journey_state,
            ApplicationId=project,
            JourneyId=journey_id,
            JourneyStateRequest={"State": state},
        )

    assert "RefreshFrequency" in refused(once["Id"], "PAUSED")
    assert refused(once["Id"], "DRAFT").startswith("State:")
    refreshing = create(pinpoint, project, {**body, "Name": "hourly", "RefreshFrequency": "PT1H"})
    assert move(refreshing["Id"], "PAUSED")["State"] == "PAUSED"
    assert "5 minutes" in refused(refreshing["Id"], "ACTIVE")
    assert "UpdateJourneyState" in bad_request(
        pinpoint.update_journey,
        ApplicationId=project,
        JourneyId=refreshing["Id"],
        WriteJourneyRequest={**body, "Name": "hourly", "RefreshFrequency": "PT1H"},
    )
    journey_server.clock.offset += timedelta(minutes=6)
    assert move(refreshing["Id"], "ACTIVE")["State"] == "ACTIVE"
    assert move(refreshing["Id"], "CANCELLED")["State"] == "CANCELLED"
    assert "CANCELLED" in refused(refreshing["Id"], "CANCELLED")
    assert "cannot be changed" in bad_request(
        pinpoint.update_journey,
        ApplicationId=project,
        JourneyId=refreshing["Id"],
        WriteJourneyRequest={"Name": "again"},
    )
    draft = create(pinpoint, project, {"Name": "draft"})
    assert "only a PAUSED journey" in refused(draft["Id"], "ACTIVE")


def test_runs_and_metrics_before_any_run(pinpoint: Any, project: str, segment_id: str, templates: None) -> None:
    journey_id = create(pinpoint, project, full_request(segment_id))["Id"]
    runs = pinpoint.get_journey_runs(ApplicationId=project, JourneyId=journey_id)["JourneyRunsResponse"]
    assert runs["Item"] == []
    metrics = pinpoint.get_journey_execution_metrics(ApplicationId=project, JourneyId=journey_id)
    metrics = metrics["JourneyExecutionMetricsResponse"]
    assert (metrics["ApplicationId"], metrics["JourneyId"], metrics["Metrics"]) == (project, journey_id, {})
    activity = pinpoint.get_journey_execution_activity_metrics(
        ApplicationId=project, JourneyId=journey_id, JourneyActivityId="split"
    )["JourneyExecutionActivityMetricsResponse"]
    assert (activity["ActivityType"], activity["JourneyActivityId"], activity["Metrics"]) == (
        "RANDOM_SPLIT",
        "split",
        {},
    )
    with pytest.raises(pinpoint.exceptions.NotFoundException):
        pinpoint.get_journey_execution_activity_metrics(
            ApplicationId=project, JourneyId=journey_id, JourneyActivityId="nope"
        )
    with pytest.raises(pinpoint.exceptions.NotFoundException):
        pinpoint.get_journey_run_execution_metrics(ApplicationId=project, JourneyId=journey_id, RunId="nope")
    with pytest.raises(pinpoint.exceptions.NotFoundException):
        pinpoint.get_journey_run_execution_activity_metrics(
            ApplicationId=project, JourneyId=journey_id, RunId="nope", JourneyActivityId="split"
        )


def test_delete_stops_everything(journey_server: RunningServer, pinpoint: Any, project: str, segment_id: str) -> None:
    journey = create(pinpoint, project, {"Name": "gone"})
    deleted = pinpoint.delete_journey(ApplicationId=project, JourneyId=journey["Id"])["JourneyResponse"]
    assert deleted == journey
    with pytest.raises(pinpoint.exceptions.NotFoundException):
        pinpoint.get_journey(ApplicationId=project, JourneyId=journey["Id"])
    create(pinpoint, project, {"Name": "kept"})
    pinpoint.delete_app(ApplicationId=project)
    assert not any(journey_server.project_row_counts(project).values())


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("a name with spaces", {"Name": "re engage"}, "Name"),
    ("a name too long", {"Name": "n" * 151}, "Name"),
    ("an activity id with a dash", {"Activities": {"a-b": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}}}}, "Activities"),
    (
        "41 activities",
        {"Activities": {f"a{n}": {"Holdout": {"Percentage": 1}} for n in range(41)}},
        "Activities holds at most 40",
    ),
    ("two types in one activity", {"Activities": {"a": {"Holdout": {"Percentage": 1}, "Wait": {}}}}, "Activities.a"),
    ("no type", {"Activities": {"a": {"Description": "empty"}}}, "Activities.a"),
    (
        "an unknown next activity",
        {"Activities": {"a": {"Holdout": {"Percentage": 5, "NextActivity": "z"}}}},
        "Activities.a",
    ),
    (
        "a loop",
        {
            "Activities": {
                "a": {"Holdout": {"Percentage": 5, "NextActivity": "b"}},
                "b": {"Holdout": {"Percentage": 5, "NextActivity": "a"}},
            }
        },
        "loop",
    ),
    (
        "an unknown start activity",
        {"Activities": {"a": {"Holdout": {"Percentage": 5}}}, "StartActivity": "b"},
        "StartActivity",
    ),
    ("a holdout over 100", {"Activities": {"a": {"Holdout": {"Percentage": 101}}}}, "Activities.a.Holdout.Percentage"),
    (
        "a wait with both",
        {"Activities": {"a": {"Wait": {"WaitTime": {"WaitFor": "P1D", "WaitUntil": "2030-01-01T00:00:00Z"}}}}},
        "Activities.a.Wait.WaitTime",
    ),
    (
        "a bad duration",
        {"Activities": {"a": {"Wait": {"WaitTime": {"WaitFor": "one day"}}}}},
        "Activities.a.Wait.WaitTime.WaitFor",
    ),
    (
        "one random branch",
        {"Activities": {"a": {"RandomSplit": {"Branches": [{"Percentage": 100}]}}}},
        "Activities.a.RandomSplit.Branches",
    ),
    (
        "six random branches",
        {"Activities": {"a": {"RandomSplit": {"Branches": [{"Percentage": 10}] * 5 + [{"Percentage": 50}]}}}},
        "Activities.a.RandomSplit.Branches",
    ),
    (
        "random percentages not adding up",
        {"Activities": {"a": {"RandomSplit": {"Branches": [{"Percentage": 50}, {"Percentage": 40}]}}}},
        "add up to 90",
    ),
    (
        "five conditional branches",
        {
            "Activities": {
                "a": {
                    "MultiCondition": {
                        "Branches": [{"Condition": {"SegmentDimensions": {"Attributes": {}}}}] * 5,
                    }
                }
            }
        },
        "Activities.a.MultiCondition.Branches",
    ),
    (
        "a condition on a message that comes later",
        {
            "Activities": {
                "split": {
                    "ConditionalSplit": {
                        "Condition": {
                            "Conditions": [
                                {
                                    "EventCondition": {
                                        "MessageActivity": "mail",
                                        "Dimensions": {"EventType": {"Values": ["_email.open"]}},
                                    }
                                }
                            ]
                        },
                        "TrueActivity": "mail",
                    }
                },
                "mail": {"EMAIL": {"TemplateName": "nudge-mail"}},
            }
        },
        "EventCondition.MessageActivity",
    ),
    (
        "a condition with two kinds",
        {
            "Activities": {
                "s": {
                    "ConditionalSplit": {
                        "Condition": {
                            "Conditions": [
                                {"SegmentCondition": {"SegmentId": "x"}, "SegmentDimensions": {"Attributes": {}}}
                            ]
                        }
                    }
                }
            }
        },
        "Activities.s.ConditionalSplit.Condition.Conditions[0]",
    ),
    ("a ContactCenter without a stand-in", {"Activities": {"c": {"ContactCenter": {}}}}, "Activities.c: ContactCenter"),
    ("State COMPLETED", {"State": "COMPLETED"}, "State"),
    ("ACTIVE without a start", {"State": "ACTIVE"}, "StartCondition"),
    (
        "both start conditions",
        {"StartCondition": {"SegmentStartCondition": {"SegmentId": "x"}, "EventStartCondition": {}}},
        "StartCondition",
    ),
    (
        "an event start with two events",
        {
            "StartCondition": {
                "EventStartCondition": {
                    "EventFilter": {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["a", "b"]}}}
                }
            }
        },
        "StartCondition.EventStartCondition.EventFilter",
    ),
    (
        "an end before the start",
        {"Schedule": {"StartTime": "2030-01-02T00:00:00Z", "EndTime": "2030-01-01T00:00:00Z"}},
        "Schedule.EndTime",
    ),
    (
        "a run over 540 days",
        {"Schedule": {"StartTime": "2030-01-01T00:00:00Z", "EndTime": "2031-07-01T00:00:00Z"}},
        "Schedule",
    ),
    ("an unknown time zone", {"Schedule": {"Timezone": "UTC+14"}}, "Schedule.Timezone"),
    ("a daily cap over 100", {"Limits": {"DailyCap": 101}}, "Limits.DailyCap"),
    ("a re-entry cap over 100", {"Limits": {"EndpointReentryCap": 101}}, "Limits.EndpointReentryCap"),
    ("a timeframe of 31 days", {"Limits": {"TimeframeCap": {"Cap": 1, "Days": 31}}}, "Limits.TimeframeCap.Days"),
    ("a bad re-entry interval", {"Limits": {"EndpointReentryInterval": "hourly"}}, "Limits.EndpointReentryInterval"),
    ("a bad refresh frequency", {"RefreshFrequency": "1h"}, "RefreshFrequency"),
    ("a half quiet time", {"QuietTime": {"Start": "22:00"}}, "QuietTime"),
    (
        "open hours without a sending schedule",
        {"QuietTime": {"Start": "22:00", "End": "07:00"}, "OpenHours": {"EMAIL": {"MONDAY": []}}},
        "OpenHours needs SendingSchedule",
    ),
    (
        "closed days without a quiet time",
        {"SendingSchedule": True, "ClosedDays": {"SMS": []}},
        "ClosedDays needs SendingSchedule",
    ),
    (
        "open hours ending before they start",
        {
            "SendingSchedule": True,
            "QuietTime": {"Start": "22:00", "End": "07:00"},
            "OpenHours": {"EMAIL": {"MONDAY": [{"StartTime": "17:00", "EndTime": "09:00"}]}},
        },
        "OpenHours.EMAIL.MONDAY[0]",
    ),
    (
        "a missing template",
        {"Activities": {"m": {"SMS": {"TemplateName": "no-such"}}}},
        "Activities.m.SMS.TemplateName",
    ),
    (
        "a missing segment",
        {"StartCondition": {"SegmentStartCondition": {"SegmentId": "nope"}}},
        "StartCondition.SegmentStartCondition.SegmentId",
    ),
]


@pytest.mark.parametrize(("body", "named"), [(b, n) for _, b, n in BAD], ids=[i for i, _, _ in BAD])
def test_value_rules_name_the_member(
    pinpoint: Any, project: str, templates: None, body: dict[str, Any], named: str
) -> None:
    message = bad_request(pinpoint.create_journey, ApplicationId=project, WriteJourneyRequest={"Name": "j", **body})
    assert named in message


def test_contact_center_with_a_stand_in(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"journeys": JourneySettings(engine=False, contact_center_url="http://127.0.0.1:9/dial")}
    )
    with RunningServer(tuned) as running:
        pinpoint = running.client()
        app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "cc"})["ApplicationResponse"]["Id"]
        body = {"Name": "call", "Activities": {"c": {"ContactCenter": {}}}, "StartActivity": "c"}
        assert create(pinpoint, app_id, body)["Activities"] == {"c": {"ContactCenter": {}}}
        four = {f"c{n}": {"ContactCenter": {}} for n in range(4)}
        message = bad_request(
            pinpoint.create_journey, ApplicationId=app_id, WriteJourneyRequest={"Name": "calls", "Activities": four}
        )
        assert "at most 3 ContactCenter" in message


def test_at_most_twenty_event_journeys_are_active(pinpoint: Any, project: str) -> None:
    event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["purchase"]}}}
    body = {
        "Activities": {"w": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}}},
        "StartActivity": "w",
        "StartCondition": {"EventStartCondition": {"EventFilter": event_filter}},
    }
    ids = [create(pinpoint, project, {**body, "Name": f"e{n}", "State": "ACTIVE"})["Id"] for n in range(20)]
    message = bad_request(
        pinpoint.create_journey, ApplicationId=project, WriteJourneyRequest={**body, "Name": "e20", "State": "ACTIVE"}
    )
    assert "at most 20" in message
    draft = create(pinpoint, project, {**body, "Name": "later"})  # a DRAFT does not count
    pinpoint.update_journey_state(ApplicationId=project, JourneyId=ids[0], JourneyStateRequest={"State": "CANCELLED"})
    published = pinpoint.update_journey(
        ApplicationId=project, JourneyId=draft["Id"], WriteJourneyRequest={**body, "Name": "later", "State": "ACTIVE"}
    )["JourneyResponse"]
    assert published["State"] == "ACTIVE"  # the cancelled one freed its place


def test_the_consoles_canvas_is_kept_with_the_journey(journey_server: RunningServer, project: str) -> None:
    """ClarionCanvas (where the console drew each activity) is stored and answered, and replaced like every member;
    a position that is not two numbers is refused naming the member. SDK clients never see it sent."""
    path = f"/v1/apps/{project}/journeys"
    canvas = {"Positions": {"w": {"X": 12.5, "Y": -40}}}
    body = {"Name": "drawn", "Activities": {"w": {"Wait": {"WaitTime": {"WaitFor": "PT1H"}}}}, "ClarionCanvas": canvas}
    status, created = journey_server.signed_request("POST", path, body)
    assert status == 201 and created["ClarionCanvas"] == canvas, created
    status, got = journey_server.signed_request("GET", f"{path}/{created['Id']}", {})
    assert status == 200 and got["ClarionCanvas"] == canvas
    moved = {"Positions": {"w": {"X": 300, "Y": 0}}}
    status, updated = journey_server.signed_request("PUT", f"{path}/{created['Id']}", {**body, "ClarionCanvas": moved})
    assert status == 200 and updated["ClarionCanvas"] == moved
    status, error = journey_server.signed_request(
        "POST", path, {**body, "ClarionCanvas": {"Positions": {"w": {"X": "left", "Y": 0}}}}
    )
    assert status == 400 and "ClarionCanvas" in error["Message"], error
