"""Endpoints and users through boto3 against a running Clarion: Pinpoint's endpoint semantics and
quotas ("Amazon Pinpoint quotas").

UpdateEndpoint, UpdateEndpointsBatch, GetEndpoint, DeleteEndpoint, GetUserEndpoints, DeleteUserEndpoints and
RemoveAttributes, each with the errors Pinpoint gives; every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clarion.store import events as event_store
from clarion.store.apps import PROJECT_TABLES

ISO_MILLIS = "%Y-%m-%dT%H:%M:%S.%fZ"


# --- helpers -------------------------------------------------------------------------------------------------


def put(client: Any, app_id: str, endpoint_id: str, **request: Any) -> dict[str, Any]:
    return client.update_endpoint(ApplicationId=app_id, EndpointId=endpoint_id, EndpointRequest=request)


def put_batch(client: Any, app_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})


def get(client: Any, app_id: str, endpoint_id: str) -> dict[str, Any]:
    return client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)["EndpointResponse"]


def user_endpoints(client: Any, app_id: str, user_id: str) -> list[dict[str, Any]]:
    return client.get_user_endpoints(ApplicationId=app_id, UserId=user_id)["EndpointsResponse"]["Item"]


def message(info: pytest.ExceptionInfo[Any]) -> str:
    return info.value.response["Error"]["Message"]


def status(response: dict[str, Any]) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def tick(server: Any, seconds: float = 1) -> None:
    """Move the server's clock on (no sleeping): EffectiveDate and the push eviction order depend on it."""
    server.clock.offset += timedelta(seconds=seconds)


def assert_absent(client: Any, app_id: str, *endpoint_ids: str) -> None:
    for endpoint_id in endpoint_ids:
        with pytest.raises(client.exceptions.NotFoundException):
            get(client, app_id, endpoint_id)


def email_item(endpoint_id: str, user_id: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"Id": endpoint_id, "ChannelType": "EMAIL", "Address": f"{endpoint_id}@example.com"}
    if user_id:
        item["User"] = {"UserId": user_id}
    return {**item, **extra}


def parse_date(value: str) -> datetime:
    return datetime.strptime(value, ISO_MILLIS).replace(tzinfo=UTC)


# --- upsert, responses -------------------------------------------------------------------------------------


def test_update_endpoint_creates_and_get_returns_every_field(client: Any, server: Any, app_id: str) -> None:
    written = put(client, app_id, "e1", ChannelType="EMAIL", Address="a@example.com")
    assert status(written) == 202
    body = written["MessageBody"]
    assert body["Message"] == "Accepted"
    assert body["RequestID"] == written["ResponseMetadata"]["RequestId"]

    got = client.get_endpoint(ApplicationId=app_id, EndpointId="e1")
    assert status(got) == 200
    endpoint = got["EndpointResponse"]
    assert endpoint["ApplicationId"] == app_id
    assert endpoint["Id"] == "e1"
    assert endpoint["ChannelType"] == "EMAIL"
    assert endpoint["Address"] == "a@example.com"
    assert endpoint["EndpointStatus"] == "ACTIVE"
    assert endpoint["OptOut"] == "NONE"
    assert endpoint["RequestId"] == body["RequestID"]
    assert endpoint["CohortId"].isdigit() and 0 <= int(endpoint["CohortId"]) <= 99
    created = parse_date(endpoint["CreationDate"])
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    assert endpoint["EffectiveDate"] == endpoint["CreationDate"]

    tick(server, 5)
    again = put(client, app_id, "e1", OptOut="ALL")
    updated = get(client, app_id, "e1")
    assert updated["CreationDate"] == endpoint["CreationDate"]
    assert parse_date(updated["EffectiveDate"]) - created >= timedelta(seconds=5)
    assert updated["CohortId"] == endpoint["CohortId"]
    assert updated["OptOut"] == "ALL"
    assert updated["RequestId"] == again["MessageBody"]["RequestID"] != body["RequestID"]

    # The cohort is a function of the id: deleting and re-creating lands in the same bucket.
    client.delete_endpoint(ApplicationId=app_id, EndpointId="e1")
    put(client, app_id, "e1", ChannelType="EMAIL", Address="a@example.com")
    assert get(client, app_id, "e1")["CohortId"] == endpoint["CohortId"]


def test_cohort_ids_spread_over_buckets(client: Any, app_id: str) -> None:
    put_batch(client, app_id, [{"Id": f"cohort-{n}", "ChannelType": "CUSTOM", "Address": str(n)} for n in range(60)])
    cohorts = {get(client, app_id, f"cohort-{n}")["CohortId"] for n in range(60)}
    assert all(0 <= int(c) <= 99 for c in cohorts)
    assert len(cohorts) > 20  # a random-like bucket, not one constant


def test_update_endpoints_batch_accepts_and_stores_every_item(client: Any, app_id: str) -> None:
    written = put_batch(client, app_id, [email_item(f"b{n}") for n in range(100)])
    assert status(written) == 202
    assert written["MessageBody"]["Message"] == "Accepted"
    request_id = written["MessageBody"]["RequestID"]
    assert request_id == written["ResponseMetadata"]["RequestId"]
    for n in (0, 57, 99):
        endpoint = get(client, app_id, f"b{n}")
        assert endpoint["Address"] == f"b{n}@example.com"
        assert endpoint["RequestId"] == request_id
        assert endpoint["EndpointStatus"] == "ACTIVE"


