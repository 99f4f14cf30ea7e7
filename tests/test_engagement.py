"""Engagement scores on both stores and both segment engines: known app events give exact recency, frequency,
monetary and score values for endpoints and users (ClarionGetEngagement), the ClarionEngagement dimension selects by
them, new events move them, and bad bounds are refused naming the field. The property tests in
tests/test_segment_engine.py and tests/test_segment_duckdb.py hold both engines to the reference oracle."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import RunningServer

from clarion.config import Settings
from clarion.store import events as event_store
from clarion.store.events import EventRow


@pytest.fixture(params=["store", "duckdb"])
def server(settings: Settings, request: pytest.FixtureRequest) -> Any:
    analytics = settings.analytics.model_copy(update={"segment_engine": request.param})
    with RunningServer(settings.model_copy(update={"analytics": analytics})) as running:
        yield running


def put(client: Any, app_id: str, endpoint_id: str, events: list[tuple[str, datetime, dict[str, float]]]) -> None:
    items = {
        f"e{n}": {"EventType": kind, "Timestamp": at.isoformat(), **({"Metrics": metrics} if metrics else {})}
        for n, (kind, at, metrics) in enumerate(events)
    }
    response = client.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {endpoint_id: {"Endpoint": {}, "Events": items}}}
    )
    results = response["EventsResponse"]["Results"][endpoint_id]["EventsItemResponse"]
    assert all(item["StatusCode"] == 202 for item in results.values()), results


def engagement_of(server: RunningServer, app_id: str, query: str) -> tuple[int, dict[str, Any]]:
    return server.signed_request("GET", f"/v1/apps/{app_id}/clarion/engagement?{query}", {})


def members(server: RunningServer, app_id: str, condition: dict[str, Any]) -> set[str]:
    status, preview = server.signed_request(
        "POST",
        f"/v1/apps/{app_id}/clarion/segment-preview",
        {"Definition": {"Dimensions": {"ClarionEngagement": condition}}, "SampleSize": 100},
    )
    assert status == 200, preview
    return set(preview["Sample"])


def test_scores_from_known_events_select_segments_and_move_with_new_events(server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": "Buyer", "ChannelType": "EMAIL", "Address": "b@example.com", "User": {"UserId": "u1"}},
                {"Id": "lapsed", "ChannelType": "EMAIL", "Address": "l@example.com", "User": {"UserId": "u1"}},
                {"Id": "mail-only", "ChannelType": "EMAIL", "Address": "m@example.com"},
                {"Id": "silent", "ChannelType": "EMAIL", "Address": "s@example.com"},
            ]
        },
    )
    now = server.clock.now()
    # Buyer: 12 app events, the latest 2 hours ago, two purchases worth 2 x 30 + 5 = 65.
    buys = [
        ("_monetization.purchase", now - timedelta(hours=2), {"_item_price": 30.0, "_quantity": 2.0}),
        ("_monetization.purchase", now - timedelta(days=3), {"_item_price": 5.0}),
    ]
    sessions = [("_session.start", now - timedelta(days=n), {}) for n in range(1, 11)]
    put(client, app_id, "buyer", buys + sessions)  # matched to the endpoint whatever the case of its id
    put(client, app_id, "lapsed", [("level.done", now - timedelta(days=40), {}) for _ in range(3)])
    # Events Clarion records about its own messages are not engagement, even when an SDK sends them.
    put(client, app_id, "mail-only", [("_email.open", now - timedelta(hours=1), {})])

    assert engagement_of(server, app_id, "endpoint-id=Buyer") == (
        200,
        {
            "EndpointId": "Buyer",
            "Endpoints": 1,
            "LastActiveDate": (now - timedelta(hours=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Events": 12,
            "Revenue": 65.0,
            "Recency": 5,  # within a day
            "Frequency": 3,  # at least 10 app events
            "Monetary": 3,  # at least 50
            "Score": 11,
        },
    )
    _, lapsed = engagement_of(server, app_id, "endpoint-id=lapsed")
    assert (lapsed["Recency"], lapsed["Frequency"], lapsed["Monetary"], lapsed["Score"]) == (2, 2, 0, 4)
    _, mail_only = engagement_of(server, app_id, "endpoint-id=mail-only")
    assert (mail_only["Events"], mail_only["Score"], "LastActiveDate" in mail_only) == (0, 0, False)
    _, user = engagement_of(server, app_id, "user-id=u1")
    assert {k: user[k] for k in ("UserId", "Endpoints", "Events", "Revenue", "Score")} == {
        "UserId": "u1",
        "Endpoints": 2,
        "Events": 15,
        "Revenue": 65.0,
        "Score": 11,  # recency of the user's latest, frequency 15 (3), monetary 65 (3)
    }

    assert members(server, app_id, {"Score": {"Minimum": 1}}) == {"Buyer", "lapsed"}
    assert members(server, app_id, {"Recency": {"Maximum": 2}}) == {"lapsed", "mail-only", "silent"}
    assert members(server, app_id, {"Monetary": {"Minimum": 3}, "Frequency": {"Minimum": 3, "Maximum": 5}}) == {"Buyer"}
    assert members(server, app_id, {"Score": {"Minimum": 0, "Maximum": 0}}) == {"mail-only", "silent"}
    # Measured for the user, lapsed shares Buyer's activity; endpoints without a user are measured alone.
    assert members(server, app_id, {"Score": {"Minimum": 10}}) == {"Buyer"}
    assert members(server, app_id, {"Of": "USER", "Score": {"Minimum": 10}}) == {"Buyer", "lapsed"}
    assert members(server, app_id, {"Of": "USER", "Score": {"Maximum": 0}}) == {"mail-only", "silent"}

    # A purchase today: lapsed is recent again, and has revenue.
    put(client, app_id, "LAPSED", [("_monetization.purchase", now, {"_item_price": 9.5})])
    _, lapsed = engagement_of(server, app_id, "endpoint-id=lapsed")
    assert (lapsed["Events"], lapsed["Revenue"], lapsed["Score"]) == (4, 9.5, 5 + 2 + 1)
    assert members(server, app_id, {"Recency": {"Minimum": 5}}) == {"Buyer", "lapsed"}


def test_bad_requests_name_the_field(server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    refusals = [
        ({"Score": {"Minimum": 16}}, "Dimensions.ClarionEngagement.Score.Minimum must be between 0 and 15, not 16"),
        ({"Recency": {"Minimum": 4, "Maximum": 2}}, "Dimensions.ClarionEngagement.Recency.Minimum (4) must not"),
        ({}, "Dimensions.ClarionEngagement must name at least one of Score"),
    ]
    for condition, message in refusals:
        status, answer = server.signed_request(
            "POST", f"/v1/apps/{app_id}/segments", {"Name": "x", "Dimensions": {"ClarionEngagement": condition}}
        )
        assert (status, answer["__type"]) == (400, "BadRequestException") and message in answer["Message"]
    status, answer = server.signed_request(
        "POST", f"/v1/apps/{app_id}/segments", {"Name": "x", "Dimensions": {"ClarionEngagement": {"Loyalty": {}}}}
    )
    assert status == 400 and "Loyalty" in answer["Message"]
    assert engagement_of(server, app_id, "endpoint-id=nobody")[0] == 404
    assert engagement_of(server, app_id, "user-id=nobody")[0] == 404
    status, answer = engagement_of(server, app_id, "endpoint-id=a&user-id=b")
    assert status == 400 and "exactly one" in answer["Message"]


def test_events_past_retention_leave_the_scores_in_both_engines(server: RunningServer) -> None:
    """What the prune removes stops counting: the replica works its running totals out again from what it keeps."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    client.update_endpoint(ApplicationId=app_id, EndpointId="p", EndpointRequest={"ChannelType": "GCM", "Address": "t"})
    now = server.clock.now()
    put(client, app_id, "p", [("level.done", now - timedelta(days=2), {})])
    # Two purchases that happened and arrived 120 days ago, as the store holds them.
    at = int((now - timedelta(days=120)).timestamp() * 1000)
    doc = json.dumps({"EventType": "_monetization.purchase", "Metrics": {"_item_price": 600.0}})
    old = [EventRow(app_id, "p", f"old-{n}", "_monetization.purchase", at, at, None, doc) for n in range(2)]
    server.run(lambda services: services.db.write(lambda tx: event_store.append(tx, old)))
    _, before = engagement_of(server, app_id, "endpoint-id=p")
    assert (before["Events"], before["Revenue"], before["Monetary"]) == (3, 1200.0, 5)
    server.run(lambda services: services.retention.prune_once())
    _, after = engagement_of(server, app_id, "endpoint-id=p")
    assert (after["Events"], after["Revenue"], after["Recency"], after["Monetary"]) == (1, 0.0, 4, 0)
    assert members(server, app_id, {"Monetary": {"Minimum": 1}}) == set()
