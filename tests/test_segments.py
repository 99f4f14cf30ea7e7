"""Segments through boto3 against a running Clarion: definitions, ids, ARNs, versions and
tags as Pinpoint's API Reference ("Segments") describes them.

CreateSegment, GetSegment, GetSegments, UpdateSegment, DeleteSegment, GetSegmentVersion and GetSegmentVersions, the
validation rules with the field paths they name, tags on segment ARNs and DeleteApp; every test runs on SQLite and
on PostgreSQL. Membership evaluation is not built yet and not tested here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from clarion.store.apps import PROJECT_TABLES

ACCOUNT = "000000000000"
REGION = "eu-west-1"
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

TIER = {"Attributes": {"tier": {"AttributeType": "INCLUSIVE", "Values": ["gold"]}}}
GROUPS = {
    "Include": "ALL",
    "Groups": [
        {"Type": "ANY", "SourceType": "ALL", "Dimensions": [{"Demographic": {"Platform": {"Values": ["ios"]}}}]}
    ],
}


# --- helpers -------------------------------------------------------------------------------------------------


def create(client: Any, app_id: str, name: str = "gold", **request: Any) -> dict[str, Any]:
    response = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": name, **request})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return response["SegmentResponse"]


def get(client: Any, app_id: str, segment_id: str) -> dict[str, Any]:
    return client.get_segment(ApplicationId=app_id, SegmentId=segment_id)["SegmentResponse"]


def update(client: Any, app_id: str, segment_id: str, **request: Any) -> dict[str, Any]:
    response = client.update_segment(ApplicationId=app_id, SegmentId=segment_id, WriteSegmentRequest=request)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    return response["SegmentResponse"]


def version(client: Any, app_id: str, segment_id: str, number: int | str) -> dict[str, Any]:
    return client.get_segment_version(ApplicationId=app_id, SegmentId=segment_id, Version=str(number))[
        "SegmentResponse"
    ]


def segment_arn(app_id: str, segment_id: str) -> str:
    return f"arn:aws:mobiletargeting:{REGION}:{ACCOUNT}:apps/{app_id}/segments/{segment_id}"


def tick(server: Any, seconds: float = 1) -> None:
    server.clock.offset += timedelta(seconds=seconds)


def bad_request(client: Any, app_id: str, request: dict[str, Any], segment_id: str | None = None) -> str:
    """The message of the BadRequestException a create (or, given an id, an update) answers."""
    with pytest.raises(client.exceptions.BadRequestException) as info:
        if segment_id is None:
            client.create_segment(ApplicationId=app_id, WriteSegmentRequest=request)
        else:
            client.update_segment(ApplicationId=app_id, SegmentId=segment_id, WriteSegmentRequest=request)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return info.value.response["Error"]["Message"]


# --- CreateSegment / GetSegment ------------------------------------------------------------------------------


def test_create_and_get(client: Any, app_id: str) -> None:
    created = create(client, app_id, "gold customers", Dimensions=TIER, SegmentGroups=GROUPS)
    assert re.fullmatch(r"[0-9a-f]{32}", created["Id"])
    assert created["Arn"] == segment_arn(app_id, created["Id"])
    assert created["ApplicationId"] == app_id
    assert created["Name"] == "gold customers"
    assert created["SegmentType"] == "DIMENSIONAL"
    assert created["Version"] == 1
    assert ISO_MILLIS.fullmatch(created["CreationDate"])
    assert created["LastModifiedDate"] == created["CreationDate"]
    assert created["Dimensions"] == TIER
    assert created["SegmentGroups"] == GROUPS
    assert created["tags"] == {}
    assert get(client, app_id, created["Id"]) == created


def test_create_minimal_has_every_required_member(client: Any, app_id: str) -> None:
    created = create(client, app_id, "everyone")
    for member in ("ApplicationId", "Arn", "CreationDate", "Id", "SegmentType", "Name", "Version", "LastModifiedDate"):
        assert member in created
    assert "Dimensions" not in created and "SegmentGroups" not in created


def test_every_dimension_kind_is_accepted_and_echoed(client: Any, app_id: str) -> None:
    dimensions = {
        "Attributes": {
            "tier": {"AttributeType": "EXCLUSIVE", "Values": ["free"]},
            "name": {"AttributeType": "CONTAINS", "Values": ["an"]},
            "signup": {"AttributeType": "BETWEEN", "Values": ["2024-01-01T00:00:00Z", "2024-12-31T23:59:59.999Z"]},
            "renewal": {"AttributeType": "BEFORE", "Values": ["2025-06-01T00:00:00+02:00"]},
            "birthday": {"AttributeType": "ON", "Values": ["2024-02-29"]},
            "seen": {"AttributeType": "AFTER", "Values": ["2024-01-01T00:00:00Z"]},
        },
        "UserAttributes": {"plan": {"Values": ["pro", "team"]}},
        "Metrics": {"score": {"ComparisonOperator": "GREATER_THAN_OR_EQUAL", "Value": 4.5}},
        "Behavior": {"Recency": {"Duration": "DAY_7", "RecencyType": "ACTIVE"}},
        "Demographic": {
            "AppVersion": {"Values": ["1.2"]},
            "Channel": {"DimensionType": "EXCLUSIVE", "Values": ["SMS"]},
            "DeviceType": {"Values": ["phone"]},
            "Make": {"Values": ["Apple"]},
            "Model": {"Values": ["iPhone"]},
            "Platform": {"Values": ["ios"]},
        },
        "Location": {
            "Country": {"Values": ["DE", "FRA"]},
            "GPSPoint": {"Coordinates": {"Latitude": 52.5, "Longitude": 13.4}, "RangeInKilometers": 25},
        },
    }
    created = create(client, app_id, Dimensions=dimensions)
    assert get(client, app_id, created["Id"])["Dimensions"] == dimensions


def test_unknown_app_and_segment(client: Any, app_id: str) -> None:
    missing = "0" * 32
    with pytest.raises(client.exceptions.NotFoundException):
        client.create_segment(ApplicationId=missing, WriteSegmentRequest={"Name": "x"})
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_segments(ApplicationId=missing)
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_segment(ApplicationId=missing, SegmentId=missing)
    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.get_segment(ApplicationId=app_id, SegmentId=missing)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(client.exceptions.NotFoundException):
        client.update_segment(ApplicationId=app_id, SegmentId=missing, WriteSegmentRequest={"Name": "x"})
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_segment(ApplicationId=app_id, SegmentId=missing)
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_segment_versions(ApplicationId=app_id, SegmentId=missing)
    with pytest.raises(client.exceptions.NotFoundException):
        version(client, app_id, missing, 1)


def test_segments_belong_to_their_app(client: Any, app_id: str) -> None:
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    segment = create(client, app_id)
    with pytest.raises(client.exceptions.NotFoundException):
        get(client, other, segment["Id"])
    assert client.get_segments(ApplicationId=other)["SegmentsResponse"]["Item"] == []


# --- GetSegments ---------------------------------------------------------------------------------------------


def test_get_segments_pages_in_creation_order(client: Any, app_id: str) -> None:
    ids = [create(client, app_id, f"s{n}")["Id"] for n in range(5)]
    update(client, app_id, ids[0], Name="s0 renamed")
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"Token": token} if token else {}
        page = client.get_segments(ApplicationId=app_id, PageSize="2", **kwargs)["SegmentsResponse"]
        pages += 1
        seen += page["Item"]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert [item["Id"] for item in seen] == ids
    assert seen[0]["Name"] == "s0 renamed" and seen[0]["Version"] == 2  # the latest version of each
    everything = client.get_segments(ApplicationId=app_id)["SegmentsResponse"]
    assert len(everything["Item"]) == 5 and "NextToken" not in everything


def test_get_segments_bad_paging(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException):
        client.get_segments(ApplicationId=app_id, PageSize="0")
    with pytest.raises(client.exceptions.BadRequestException):
        client.get_segments(ApplicationId=app_id, Token="not-ours")


# --- UpdateSegment and versions ------------------------------------------------------------------------------


def test_update_twice_keeps_every_version(client: Any, server: Any, app_id: str) -> None:
    created = create(client, app_id, "v1", Dimensions=TIER)
    segment_id = created["Id"]
    tick(server)
    second = update(client, app_id, segment_id, Name="v2")
    tick(server)
    third = update(client, app_id, segment_id, SegmentGroups=GROUPS, Dimensions={})
    assert (second["Version"], third["Version"]) == (2, 3)
    assert second["CreationDate"] == third["CreationDate"] == created["CreationDate"]
    assert created["LastModifiedDate"] < second["LastModifiedDate"] < third["LastModifiedDate"]
    # omitted members keep their value
    assert second["Dimensions"] == TIER and "SegmentGroups" not in second
    assert third["Name"] == "v2" and third["Dimensions"] == {} and third["SegmentGroups"] == GROUPS
    assert get(client, app_id, segment_id) == third

    assert version(client, app_id, segment_id, 1) == created
    assert version(client, app_id, segment_id, 2) == second
    assert version(client, app_id, segment_id, 3) == third
    with pytest.raises(client.exceptions.NotFoundException):
        version(client, app_id, segment_id, 4)
    with pytest.raises(client.exceptions.BadRequestException):
        version(client, app_id, segment_id, "latest")

    versions = client.get_segment_versions(ApplicationId=app_id, SegmentId=segment_id)["SegmentsResponse"]
    assert versions["Item"] == [created, second, third] and "NextToken" not in versions


def test_get_segment_versions_pages(client: Any, app_id: str) -> None:
    segment_id = create(client, app_id, "n1")["Id"]
    for n in range(2, 6):
        update(client, app_id, segment_id, Name=f"n{n}")
    names, token = [], None
    while True:
        kwargs = {"Token": token} if token else {}
        page = client.get_segment_versions(ApplicationId=app_id, SegmentId=segment_id, PageSize="2", **kwargs)
        names += [(item["Version"], item["Name"]) for item in page["SegmentsResponse"]["Item"]]
        token = page["SegmentsResponse"].get("NextToken")
        if not token:
            break
    assert names == [(n, f"n{n}") for n in range(1, 6)]


def test_update_ignores_tags(client: Any, app_id: str) -> None:
    segment = create(client, app_id, tags={"team": "growth"})
    updated = update(client, app_id, segment["Id"], Name="renamed", tags={"team": "other", "new": "x"})
    assert updated["tags"] == {"team": "growth"}
    assert client.list_tags_for_resource(ResourceArn=segment["Arn"])["TagsModel"]["tags"] == {"team": "growth"}


def test_update_with_empty_body_still_makes_a_version(client: Any, app_id: str) -> None:
    segment = create(client, app_id, Dimensions=TIER)
    updated = update(client, app_id, segment["Id"])
    assert updated["Version"] == 2 and updated["Name"] == segment["Name"] and updated["Dimensions"] == TIER


# --- DeleteSegment -------------------------------------------------------------------------------------------


def test_delete_returns_the_segment_and_removes_versions_and_tags(client: Any, server: Any, app_id: str) -> None:
    segment = create(client, app_id, Dimensions=TIER, tags={"a": "1"})
    updated = update(client, app_id, segment["Id"], Name="latest")
    keep = create(client, app_id, "keep")
    response = client.delete_segment(ApplicationId=app_id, SegmentId=segment["Id"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["SegmentResponse"] == updated
    with pytest.raises(client.exceptions.NotFoundException):
        get(client, app_id, segment["Id"])
    with pytest.raises(client.exceptions.NotFoundException):
        version(client, app_id, segment["Id"], 1)
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_tags_for_resource(ResourceArn=segment["Arn"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_segment(ApplicationId=app_id, SegmentId=segment["Id"])
    rows = server.project_row_counts(app_id)
    assert (rows["segments"], rows["segment_versions"], rows["tags"]) == (1, 1, 0)
    assert [item["Id"] for item in client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]] == [
        keep["Id"]
    ]


def test_delete_app_removes_segments(client: Any, server: Any, app_id: str) -> None:
    segment = create(client, app_id, Dimensions=TIER, tags={"a": "1"})
    update(client, app_id, segment["Id"], Name="again")
    before = server.project_row_counts(app_id)
    assert (before["segments"], before["segment_versions"]) == (1, 2)
    client.delete_app(ApplicationId=app_id)
    assert server.project_row_counts(app_id) == dict.fromkeys(PROJECT_TABLES, 0)
    with pytest.raises(client.exceptions.NotFoundException):
        get(client, app_id, segment["Id"])


# --- tags ----------------------------------------------------------------------------------------------------


def test_tags_on_segment_arns(client: Any, app_id: str) -> None:
    segment = create(client, app_id, tags={"team": "growth", "env": "prod"})
    assert segment["tags"] == {"env": "prod", "team": "growth"}
    arn = segment["Arn"]
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"env": "prod", "team": "growth"}
    client.tag_resource(ResourceArn=arn, TagsModel={"tags": {"owner": "ana"}})
    client.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert client.list_tags_for_resource(ResourceArn=arn)["TagsModel"]["tags"] == {"owner": "ana", "team": "growth"}
    assert get(client, app_id, segment["Id"])["tags"] == {"owner": "ana", "team": "growth"}
    # the app's own tags are separate
    assert client.get_app(ApplicationId=app_id)["ApplicationResponse"]["tags"] == {}
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_tags_for_resource(ResourceArn=segment_arn(app_id, "f" * 32))
    with pytest.raises(client.exceptions.NotFoundException):
        client.tag_resource(ResourceArn=segment_arn("f" * 32, segment["Id"]), TagsModel={"tags": {"a": "b"}})


def test_invalid_tags_at_create(client: Any, app_id: str) -> None:
    assert "aws:" in bad_request(client, app_id, {"Name": "x", "tags": {"aws:x": "y"}})
    assert client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []


# --- validation ----------------------------------------------------------------------------------------------


def attribute(kind: str, values: list[str]) -> dict[str, Any]:
    return {"Attributes": {"when": {"AttributeType": kind, "Values": values}}}


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({}, "Name must not be empty"),
        ({"Name": "  "}, "Name must not be empty"),
        (
            {"Name": "x", "Dimensions": attribute("INCLUSIVE", [])},
            "Dimensions.Attributes.when.Values must not be empty",
        ),
        (
            {"Name": "x", "Dimensions": {"UserAttributes": {"plan": {"Values": []}}}},
            "Dimensions.UserAttributes.plan.Values must not be empty",
        ),
        (
            {"Name": "x", "Dimensions": {"Demographic": {"Platform": {"Values": []}}}},
            "Dimensions.Demographic.Platform.Values must not be empty",
        ),
        (
            {"Name": "x", "Dimensions": {"Location": {"Country": {"Values": []}}}},
            "Dimensions.Location.Country.Values must not be empty",
        ),
        (
            {"Name": "x", "Dimensions": attribute("INCLUSIVE", ["a" * 101])},
            "Dimensions.Attributes.when.Values[0] is longer than 100 characters",
        ),
        (
            {"Name": "x", "Dimensions": attribute("BETWEEN", ["2024-01-01T00:00:00Z"])},
            "Dimensions.Attributes.when.Values must hold exactly two instants for BETWEEN, not 1",
        ),
        (
            {"Name": "x", "Dimensions": attribute("BETWEEN", ["2024-01-01T00:00:00Z", "2024-02-01", "2024-03-01"])},
            "exactly two instants",
        ),
        (
            {"Name": "x", "Dimensions": attribute("BETWEEN", ["2024-01-01T00:00:00Z", "soon"])},
            "Dimensions.Attributes.when.Values[1] must be an ISO-8601 date or date-time, not 'soon'",
        ),
        (
            {"Name": "x", "Dimensions": attribute("BETWEEN", ["2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z"])},
            "must be in order for BETWEEN",
        ),
        ({"Name": "x", "Dimensions": attribute("BEFORE", ["yesterday"])}, "Values[0] must be an ISO-8601"),
        ({"Name": "x", "Dimensions": attribute("AFTER", ["2024-13-01"])}, "Values[0] must be an ISO-8601"),
        ({"Name": "x", "Dimensions": attribute("ON", ["2024-01-01", "monday"])}, "Values[1] must be an ISO-8601"),
        (
            {"Name": "x", "Dimensions": {"Metrics": {"score": {"ComparisonOperator": "BIGGER", "Value": 1}}}},
            "Dimensions.Metrics.score.ComparisonOperator must be one of GREATER_THAN",
        ),
        (
            {
                "Name": "x",
                "Dimensions": {"Location": {"GPSPoint": {"Coordinates": {"Latitude": 91, "Longitude": 0}}}},
            },
            "Dimensions.Location.GPSPoint.Coordinates.Latitude must be between -90 and 90",
        ),
        (
            {
                "Name": "x",
                "Dimensions": {"Location": {"GPSPoint": {"Coordinates": {"Latitude": 0, "Longitude": -180.5}}}},
            },
            "Dimensions.Location.GPSPoint.Coordinates.Longitude must be between -180 and 180",
        ),
        (
            {
                "Name": "x",
                "Dimensions": {
                    "Location": {"GPSPoint": {"Coordinates": {"Latitude": 0, "Longitude": 0}, "RangeInKilometers": 0}}
                },
            },
            "Dimensions.Location.GPSPoint.RangeInKilometers must be greater than 0",
        ),
        (
            {
                "Name": "x",
                "SegmentGroups": {
                    "Groups": [
                        {"Dimensions": [TIER]},
                        {"Dimensions": [TIER, {"Attributes": {"tier": {"Values": []}}}]},
                    ]
                },
            },
            "SegmentGroups.Groups[1].Dimensions[1].Attributes.tier.Values must not be empty",
        ),
        (
            {"Name": "x", "SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": "f" * 32}]}]}},
            "SegmentGroups.Groups[0].SourceSegments[0].Id: segment 'fffff",
        ),
    ],
)
def test_validation_errors(client: Any, app_id: str, request_body: dict[str, Any], expected: str) -> None:
    assert expected in bad_request(client, app_id, request_body)
    assert client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []


def test_modeled_enum_errors(client: Any, app_id: str) -> None:
    """The decoder rejects what the model rules out (botocore does not check enums, so this reaches the server)."""
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_segment(
            ApplicationId=app_id, WriteSegmentRequest={"Name": "x", "Dimensions": attribute("SOMETIME", ["a"])}
        )
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_segment(
            ApplicationId=app_id, WriteSegmentRequest={"Name": "x", "SegmentGroups": {"Include": "MOST"}}
        )


def test_dimension_quota_counts_every_criterion(client: Any, app_id: str) -> None:
    fifty = {"Attributes": {f"a{n}": {"Values": ["x"]} for n in range(50)}}
    forty_nine = {"UserAttributes": {f"u{n}": {"Values": ["x"]} for n in range(49)}}
    # 50 + 49 + 1 = 100 criteria: allowed
    at_limit = {
        "Groups": [{"Dimensions": [fifty, forty_nine, {"Metrics": {"m": {"ComparisonOperator": "EQUAL", "Value": 1}}}]}]
    }
    create(client, app_id, SegmentGroups=at_limit)
    over = {"Groups": [{"Dimensions": [fifty, forty_nine]}]}
    message = bad_request(
        client,
        app_id,
        {
            "Name": "x",
            "Dimensions": {
                "Behavior": {"Recency": {"Duration": "HR_24", "RecencyType": "ACTIVE"}},
                "Location": {"Country": {"Values": ["DE"]}},
            },
            "SegmentGroups": over,
        },
    )
    assert message == "A segment can have at most 100 dimensions, not 101"


def test_update_is_validated_and_changes_nothing_when_refused(client: Any, app_id: str) -> None:
    segment = create(client, app_id, Dimensions=TIER)
    assert bad_request(client, app_id, {"Name": ""}, segment["Id"]) == "Name must not be empty"
    message = bad_request(client, app_id, {"Dimensions": attribute("ON", ["later"])}, segment["Id"])
    assert "Dimensions.Attributes.when.Values[0] must be an ISO-8601" in message
    assert get(client, app_id, segment["Id"]) == segment
    versions = client.get_segment_versions(ApplicationId=app_id, SegmentId=segment["Id"])["SegmentsResponse"]
    assert len(versions["Item"]) == 1


# --- SourceSegments ------------------------------------------------------------------------------------------


def sources(*references: dict[str, Any]) -> dict[str, Any]:
    return {"Include": "ALL", "Groups": [{"SourceSegments": list(references), "SourceType": "ANY"}]}


def test_source_segments_must_exist_in_the_same_app(client: Any, app_id: str) -> None:
    base = create(client, app_id, "base", Dimensions=TIER)
    update(client, app_id, base["Id"], Name="base v2")
    derived = create(
        client, app_id, "derived", SegmentGroups=sources({"Id": base["Id"]}, {"Id": base["Id"], "Version": 1})
    )
    assert derived["SegmentGroups"]["Groups"][0]["SourceSegments"] == [
        {"Id": base["Id"]},
        {"Id": base["Id"], "Version": 1},
    ]

    message = bad_request(client, app_id, {"Name": "x", "SegmentGroups": sources({"Id": base["Id"], "Version": 3})})
    assert message == f"SegmentGroups.Groups[0].SourceSegments[0].Version: segment {base['Id']!r} has no version 3"
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    message = bad_request(client, other, {"Name": "x", "SegmentGroups": sources({"Id": base["Id"]})})
    assert message.startswith(f"SegmentGroups.Groups[0].SourceSegments[0].Id: segment {base['Id']!r} does not exist")
    assert "SourceSegments[0].Version must be at least 1" in bad_request(
        client, app_id, {"Name": "x", "SegmentGroups": sources({"Id": base["Id"], "Version": 0})}
    )


def test_a_segment_cannot_reference_itself_or_make_a_cycle(client: Any, app_id: str) -> None:
    first = create(client, app_id, "first")
    message = bad_request(client, app_id, {"SegmentGroups": sources({"Id": first["Id"]})}, first["Id"])
    assert message == "SegmentGroups.Groups[0].SourceSegments[0].Id: a segment cannot reference itself"
    second = create(client, app_id, "second", SegmentGroups=sources({"Id": first["Id"]}))
    third = create(client, app_id, "third", SegmentGroups=sources({"Id": second["Id"]}))
    message = bad_request(client, app_id, {"SegmentGroups": sources({"Id": third["Id"]})}, first["Id"])
    assert "references this segment, which would make a cycle" in message
    # a rename keeps the groups as they are and is not re-checked
    assert update(client, app_id, third["Id"], Name="third v2")["Version"] == 2


def test_references_may_outlive_their_target(client: Any, app_id: str) -> None:
    base = create(client, app_id, "base")
    derived = create(client, app_id, "derived", SegmentGroups=sources({"Id": base["Id"]}))
    client.delete_segment(ApplicationId=app_id, SegmentId=base["Id"])
    assert update(client, app_id, derived["Id"], Name="renamed")["SegmentGroups"] == derived["SegmentGroups"]
    message = bad_request(client, app_id, {"SegmentGroups": derived["SegmentGroups"]}, derived["Id"])
    assert "does not exist" in message