def test_write_may_set_status_explicitly(client: Any, app_id: str) -> None:
    put(client, app_id, "e1", ChannelType="SMS", Address="+12065550100", EndpointStatus="INACTIVE")
    assert get(client, app_id, "e1")["EndpointStatus"] == "INACTIVE"
    put(client, app_id, "e1", Attributes={"a": ["1"]})  # a write that says nothing re-activates it
    assert get(client, app_id, "e1")["EndpointStatus"] == "ACTIVE"


def test_client_supplied_request_id_and_dates_are_ignored(client: Any, app_id: str) -> None:
    written = put(client, app_id, "e1", ChannelType="CUSTOM", RequestId="forged", EffectiveDate="2001-01-01T00:00:00Z")
    endpoint = get(client, app_id, "e1")
    assert endpoint["RequestId"] == written["MessageBody"]["RequestID"]
    assert not endpoint["EffectiveDate"].startswith("2001")


# --- partial update ----------------------------------------------------------------------------------------


def test_partial_update_keeps_omitted_fields_and_replaces_per_key(client: Any, app_id: str) -> None:
    put(
        client,
        app_id,
        "e1",
        ChannelType="EMAIL",
        Address="a@example.com",
        OptOut="ALL",
        Attributes={"colors": ["red", "blue"], "size": ["L"]},
        Metrics={"visits": 3, "score": 1.5},
        Demographic={"Make": "Apple", "Platform": "iOS", "Timezone": "Europe/Paris"},
        Location={"City": "Paris", "Country": "FR"},
        User={"UserId": "u1"},
    )

    put(client, app_id, "e1", Attributes={"colors": ["green"]})
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"colors": ["green"], "size": ["L"]}  # replaced, never appended
    assert endpoint["ChannelType"] == "EMAIL"
    assert endpoint["Address"] == "a@example.com"
    assert endpoint["OptOut"] == "ALL"
    assert endpoint["Metrics"] == {"visits": 3.0, "score": 1.5}
    assert endpoint["Demographic"] == {"Make": "Apple", "Platform": "iOS", "Timezone": "Europe/Paris"}
    assert endpoint["Location"] == {"City": "Paris", "Country": "FR"}
    assert endpoint["User"]["UserId"] == "u1"

    put(client, app_id, "e1", Attributes={"size": []}, Metrics={"visits": 4})
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"colors": ["green"]}  # an empty list removes the key
    assert endpoint["Metrics"] == {"visits": 4.0, "score": 1.5}

    put(
        client,
        app_id,
        "e1",
        Demographic={"Model": "iPhone", "Timezone": "America/Los_Angeles"},
        Location={"Latitude": 48.9},
    )
    endpoint = get(client, app_id, "e1")
    assert endpoint["Demographic"] == {
        "Make": "Apple",
        "Platform": "iOS",
        "Model": "iPhone",
        "Timezone": "America/Los_Angeles",
    }
    assert endpoint["Location"] == {"City": "Paris", "Country": "FR", "Latitude": 48.9}

    put(client, app_id, "e1", OptOut="NONE", Address="b@example.com")
    endpoint = get(client, app_id, "e1")
    assert (endpoint["OptOut"], endpoint["Address"]) == ("NONE", "b@example.com")
    assert endpoint["Attributes"] == {"colors": ["green"]}


def test_batch_items_merge_like_update_endpoint(client: Any, app_id: str) -> None:
    put(client, app_id, "e1", ChannelType="EMAIL", Address="a@example.com", Attributes={"a": ["1"], "b": ["2"]})
    put_batch(client, app_id, [{"Id": "e1", "Attributes": {"a": ["9"]}}, {"Id": "e1", "Metrics": {"m": 1}}])
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"a": ["9"], "b": ["2"]}
    assert endpoint["Metrics"] == {"m": 1.0}
    assert endpoint["Address"] == "a@example.com"


# --- users -------------------------------------------------------------------------------------------------


def test_user_attributes_are_shared_by_every_endpoint_of_the_user(client: Any, app_id: str) -> None:
    put(client, app_id, "phone", ChannelType="SMS", Address="+12065550100", User={"UserId": "u1"})
    put(client, app_id, "mail", ChannelType="EMAIL", Address="u1@example.com", User={"UserId": "u1"})
    put(client, app_id, "other", ChannelType="EMAIL", Address="u2@example.com", User={"UserId": "u2"})

    put(client, app_id, "phone", User={"UserId": "u1", "UserAttributes": {"plan": ["pro"], "tags": ["a", "b"]}})
    assert get(client, app_id, "mail")["User"] == {
        "UserId": "u1",
        "UserAttributes": {"plan": ["pro"], "tags": ["a", "b"]},
    }
    assert get(client, app_id, "other")["User"] == {"UserId": "u2", "UserAttributes": {}}

    # Written through the other endpoint, replaced per key, seen through the first.
    put(client, app_id, "mail", User={"UserId": "u1", "UserAttributes": {"plan": ["free"], "tags": []}})
    assert get(client, app_id, "phone")["User"]["UserAttributes"] == {"plan": ["free"]}

    listed = client.get_user_endpoints(ApplicationId=app_id, UserId="u1")
    assert status(listed) == 200
    items = listed["EndpointsResponse"]["Item"]
    assert sorted(item["Id"] for item in items) == ["mail", "phone"]
    for item in items:
        assert item["ApplicationId"] == app_id
        assert item["User"] == {"UserId": "u1", "UserAttributes": {"plan": ["free"]}}


