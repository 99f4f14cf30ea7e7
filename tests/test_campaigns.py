"""Campaigns through boto3 against a running Clarion: the resource API of Pinpoint's API Reference, "Campaign".

CreateCampaign, GetCampaign(s), UpdateCampaign (a version each time), GetCampaignVersion(s), DeleteCampaign and
GetCampaignActivities, the value rules with the members they name, states moved by pausing and by deleting the
segment, treatments, tags and DeleteApp; every test runs on SQLite and on PostgreSQL. Running campaigns is the
campaign engine's and is not tested here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from clarion.store.apps import PROJECT_TABLES

ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PUSH = {"DefaultMessage": {"Action": "OPEN_APP", "Title": "Hello", "Body": "Hi {{Attributes.name}}"}}
LATER = {"StartTime": "2030-01-01T09:00:00Z", "Frequency": "ONCE"}


@pytest.fixture
def segment_id(client: Any, app_id: str) -> str:
    response = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "everyone"})
    return response["SegmentResponse"]["Id"]


def request(segment_id: str, **members: Any) -> dict[str, Any]:
    return {"Name": "welcome", "SegmentId": segment_id, "Schedule": LATER, "MessageConfiguration": PUSH, **members}


def create(client: Any, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.create_campaign(ApplicationId=app_id, WriteCampaignRequest=body)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return response["CampaignResponse"]


def get(client: Any, app_id: str, campaign_id: str) -> dict[str, Any]:
    return client.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)["CampaignResponse"]


def update(client: Any, app_id: str, campaign_id: str, **members: Any) -> dict[str, Any]:
    response = client.update_campaign(ApplicationId=app_id, CampaignId=campaign_id, WriteCampaignRequest=members)
    return response["CampaignResponse"]


def bad_request(client: Any, app_id: str, body: dict[str, Any]) -> str:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        client.create_campaign(ApplicationId=app_id, WriteCampaignRequest=body)
    return info.value.response["Error"]["Message"]


def test_create_then_get(client: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id, Description="first", Limits={"Daily": 2}, tags={"t": "1"}))
    assert re.fullmatch(r"[0-9a-f]{32}", campaign["Id"])
    assert campaign["Arn"].endswith(f":apps/{app_id}/campaigns/{campaign['Id']}")
    assert ISO_MILLIS.fullmatch(campaign["CreationDate"]) and campaign["LastModifiedDate"] == campaign["CreationDate"]
    assert (campaign["Name"], campaign["Description"], campaign["Version"]) == ("welcome", "first", 1)
    assert campaign["SegmentId"] == segment_id and campaign["SegmentVersion"] == 1  # the latest, pinned
    assert campaign["State"] == {"CampaignStatus": "SCHEDULED"} and "DefaultState" not in campaign
    assert campaign["MessageConfiguration"] == PUSH and campaign["Limits"] == {"Daily": 2}
    assert campaign["Schedule"] == LATER and campaign["tags"] == {"t": "1"}
    assert get(client, app_id, campaign["Id"]) == campaign
    listed = client.get_campaigns(ApplicationId=app_id)["CampaignsResponse"]["Item"]
    assert listed == [campaign]


def test_paging(client: Any, app_id: str, segment_id: str) -> None:
    ids = [create(client, app_id, request(segment_id, Name=f"c{n}"))["Id"] for n in range(3)]
    first = client.get_campaigns(ApplicationId=app_id, PageSize="2")["CampaignsResponse"]
    rest = client.get_campaigns(ApplicationId=app_id, PageSize="2", Token=first["NextToken"])["CampaignsResponse"]
    assert [c["Id"] for c in first["Item"] + rest["Item"]] == ids and "NextToken" not in rest


def test_update_makes_versions_and_keeps_members_left_out(client: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id, Description="v1"))
    updated = update(client, app_id, campaign["Id"], Name="renamed", HoldoutPercent=10)
    assert (updated["Version"], updated["Name"], updated["HoldoutPercent"]) == (2, "renamed", 10)
    assert updated["Description"] == "v1" and updated["MessageConfiguration"] == PUSH
    first = client.get_campaign_version(ApplicationId=app_id, CampaignId=campaign["Id"], Version="1")
    assert first["CampaignResponse"]["Name"] == "welcome" and "HoldoutPercent" not in first["CampaignResponse"]
    versions = client.get_campaign_versions(ApplicationId=app_id, CampaignId=campaign["Id"])["CampaignsResponse"]
    assert [v["Version"] for v in versions["Item"]] == [1, 2]
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_campaign_version(ApplicationId=app_id, CampaignId=campaign["Id"], Version="3")


def test_pause_and_resume(client: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id, IsPaused=True))
    assert campaign["State"]["CampaignStatus"] == "PAUSED"
    assert update(client, app_id, campaign["Id"], IsPaused=False)["State"]["CampaignStatus"] == "SCHEDULED"
    assert update(client, app_id, campaign["Id"], IsPaused=True)["State"]["CampaignStatus"] == "PAUSED"


def test_treatments_get_ids_and_states(client: Any, app_id: str, segment_id: str) -> None:
    sms = {"SMSMessage": {"Body": "Hi", "MessageType": "PROMOTIONAL"}}
    treatments = [
        {"SizePercent": 30, "TreatmentName": "B", "MessageConfiguration": sms},
        {"SizePercent": 20, "TreatmentName": "C", "MessageConfiguration": PUSH},
    ]
    campaign = create(client, app_id, request(segment_id, AdditionalTreatments=treatments, HoldoutPercent=10))
    assert [(t["Id"], t["TreatmentName"], t["SizePercent"]) for t in campaign["AdditionalTreatments"]] == [
        ("1", "B", 30),
        ("2", "C", 20),
    ]
    assert all(t["State"] == {"CampaignStatus": "SCHEDULED"} for t in campaign["AdditionalTreatments"])
    assert campaign["DefaultState"] == {"CampaignStatus": "SCHEDULED"}


def test_deleting_the_segment_marks_the_campaign_deleted(client: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id))
    client.delete_segment(ApplicationId=app_id, SegmentId=segment_id)
    assert get(client, app_id, campaign["Id"])["State"]["CampaignStatus"] == "DELETED"


def test_templates_are_checked(client: Any, app_id: str, segment_id: str) -> None:
    client.create_email_template(TemplateName="news", EmailTemplateRequest={"Subject": "Hi", "TextPart": "x"})
    good = request(segment_id, TemplateConfiguration={"EmailTemplate": {"Name": "news", "Version": "1"}})
    del good["MessageConfiguration"]
    assert create(client, app_id, good)["TemplateConfiguration"] == {"EmailTemplate": {"Name": "news", "Version": "1"}}
    missing = request(segment_id, TemplateConfiguration={"EmailTemplate": {"Name": "nope"}})
    assert "EMAIL template 'nope' does not exist" in bad_request(client, app_id, missing)
    old = request(segment_id, TemplateConfiguration={"EmailTemplate": {"Name": "news", "Version": "7"}})
    assert "version 7 does not exist" in bad_request(client, app_id, old)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"Name": ""}, "Name must not be empty"),
        ({"SegmentId": ""}, "SegmentId is required"),
        ({"SegmentId": "missing"}, "segment 'missing' does not exist"),
        ({"SegmentVersion": 9}, "has no version 9"),
        ({"Schedule": {"StartTime": "IMMEDIATE", "Frequency": "DAILY"}}, "needs a start date and time"),
        ({"Schedule": {"StartTime": "tomorrow"}}, "Schedule.StartTime: 'tomorrow' is not an ISO 8601"),
        ({"Schedule": {**LATER, "EndTime": "2029-01-01T00:00:00Z"}}, "Schedule.EndTime must be after"),
        ({"Schedule": {**LATER, "Frequency": "EVENT"}}, "Schedule.EventFilter is required"),
        ({"Schedule": {**LATER, "Timezone": "UTC+14"}}, "Schedule.Timezone: 'UTC+14' is not one of"),
        ({"Schedule": {**LATER, "QuietTime": {"Start": "22:00"}}}, "QuietTime needs both Start and End"),
        ({"Schedule": {**LATER, "QuietTime": {"Start": "25:00", "End": "07:00"}}}, "QuietTime.Start: '25:00'"),
        ({"Limits": {"Daily": 101}}, "Limits.Daily must be between 0 and 100"),
        ({"Limits": {"MessagesPerSecond": 0}}, "Limits.MessagesPerSecond must be between 1 and 20000"),
        ({"Limits": {"MaximumDuration": 30}}, "Limits.MaximumDuration must be at least 60"),
        ({"HoldoutPercent": 101}, "HoldoutPercent must be between 0 and 100"),
        ({"AdditionalTreatments": [{"SizePercent": 10}] * 5}, "at most 4 treatments"),
        ({"AdditionalTreatments": [{"SizePercent": 60}], "HoldoutPercent": 40}, "must stay under 100"),
        ({"TemplateConfiguration": {"VoiceTemplate": {"Name": "v"}}}, "VoiceTemplate: campaigns do not send voice"),
        ({"Schedule": {"StartTime": "IMMEDIATE"}, "IsPaused": True}, "cannot be paused"),
        ({"Hook": {"Mode": "FILTER"}}, "Hook needs a WebUrl or a LambdaFunctionName"),
    ],
)
def test_invalid_requests_name_the_member(
    client: Any, app_id: str, segment_id: str, members: dict[str, Any], expected: str
) -> None:
    assert expected in bad_request(client, app_id, request(segment_id, **members))


def test_inline_template_errors_are_refused_when_the_campaign_is_written(
    client: Any, app_id: str, segment_id: str
) -> None:
    broken = {"EmailMessage": {"Title": "Hi {{Name}}", "HtmlBody": "<p>{{#if Name}}unclosed</p>"}}
    message = bad_request(client, app_id, request(segment_id, MessageConfiguration=broken))
    assert message.startswith("MessageConfiguration.EmailMessage.HtmlBody: ")
    unknown_helper = {"SMSMessage": {"Body": "{{shout Name}}"}}
    treatments = [{"SizePercent": 10, "MessageConfiguration": unknown_helper}]
    message = bad_request(client, app_id, request(segment_id, AdditionalTreatments=treatments))
    assert "AdditionalTreatments[0].MessageConfiguration.SMSMessage.Body" in message and "not a helper" in message
    campaign = create(client, app_id, request(segment_id))
    with pytest.raises(client.exceptions.BadRequestException, match=r"MessageConfiguration\.EmailMessage\.HtmlBody"):
        update(client, app_id, campaign["Id"], MessageConfiguration=broken)
    assert get(client, app_id, campaign["Id"])["Version"] == 1  # nothing was written


def test_a_campaign_needs_something_to_send(client: Any, app_id: str, segment_id: str) -> None:
    body = request(segment_id)
    del body["MessageConfiguration"]
    assert "needs MessageConfiguration, TemplateConfiguration or CustomDeliveryConfiguration" in bad_request(
        client, app_id, body
    )


def test_activities_are_empty_until_a_run(client: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id))
    response = client.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign["Id"])
    assert response["ActivitiesResponse"]["Item"] == []
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_campaign_activities(ApplicationId=app_id, CampaignId="0" * 32)


def test_delete_and_tags(client: Any, server: Any, app_id: str, segment_id: str) -> None:
    campaign = create(client, app_id, request(segment_id, tags={"a": "1"}))
    client.tag_resource(ResourceArn=campaign["Arn"], TagsModel={"tags": {"b": "2"}})
    assert client.list_tags_for_resource(ResourceArn=campaign["Arn"])["TagsModel"]["tags"] == {"a": "1", "b": "2"}
    updated = update(client, app_id, campaign["Id"], Name="last")
    deleted = client.delete_campaign(ApplicationId=app_id, CampaignId=campaign["Id"])["CampaignResponse"]
    assert deleted == {**updated, "tags": {"a": "1", "b": "2"}}
    with pytest.raises(client.exceptions.NotFoundException):
        get(client, app_id, campaign["Id"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_tags_for_resource(ResourceArn=campaign["Arn"])
    create(client, app_id, request(segment_id))
    client.delete_app(ApplicationId=app_id)
    assert server.project_row_counts(app_id) == dict.fromkeys(PROJECT_TABLES, 0)
