"""The console's audience operations on both stores: ClarionListEndpoints pages a project's endpoints and finds them
by the start of an id, address or user id, or by attribute; ClarionListProjectUsers pages its users;
ClarionGetTimeline merges a person's events and messages newest first, filtered or not, and its pages neither
repeat nor skip entries, even at one shared millisecond."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from conftest import RunningServer

from clarion.store import messages as message_store
from clarion.store.messages import MessageRow

ENDPOINTS = [
    {
        "Id": "Ana-Phone",
        "ChannelType": "SMS",
        "Address": "+821012345678",
        "Attributes": {"plan": ["gold"]},
        "User": {"UserId": "ana"},
    },
    {"Id": "ana-mail", "ChannelType": "EMAIL", "Address": "ana@example.com", "User": {"UserId": "ana"}},
    {
        "Id": "bo",
        "ChannelType": "EMAIL",
        "Address": "bo@example.com",
        "User": {"UserId": "bo", "UserAttributes": {"tier": ["vip"]}},
    },
]


def get(server: RunningServer, app_id: str, what: str, **query: str) -> tuple[int, dict[str, Any]]:
    return server.signed_request("GET", f"/v1/apps/{app_id}/clarion/{what}?{urlencode(query, quote_via=quote)}", {})


def found(server: RunningServer, app_id: str, search: str) -> list[str]:
    status, answer = get(server, app_id, "endpoints", search=search)
    assert status == 200, answer
    return [item["Id"] for item in answer["Item"]]


def test_endpoints_page_in_id_order_and_are_found_by_id_address_user_or_attribute(
    server: RunningServer, client: Any, app_id: str
) -> None:
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": ENDPOINTS})
    status, first = get(server, app_id, "endpoints", **{"page-size": "2"})
    assert status == 200 and [item["Id"] for item in first["Item"]] == ["ana-mail", "Ana-Phone"]
    assert first["Item"][1] == {
        "Id": "Ana-Phone",
        "ChannelType": "SMS",
        "Address": "+821012345678",
        "EndpointStatus": "ACTIVE",
        "OptOut": "NONE",
        "UserId": "ana",
        "CreationDate": first["Item"][1]["CreationDate"],
    }
    status, rest = get(server, app_id, "endpoints", **{"page-size": "2", "token": first["NextToken"]})
    assert status == 200 and [item["Id"] for item in rest["Item"]] == ["bo"] and "NextToken" not in rest

    assert found(server, app_id, "ANA-PHONE") == ["Ana-Phone"]  # ids are case-insensitive
    assert found(server, app_id, "ana@example.com") == ["ana-mail"]
    assert found(server, app_id, " ana ") == ["ana-mail", "Ana-Phone"]
    assert found(server, app_id, "plan=gold") == ["Ana-Phone"]
    assert found(server, app_id, "tier = vip") == ["bo"]
    assert found(server, app_id, "nobody@example.com") == []
    # A search is a prefix of the id (any case), the address or the user id, nothing in between.
    assert found(server, app_id, "AN") == ["ana-mail", "Ana-Phone"]
    assert found(server, app_id, "ana-m") == ["ana-mail"]  # not Ana-Phone, though a collation may skip the dash
    assert found(server, app_id, "+8210") == ["Ana-Phone"]
    assert found(server, app_id, "bo@ex") == ["bo"]
    assert found(server, app_id, "example.com") == []
    status, prefixed = get(server, app_id, "endpoints", search="a", **{"page-size": "1"})
    assert [item["Id"] for item in prefixed["Item"]] == ["ana-mail"]
    status, rest = get(server, app_id, "endpoints", search="a", **{"page-size": "1", "token": prefixed["NextToken"]})
    assert [item["Id"] for item in rest["Item"]] == ["Ana-Phone"] and "NextToken" not in rest

    status, users = get(server, app_id, "users", **{"page-size": "1"})
    assert status == 200 and users["Item"] == [{"UserId": "ana", "Endpoints": 2}], users
    status, users = get(server, app_id, "users", **{"page-size": "1", "token": users["NextToken"]})
    assert users["Item"] == [{"UserId": "bo", "Endpoints": 1}] and "NextToken" not in users
    assert get(server, app_id, "users", search="b")[1]["Item"] == [{"UserId": "bo", "Endpoints": 1}]
    assert get(server, app_id, "users", search="Ana")[1]["Item"] == []  # user ids keep their case

    status, refused = get(server, app_id, "endpoints", search="plan=")
    assert status == 400 and "name=value" in refused["Message"]
    status, refused = get(server, app_id, "endpoints", token="not-a-token")
    assert status == 400 and "page token" in refused["Message"]
    assert get(server, "nope", "endpoints")[0] == 404


def message(app_id: str, message_id: str, endpoint_id: str, at: str, status: str) -> MessageRow:
    return MessageRow(
        message_id, app_id, None, endpoint_id, "ana", "EMAIL", "ana@example.com", None, "camp-1", None, None,
        status, 200 if status == "SUCCESSFUL" else 500, "", at, "{}",
    )  # fmt: skip


def test_a_persons_timeline_merges_events_and_messages_newest_first_across_pages(
    server: RunningServer, client: Any, app_id: str
) -> None:
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": ENDPOINTS})
    # Two events at one millisecond, so a page boundary falls inside them.
    events = {
        "Ana-Phone": {"p1": ("app.open", "2026-03-01T10:00:00.000Z"), "p2": ("app.open", "2026-03-01T10:00:00.000Z")},
        "ana-mail": {"m1": ("_email.open", "2026-03-02T09:00:00.000Z")},
        "bo": {"b1": ("app.open", "2026-03-03T00:00:00.000Z")},
    }
    client.put_events(
        ApplicationId=app_id,
        EventsRequest={
            "BatchItem": {
                endpoint: {
                    "Endpoint": {},
                    "Events": {
                        key: {"EventType": kind, "Timestamp": at, "Attributes": {"message_id": "m-1"}}
                        for key, (kind, at) in items.items()
                    },
                }
                for endpoint, items in events.items()
            }
        },
    )
    rows = [
        message(app_id, "m-1", "ana-mail", "2026-03-02T08:59:00.000Z", "SUCCESSFUL"),
        message(app_id, "m-2", "ana-mail", "2026-03-01T10:00:00.000Z", "PERMANENT_FAILURE"),
    ]
    server.run(lambda services: services.db.write(lambda tx: message_store.insert(tx, rows)))

    status, whole = get(server, app_id, "timeline", **{"user-id": "ana"})
    assert status == 200, whole
    assert [(e["Kind"], e["Date"], e.get("EventType") or e["DeliveryStatus"]) for e in whole["Item"]] == [
        ("EVENT", "2026-03-02T09:00:00.000Z", "_email.open"),
        ("MESSAGE", "2026-03-02T08:59:00.000Z", "SUCCESSFUL"),
        ("MESSAGE", "2026-03-01T10:00:00.000Z", "PERMANENT_FAILURE"),
        ("EVENT", "2026-03-01T10:00:00.000Z", "app.open"),
        ("EVENT", "2026-03-01T10:00:00.000Z", "app.open"),
    ]
    assert whole["Item"][1] == {
        "Kind": "MESSAGE",
        "Date": "2026-03-02T08:59:00.000Z",
        "EndpointId": "ana-mail",
        "MessageId": "m-1",
        "Channel": "EMAIL",
        "Address": "ana@example.com",
        "DeliveryStatus": "SUCCESSFUL",
        "StatusMessage": "",
        "CampaignId": "camp-1",
    }
    assert whole["Item"][0]["Attributes"] == {"message_id": "m-1"} and "NextToken" not in whole

    paged, token = [], None
    while True:
        query = {"user-id": "ana", "page-size": "1", **({"token": token} if token else {})}
        status, page = get(server, app_id, "timeline", **query)
        assert status == 200 and len(page["Item"]) == 1, page
        paged += page["Item"]
        token = page.get("NextToken")
        if token is None:
            break
    assert paged == whole["Item"]

    status, endpoint = get(server, app_id, "timeline", **{"endpoint-id": "ANA-PHONE"})
    assert status == 200 and [e["EndpointId"] for e in endpoint["Item"]] == ["Ana-Phone", "Ana-Phone"]
    status, refused = get(server, app_id, "timeline")
    assert status == 400 and "endpoint-id" in refused["Message"]
    status, missing = get(server, app_id, "timeline", **{"user-id": "nobody"})
    assert status == 404 and "nobody" in missing["Message"]

    def shown(**query: str) -> list[tuple[str, str]]:
        status, answer = get(server, app_id, "timeline", **{"user-id": "ana", **query})
        assert status == 200, answer
        return [(e["Date"], e.get("EventType") or e["MessageId"]) for e in answer["Item"]]

    assert shown(kind="MESSAGE") == [("2026-03-02T08:59:00.000Z", "m-1"), ("2026-03-01T10:00:00.000Z", "m-2")]
    assert shown(kind="EVENT", **{"event-type": "app.open"}) == [("2026-03-01T10:00:00.000Z", "app.open")] * 2
    assert shown(**{"event-type": "_email.open"}) == [("2026-03-02T09:00:00.000Z", "_email.open")]
    assert shown(**{"start-time": "2026-03-02T00:00:00Z", "end-time": "2026-03-02T08:59:30Z"}) == [
        ("2026-03-02T08:59:00.000Z", "m-1")
    ]
    assert len(shown(**{"end-time": "2026-03-01T23:59:59.999Z"})) == 3
    # A window's pages neither repeat nor skip, here across the two events at one millisecond.
    window = {"user-id": "ana", "kind": "EVENT", "end-time": "2026-03-01T12:00:00Z", "page-size": "1"}
    one = get(server, app_id, "timeline", **window)[1]
    two = get(server, app_id, "timeline", **window, token=one["NextToken"])[1]
    assert [e["Date"] for e in one["Item"] + two["Item"]] == ["2026-03-01T10:00:00.000Z"] * 2
    assert "NextToken" not in two
    for query, why in (
        ({"kind": "SMS"}, "kind must be EVENT or MESSAGE"),
        ({"kind": "MESSAGE", "event-type": "app.open"}, "event-type picks events"),
        ({"start-time": "2026-03-02T00:00:00Z", "end-time": "2026-03-01T00:00:00Z"}, "start-time must not be after"),
        ({"start-time": "yesterday"}, "start-time is not an ISO-8601 time"),
    ):
        status, refused = get(server, app_id, "timeline", **{"user-id": "ana", **query})
        assert status == 400 and why in refused["Message"], refused