def test_moving_an_endpoint_to_another_user(client: Any, app_id: str) -> None:
    put(client, app_id, "e1", ChannelType="EMAIL", Address="a@example.com", User={"UserId": "u1"})
    put(client, app_id, "e2", ChannelType="EMAIL", Address="b@example.com", User={"UserId": "u1"})
    put(client, app_id, "e1", User={"UserId": "u2", "UserAttributes": {"k": ["v"]}})
    assert [item["Id"] for item in user_endpoints(client, app_id, "u1")] == ["e2"]
    assert [item["Id"] for item in user_endpoints(client, app_id, "u2")] == ["e1"]
    assert get(client, app_id, "e2")["User"]["UserAttributes"] == {}


def test_delete_user_endpoints_removes_all_of_them(client: Any, app_id: str) -> None:
    put(client, app_id, "e1", ChannelType="EMAIL", Address="a@example.com", User={"UserId": "u1"})
    put(
        client,
        app_id,
        "e2",
        ChannelType="SMS",
        Address="+12065550100",
        User={"UserId": "u1", "UserAttributes": {"a": ["1"]}},
    )
    put(client, app_id, "keep", ChannelType="EMAIL", Address="k@example.com", User={"UserId": "u2"})

    deleted = client.delete_user_endpoints(ApplicationId=app_id, UserId="u1")
    assert status(deleted) == 202
    items = deleted["EndpointsResponse"]["Item"]
    assert sorted(item["Id"] for item in items) == ["e1", "e2"]
    assert all(item["User"] == {"UserId": "u1", "UserAttributes": {"a": ["1"]}} for item in items)

    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.get_user_endpoints(ApplicationId=app_id, UserId="u1")
    assert "u1" in message(info)
    assert_absent(client, app_id, "e1", "e2")
    assert get(client, app_id, "keep")["User"]["UserId"] == "u2"

    # The user's attributes went with the user: a new endpoint of u1 starts without them.
    put(client, app_id, "e3", ChannelType="EMAIL", Address="c@example.com", User={"UserId": "u1"})
    assert get(client, app_id, "e3")["User"] == {"UserId": "u1", "UserAttributes": {}}
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_user_endpoints(ApplicationId=app_id, UserId="nobody")


def test_delete_endpoint_returns_it(client: Any, app_id: str) -> None:
    put(
        client,
        app_id,
        "e1",
        ChannelType="EMAIL",
        Address="a@example.com",
        Attributes={"a": ["1"]},
        User={"UserId": "u1"},
    )
    deleted = client.delete_endpoint(ApplicationId=app_id, EndpointId="e1")
    assert status(deleted) == 202
    endpoint = deleted["EndpointResponse"]
    assert endpoint["Id"] == "e1"
    assert endpoint["ApplicationId"] == app_id
    assert endpoint["Attributes"] == {"a": ["1"]}
    assert endpoint["User"]["UserId"] == "u1"
    assert_absent(client, app_id, "e1")
    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.delete_endpoint(ApplicationId=app_id, EndpointId="e1")
    assert "e1" in message(info)
    with pytest.raises(client.exceptions.NotFoundException):
        user_endpoints(client, app_id, "u1")


# --- address reuse -----------------------------------------------------------------------------------------


def test_reusing_an_address_deactivates_the_previous_holder(client: Any, app_id: str) -> None:
    put(client, app_id, "A", ChannelType="EMAIL", Address="shared@example.com")
    put(client, app_id, "other", ChannelType="EMAIL", Address="other@example.com")
    put(client, app_id, "B", ChannelType="EMAIL", Address="shared@example.com")
    assert get(client, app_id, "A")["EndpointStatus"] == "INACTIVE"
    assert get(client, app_id, "B")["EndpointStatus"] == "ACTIVE"
    assert get(client, app_id, "other")["EndpointStatus"] == "ACTIVE"

    put(client, app_id, "A", ChannelType="EMAIL", Address="shared@example.com")
    assert get(client, app_id, "A")["EndpointStatus"] == "ACTIVE"
    assert get(client, app_id, "B")["EndpointStatus"] == "INACTIVE"


def test_an_address_stays_with_the_endpoint_written_last(client: Any, app_id: str) -> None:
    """A write that leaves Address out still reactivates the endpoint, so it takes its address back."""
    put(client, app_id, "A", ChannelType="EMAIL", Address="shared@example.com")
    put(client, app_id, "B", ChannelType="EMAIL", Address="shared@example.com")
    put(client, app_id, "A", Attributes={"tier": ["gold"]})
    assert get(client, app_id, "A")["EndpointStatus"] == "ACTIVE"
    assert get(client, app_id, "B")["EndpointStatus"] == "INACTIVE"


def test_reused_address_in_one_batch_later_item_wins(client: Any, app_id: str) -> None:
    put(client, app_id, "old", ChannelType="SMS", Address="+12065550100")
    put_batch(
        client,
        app_id,
        [
            {"Id": "first", "ChannelType": "SMS", "Address": "+12065550100"},
            {"Id": "second", "ChannelType": "SMS", "Address": "+12065550100"},
        ],
    )
    assert get(client, app_id, "second")["EndpointStatus"] == "ACTIVE"
    assert get(client, app_id, "first")["EndpointStatus"] == "INACTIVE"
    assert get(client, app_id, "old")["EndpointStatus"] == "INACTIVE"


# --- endpoint ids --------------------------------------------------------------------------------------------


def test_endpoint_ids_are_case_insensitive(client: Any, app_id: str) -> None:
    put(client, app_id, "Abc", ChannelType="EMAIL", Address="a@example.com")
    endpoint = get(client, app_id, "aBC")
    assert endpoint["Id"] == "Abc"  # the id as first written
    put(client, app_id, "ABC", Attributes={"k": ["v"]})  # the same endpoint, not a second one
    endpoint = get(client, app_id, "abc")
    assert endpoint["Address"] == "a@example.com"
    assert endpoint["Attributes"] == {"k": ["v"]}
    assert client.delete_endpoint(ApplicationId=app_id, EndpointId="abC")["EndpointResponse"]["Id"] == "Abc"
    assert_absent(client, app_id, "Abc")


ODD_IDS = ["with space", "a/b/c", "urn:device:1", "a+b=c", "ünïcødé-✓-端点", "100%25", "q?x&y#z"]


def test_endpoint_ids_with_odd_characters_round_trip(client: Any, app_id: str) -> None:
    for n, endpoint_id in enumerate(ODD_IDS):
        put(client, app_id, endpoint_id, ChannelType="CUSTOM", Address=f"addr-{n}", User={"UserId": endpoint_id})
        assert get(client, app_id, endpoint_id)["Id"] == endpoint_id
        assert [e["Id"] for e in user_endpoints(client, app_id, endpoint_id)] == [endpoint_id]
    put_batch(client, app_id, [{"Id": f"batch {i}", "ChannelType": "CUSTOM"} for i in ODD_IDS])
    for endpoint_id in ODD_IDS:
        assert get(client, app_id, f"batch {endpoint_id}")["Id"] == f"batch {endpoint_id}"
        deleted = client.delete_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)
        assert deleted["EndpointResponse"]["Id"] == endpoint_id
    assert_absent(client, app_id, *ODD_IDS)


# --- 15 endpoints per user -----------------------------------------------------------------------------------


def test_sixteenth_endpoint_of_a_user_is_refused(client: Any, app_id: str) -> None:
    put_batch(client, app_id, [email_item(f"e{n}", "u1") for n in range(15)])
    assert len(user_endpoints(client, app_id, "u1")) == 15

    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "e15", ChannelType="SMS", Address="+12065550100", User={"UserId": "u1"})
    assert "u1" in message(info) and "15" in message(info)
    assert_absent(client, app_id, "e15")

    # A push endpoint cannot make room either when the user has no push endpoint to displace.
    with pytest.raises(client.exceptions.BadRequestException):
        put(client, app_id, "p1", ChannelType="GCM", Address="token-1", User={"UserId": "u1"})
    assert_absent(client, app_id, "p1")

    # Existing endpoints of the user may still be updated, and endpoints without the user still be written.
    put(client, app_id, "e3", User={"UserId": "u1", "UserAttributes": {"a": ["1"]}})
    put(client, app_id, "e15", ChannelType="EMAIL", Address="e15@example.com")
    assert len(user_endpoints(client, app_id, "u1")) == 15

    # Moving an endpoint off the user frees a slot.
    put(client, app_id, "e0", User={"UserId": "u2"})
    put(client, app_id, "e15", User={"UserId": "u1"})
    assert "e15" in {e["Id"] for e in user_endpoints(client, app_id, "u1")}


def test_sixteenth_push_endpoint_displaces_the_oldest_push_endpoint(client: Any, server: Any, app_id: str) -> None:
    put(client, app_id, "push-old", ChannelType="GCM", Address="token-old", User={"UserId": "u1"})
    tick(server)
    put(client, app_id, "push-new", ChannelType="APNS", Address="token-new", User={"UserId": "u1"})
    tick(server)
    put_batch(client, app_id, [email_item(f"e{n}", "u1") for n in range(13)])
    tick(server)
    assert len(user_endpoints(client, app_id, "u1")) == 15

    put(client, app_id, "push-16", ChannelType="GCM", Address="token-16", User={"UserId": "u1"})
    ids = {e["Id"] for e in user_endpoints(client, app_id, "u1")}
    assert len(ids) == 15
    assert "push-16" in ids and "push-new" in ids and "push-old" not in ids
    evicted = get(client, app_id, "push-old")
    assert evicted["EndpointStatus"] == "INACTIVE"
    assert "User" not in evicted
    assert evicted["Address"] == "token-old"
    assert get(client, app_id, "push-16")["EndpointStatus"] == "ACTIVE"

    # The next push endpoint displaces the next oldest push endpoint (push-new, older than push-16).
    tick(server)
    put(client, app_id, "push-17", ChannelType="APNS_SANDBOX", Address="token-17", User={"UserId": "u1"})
    ids = {e["Id"] for e in user_endpoints(client, app_id, "u1")}
    assert "push-new" not in ids and {"push-16", "push-17"} <= ids
    assert get(client, app_id, "push-new")["EndpointStatus"] == "INACTIVE"


# --- batch limits --------------------------------------------------------------------------------------------


def test_push_displacement_sees_earlier_items_of_the_same_batch(client: Any, server: Any, app_id: str) -> None:
    put(client, app_id, "push-1", ChannelType="GCM", Address="token-1", User={"UserId": "u1"})
    tick(server)
    put(client, app_id, "push-2", ChannelType="GCM", Address="token-2", User={"UserId": "u1"})
    tick(server)
    put_batch(client, app_id, [email_item(f"e{n}", "u1") for n in range(13)])
    tick(server)
    # The oldest push endpoint leaves u1, a new email endpoint takes its slot, so a new push endpoint displaces
    # push-2: the stored push-1 is no longer u1's and must not be the one picked.
    push_3 = {"Id": "push-3", "ChannelType": "APNS", "Address": "token-3", "User": {"UserId": "u1"}}
    put_batch(client, app_id, [{"Id": "push-1", "User": {"UserId": "u2"}}, email_item("e13", "u1"), push_3])
    assert get(client, app_id, "push-1")["User"]["UserId"] == "u2"
    assert get(client, app_id, "push-1")["EndpointStatus"] == "ACTIVE"
    assert get(client, app_id, "push-2")["EndpointStatus"] == "INACTIVE"
    ids = {e["Id"] for e in user_endpoints(client, app_id, "u1")}
    assert len(ids) == 15
    assert "push-3" in ids and "push-2" not in ids


def test_sixteen_endpoints_of_a_new_user_in_one_batch_are_refused(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [email_item(f"e{n}", "u1") for n in range(16)])
    assert "e15" in message(info)
    assert_absent(client, app_id, "e0", "e15")


def test_batch_of_101_items_is_refused(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [email_item(f"b{n}") for n in range(101)])
    assert "Item" in message(info) and "100" in message(info)
    assert_absent(client, app_id, "b0", "b100")


def test_one_invalid_item_refuses_the_whole_batch(client: Any, app_id: str) -> None:
    items = [email_item("ok-1"), {"Id": "bad", "ChannelType": "SMS", "Address": "555-0100"}, email_item("ok-2")]
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, items)
    assert "Item[1].Address" in message(info)
    assert_absent(client, app_id, "ok-1", "bad", "ok-2")


def test_item_failing_a_store_rule_refuses_the_whole_batch(client: Any, server: Any, app_id: str) -> None:
    put_batch(client, app_id, [email_item(f"u{n}", "full") for n in range(15)])
    items = [
        email_item("ok-1", Attributes={"fresh": ["x"]}),
        email_item("over", "full"),  # the user's 16th endpoint: refused while planning, not while parsing
    ]
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, items)
    assert "over" in message(info)
    assert_absent(client, app_id, "ok-1", "over")
    # The refused batch registered no attribute name either: 'fresh' does not count against the quota.
    assert "fresh" not in attribute_names(server, app_id)


def attribute_names(server: Any, app_id: str) -> set[str]:
    """The names the project's quota counts, read from the store."""

    def work(tx: Any) -> set[str]:
        return {row[0] for row in tx.fetchall("SELECT name FROM app_names WHERE app_id = ?", (app_id,))}

    return server.run(lambda services: services.db.read(work))


def test_batch_item_without_id_is_refused(client: Any, app_id: str) -> None:
    # botocore does not require Id on a batch item, so the server has to.
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [email_item("ok"), {"ChannelType": "EMAIL", "Address": "x@example.com"}])
    assert "Item[1].Id" in message(info)
    assert_absent(client, app_id, "ok")


# --- validation ----------------------------------------------------------------------------------------------

INVALID_REQUESTS = [
    pytest.param({"ChannelType": "CARRIER_PIGEON", "Address": "x"}, "ChannelType", id="channel-enum"),
    pytest.param({"ChannelType": "SMS", "Address": "206-555-0100"}, "Address", id="sms-not-e164"),
    pytest.param({"ChannelType": "VOICE", "Address": "+0123"}, "Address", id="voice-not-e164"),
    pytest.param({"ChannelType": "EMAIL", "Address": "no-at-sign"}, "Address", id="email-without-at"),
    pytest.param({"ChannelType": "EMAIL", "OptOut": "SOME"}, "OptOut", id="opt-out"),
    pytest.param({"ChannelType": "EMAIL", "EndpointStatus": "DORMANT"}, "EndpointStatus", id="status"),
    pytest.param({"Attributes": {"n" * 51: ["v"]}}, "Attributes", id="attribute-name-51"),
    pytest.param({"Attributes": {"color": ["v" * 101]}}, "Attributes.color", id="attribute-value-101"),
    pytest.param({"Attributes": {"many": [str(n) for n in range(51)]}}, "Attributes.many", id="attribute-51-values"),
    pytest.param({"User": {"UserId": "u", "UserAttributes": {"n" * 51: ["v"]}}}, "User.UserAttributes", id="user-name"),
    pytest.param({"User": {"UserId": "u", "UserAttributes": {"a": ["v" * 101]}}}, "User.UserAttributes.a", id="uval"),
    pytest.param({"Metrics": {"m" * 51: 1.0}}, "Metrics", id="metric-name-51"),
    pytest.param({"Demographic": {"Timezone": "Mars/Olympus_Mons"}}, "Demographic.Timezone", id="timezone"),
    pytest.param({"Location": {"Latitude": 90.5}}, "Location.Latitude", id="latitude"),
    pytest.param({"Location": {"Longitude": -180.5}}, "Location.Longitude", id="longitude"),
]


@pytest.mark.parametrize(("request_fields", "field"), INVALID_REQUESTS)
def test_invalid_endpoint_is_refused_naming_the_field(
    client: Any, app_id: str, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "e1", **request_fields)
    assert field in message(info)
    assert_absent(client, app_id, "e1")

    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [email_item("ok"), {"Id": "e1", **request_fields}])
    assert field in message(info)
    assert_absent(client, app_id, "ok", "e1")


def test_partial_update_cannot_pair_a_channel_with_an_address_it_refuses(client: Any, app_id: str) -> None:
    put(client, app_id, "sms", ChannelType="SMS", Address="+12065550100")
    put(client, app_id, "mail", ChannelType="EMAIL", Address="a@example.com")
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "sms", Address="not-a-phone")  # the stored channel is SMS
    assert "Address" in message(info) and "not-a-phone" in message(info)
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [{"Id": "mail", "ChannelType": "SMS"}])  # the stored address is an email
    assert "Address" in message(info) and "a@example.com" in message(info)
    assert get(client, app_id, "sms")["Address"] == "+12065550100"
    assert get(client, app_id, "mail")["ChannelType"] == "EMAIL"
    put(client, app_id, "sms", Address="+33612345678")  # a valid partial update still works
    assert get(client, app_id, "sms")["Address"] == "+33612345678"


def test_empty_batch_is_refused(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [])
    assert "Item" in message(info)


def test_limits_are_inclusive(client: Any, app_id: str) -> None:
    put(
        client,
        app_id,
        "e1",
        ChannelType="SMS",
        Address="+123456789012345",
        Attributes={"n" * 50: ["v" * 100] * 50},
        User={"UserId": "u1", "UserAttributes": {"u" * 50: ["w" * 100]}},
        Metrics={"m" * 50: -1e300},
        Location={"Latitude": -90, "Longitude": 180},
        Demographic={"Timezone": "UTC"},
    )
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"n" * 50: ["v" * 100] * 50}
    assert endpoint["Location"] == {"Latitude": -90.0, "Longitude": 180.0}


def test_endpoint_id_with_dollar_or_braces_is_refused(client: Any, app_id: str) -> None:
    for endpoint_id in ("price$1", "a{b}"):
        with pytest.raises(client.exceptions.BadRequestException) as info:
            put(client, app_id, endpoint_id, ChannelType="CUSTOM")
        assert "EndpointId" in message(info) and endpoint_id in message(info)
        with pytest.raises(client.exceptions.BadRequestException) as info:
            put_batch(client, app_id, [{"Id": endpoint_id, "ChannelType": "CUSTOM"}])
        assert "Item[0]" in message(info)
        assert_absent(client, app_id, endpoint_id)


def test_250_attribute_names_per_project(client: Any, app_id: str) -> None:
    # 100 custom attributes + 100 metrics + 50 user attributes: exactly the quota.
    put(
        client,
        app_id,
        "e1",
        ChannelType="CUSTOM",
        Attributes={f"attr{n}": ["v"] for n in range(100)},
        Metrics={f"metric{n}": float(n) for n in range(100)},
        User={"UserId": "u1", "UserAttributes": {f"user{n}": ["v"] for n in range(50)}},
    )

    for fresh in ({"Attributes": {"attr-251": ["v"]}}, {"Metrics": {"metric-251": 1.0}}):
        with pytest.raises(client.exceptions.BadRequestException) as info:
            put(client, app_id, "e2", ChannelType="CUSTOM", **fresh)
        assert "251" in message(info) and "250" in message(info)
        assert_absent(client, app_id, "e2")
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "e2", User={"UserId": "u2", "UserAttributes": {"user-251": ["v"]}})
    assert "user-251" in message(info)
    with pytest.raises(client.exceptions.BadRequestException):
        put_batch(client, app_id, [{"Id": "e3", "ChannelType": "CUSTOM", "Attributes": {"attr-251": ["v"]}}])
    assert_absent(client, app_id, "e2", "e3")

    # Names already in use stay usable, on any endpoint and in any combination.
    put(client, app_id, "e2", ChannelType="CUSTOM", Attributes={"attr7": ["x"]}, Metrics={"metric99": 2.0})
    put(client, app_id, "e3", User={"UserId": "u2", "UserAttributes": {"user3": ["y"]}})
    assert get(client, app_id, "e2")["Attributes"] == {"attr7": ["x"]}
    assert get(client, app_id, "e3")["User"]["UserAttributes"] == {"user3": ["y"]}

    # Removing a key from every endpoint does not give its name back (Pinpoint counts names ever used).
    put(client, app_id, "e1", Attributes={"attr0": []})
    with pytest.raises(client.exceptions.BadRequestException):
        put(client, app_id, "e4", ChannelType="CUSTOM", Attributes={"attr-251": ["v"]})


def test_endpoint_is_at_most_15_kb(client: Any, app_id: str) -> None:
    big = {f"attr{n}": [f"{n:02d}" + "v" * 98] * 50 for n in range(4)}  # 4 × 50 × 100 chars ≈ 20 KB
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "e1", ChannelType="CUSTOM", Attributes=big)
    assert "e1" in message(info) and "15360" in message(info)
    assert_absent(client, app_id, "e1")

    # Growing past the limit one write at a time is refused too, and the endpoint keeps its last good state.
    put(client, app_id, "e1", ChannelType="CUSTOM", Attributes={"attr0": big["attr0"], "attr1": big["attr1"]})
    with pytest.raises(client.exceptions.BadRequestException):
        put(client, app_id, "e1", Attributes={"attr2": big["attr2"], "attr3": big["attr3"]})
    assert set(get(client, app_id, "e1")["Attributes"]) == {"attr0", "attr1"}

    # The limit is in bytes: 10,000 characters of a 3-byte character are 30 KB.
    euros = {f"euro{n}": ["€" * 100] * 50 for n in range(2)}
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put(client, app_id, "e2", ChannelType="CUSTOM", Attributes=euros)
    assert "bytes" in message(info)
    assert_absent(client, app_id, "e2")


def test_request_over_7_mb_is_payload_too_large(client: Any, app_id: str) -> None:
    huge = "x" * (7 * 1024 * 1024 + 1)
    with pytest.raises(client.exceptions.PayloadTooLargeException) as info:
        put(client, app_id, "e1", ChannelType="CUSTOM", Attributes={"a": [huge]})
    assert str(7 * 1024 * 1024) in message(info)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert_absent(client, app_id, "e1")

    # Below 7 MB the body is read and judged on its content (the 4 MB cap is PutEvents' alone).
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_batch(client, app_id, [{"Id": "e1", "Attributes": {"a": ["x" * (5 * 1024 * 1024)]}}])
    assert "Item[0].Attributes.a" in message(info)


# --- RemoveAttributes ----------------------------------------------------------------------------------------


def test_remove_attributes_stops_capture_and_keeps_existing_values(client: Any, app_id: str) -> None:
    put(
        client,
        app_id,
        "e1",
        ChannelType="CUSTOM",
        Attributes={"keep": ["1"], "secret_a": ["old"]},
        Metrics={"score": 1.0, "tmp": 2.0},
        User={"UserId": "u1", "UserAttributes": {"name": ["Ann"], "ssn": ["123"]}},
    )
    removed = client.remove_attributes(
        ApplicationId=app_id,
        AttributeType="endpoint-custom-attributes",
        UpdateAttributesRequest={"Blacklist": ["secret_*"]},
    )
    assert status(removed) == 200
    assert removed["AttributesResource"] == {
        "ApplicationId": app_id,
        "AttributeType": "endpoint-custom-attributes",
        "Attributes": ["secret_*"],
    }
    client.remove_attributes(
        ApplicationId=app_id, AttributeType="endpoint-metric-attributes", UpdateAttributesRequest={"Blacklist": ["tmp"]}
    )
    client.remove_attributes(
        ApplicationId=app_id, AttributeType="endpoint-user-attributes", UpdateAttributesRequest={"Blacklist": ["ssn"]}
    )

    # Existing values stay as they were.
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"keep": ["1"], "secret_a": ["old"]}
    assert endpoint["Metrics"] == {"score": 1.0, "tmp": 2.0}
    assert endpoint["User"]["UserAttributes"] == {"name": ["Ann"], "ssn": ["123"]}

    # Later writes no longer capture them; everything else is captured as usual.
    put(
        client,
        app_id,
        "e1",
        Attributes={"keep": ["2"], "secret_a": ["new"], "secret_b": ["x"]},
        Metrics={"score": 5.0, "tmp": 9.0},
        User={"UserId": "u1", "UserAttributes": {"name": ["Bo"], "ssn": ["999"]}},
    )
    put_batch(client, app_id, [{"Id": "e2", "ChannelType": "CUSTOM", "Attributes": {"secret_c": ["y"], "k": ["z"]}}])
    endpoint = get(client, app_id, "e1")
    assert endpoint["Attributes"] == {"keep": ["2"], "secret_a": ["old"]}
    assert endpoint["Metrics"] == {"score": 5.0, "tmp": 2.0}
    assert endpoint["User"]["UserAttributes"] == {"name": ["Bo"], "ssn": ["123"]}
    assert get(client, app_id, "e2")["Attributes"] == {"k": ["z"]}

    # The blacklist accumulates.
    again = client.remove_attributes(
        ApplicationId=app_id,
        AttributeType="endpoint-custom-attributes",
        UpdateAttributesRequest={"Blacklist": ["keep", "secret_*"]},
    )
    assert again["AttributesResource"]["Attributes"] == ["keep", "secret_*"]
    put(client, app_id, "e1", Attributes={"keep": ["3"]})
    assert get(client, app_id, "e1")["Attributes"]["keep"] == ["2"]


def test_remove_attributes_with_an_unknown_type_is_refused(client: Any, app_id: str) -> None:
    with pytest.raises(client.exceptions.BadRequestException) as info:
        client.remove_attributes(
            ApplicationId=app_id, AttributeType="endpoint-everything", UpdateAttributesRequest={"Blacklist": ["a"]}
        )
    assert "attribute-type" in message(info) and "endpoint-everything" in message(info)


# --- not found -----------------------------------------------------------------------------------------------


def test_unknown_application_is_not_found_for_every_operation(client: Any) -> None:
    missing = "0" * 32
    calls = [
        lambda: put(client, missing, "e1", ChannelType="CUSTOM"),
        lambda: put_batch(client, missing, [email_item("e1")]),
        lambda: get(client, missing, "e1"),
        lambda: client.delete_endpoint(ApplicationId=missing, EndpointId="e1"),
        lambda: client.get_user_endpoints(ApplicationId=missing, UserId="u1"),
        lambda: client.delete_user_endpoints(ApplicationId=missing, UserId="u1"),
        lambda: client.remove_attributes(
            ApplicationId=missing, AttributeType="endpoint-custom-attributes", UpdateAttributesRequest={"Blacklist": []}
        ),
    ]
    for call in calls:
        with pytest.raises(client.exceptions.NotFoundException) as info:
            call()
        assert missing in message(info)


def test_unknown_endpoint_and_user_are_not_found(client: Any, app_id: str) -> None:
    put(client, app_id, "e1", ChannelType="CUSTOM", User={"UserId": "u1"})
    with pytest.raises(client.exceptions.NotFoundException) as info:
        get(client, app_id, "e2")
    assert "e2" in message(info)
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_endpoint(ApplicationId=app_id, EndpointId="e2")
    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.get_user_endpoints(ApplicationId=app_id, UserId="u2")
    assert "u2" in message(info)
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_user_endpoints(ApplicationId=app_id, UserId="u2")
    # Endpoints of one project are invisible from another.
    other = client.create_app(CreateApplicationRequest={"Name": "other"})["ApplicationResponse"]["Id"]
    assert_absent(client, other, "e1")
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_user_endpoints(ApplicationId=other, UserId="u1")


# --- DeleteApp -----------------------------------------------------------------------------------------------


def test_delete_app_removes_its_endpoints_users_and_events(client: Any, server: Any, app_id: str) -> None:
    put(
        client,
        app_id,
        "e1",
        ChannelType="EMAIL",
        Address="a@example.com",
        Attributes={"a": ["1"]},
        User={"UserId": "u1", "UserAttributes": {"plan": ["pro"]}},
    )
    client.remove_attributes(
        ApplicationId=app_id, AttributeType="endpoint-custom-attributes", UpdateAttributesRequest={"Blacklist": ["b"]}
    )
    client.put_events(
        ApplicationId=app_id,
        EventsRequest={
            "BatchItem": {
                "e1": {"Endpoint": {}, "Events": {"ev1": {"EventType": "opened", "Timestamp": "2026-01-01T00:00:00Z"}}}
            }
        },
    )
    before = server.project_row_counts(app_id)
    assert before["endpoints"] == 1 and before["users"] == 1 and before["events"] == 1
    assert before["app_names"] >= 3 and before["attribute_filters"] == 1

    client.delete_app(ApplicationId=app_id)
    assert server.project_row_counts(app_id) == dict.fromkeys(PROJECT_TABLES, 0)
    assert server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 10))) == []
    with pytest.raises(client.exceptions.NotFoundException):
        get(client, app_id, "e1")

    # A new project given the same data starts clean: nothing of the old one shows through.
    new_app = client.create_app(CreateApplicationRequest={"Name": "test project"})["ApplicationResponse"]["Id"]
    assert_absent(client, new_app, "e1")
    with pytest.raises(client.exceptions.NotFoundException):
        user_endpoints(client, new_app, "u1")
    put(
        client,
        new_app,
        "e1",
        ChannelType="EMAIL",
        Address="a@example.com",
        User={"UserId": "u1"},
        Attributes={"b": ["2"]},
    )
    endpoint = get(client, new_app, "e1")
    assert endpoint["User"] == {"UserId": "u1", "UserAttributes": {}}
    assert endpoint["Attributes"] == {"b": ["2"]}  # the old project's blacklist does not apply
    assert endpoint["EndpointStatus"] == "ACTIVE"
