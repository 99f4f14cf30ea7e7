"""PutEvents through boto3 against a running Clarion: Pinpoint's PutEvents semantics and limits
(API Reference, "Events"; "Amazon Pinpoint quotas").

Events are read back from the store itself (`clarion.store.events.recent`), so these tests check what was made
durable, not only what the response claimed. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clarion.events import service as events_service
from clarion.store import events as event_store
from clarion.store.events import EventRow

ACCEPTED = {"StatusCode": 202, "Message": "Accepted"}
T0 = "2026-01-01T10:00:00.123Z"
T0_MS = 1767261600123  # T0 in epoch milliseconds


# --- helpers -------------------------------------------------------------------------------------------------


def event(event_type: str = "custom.click", timestamp: str = T0, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "Timestamp": timestamp, **fields}


def put_events(client: Any, app_id: str, batch: dict[str, dict[str, Any]]) -> dict[str, Any]:
    items = {endpoint_id: {"Endpoint": {}, **item} for endpoint_id, item in batch.items()}
    return client.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": items})


def results(response: dict[str, Any]) -> dict[str, Any]:
    return response["EventsResponse"]["Results"]


def stored(server: Any, app_id: str, endpoint_id: str | None = None) -> dict[str, EventRow]:
    """The app's stored events by event id (endpoint ids are distinct per test unless asked for)."""
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 1000, endpoint_id)))
    return {row.event_id: row for row in rows}


def count(server: Any, app_id: str) -> int:
    return server.run(lambda s: s.db.read(lambda tx: event_store.count(tx, app_id)))


def server_millis(server: Any) -> int:
    moment = datetime.now(UTC) + server.clock.offset
    return int(moment.timestamp() * 1000)


def message(info: pytest.ExceptionInfo[Any]) -> str:
    return info.value.response["Error"]["Message"]


def get_endpoint(client: Any, app_id: str, endpoint_id: str) -> dict[str, Any]:
    return client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint_id)["EndpointResponse"]


# --- responses and endpoint upserts --------------------------------------------------------------------------


def test_put_events_reports_every_endpoint_and_event(client: Any, server: Any, app_id: str) -> None:
    response = put_events(
        client,
        app_id,
        {
            "e1": {"Events": {"a": event(), "b": event("custom.view")}},
            "e2": {"Events": {"c": event()}},
            "e3": {"Events": {}},
        },
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert results(response) == {
        "e1": {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {"a": ACCEPTED, "b": ACCEPTED}},
        "e2": {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {"c": ACCEPTED}},
        "e3": {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {}},
    }
    rows = stored(server, app_id)
    assert sorted(rows) == ["a", "b", "c"]
    assert {(r.event_id, r.endpoint_id) for r in rows.values()} == {("a", "e1"), ("b", "e1"), ("c", "e2")}


def test_endpoint_part_upserts_the_endpoint(client: Any, app_id: str) -> None:
    response = put_events(
        client,
        app_id,
        {
            "e1": {
                "Endpoint": {
                    "ChannelType": "APNS",
                    "Address": "device-token",
                    "Attributes": {"favorite": ["tea"], "level": ["3"]},
                    "Demographic": {"Platform": "iOS", "Make": "Apple"},
                    "User": {"UserId": "u1", "UserAttributes": {"plan": ["pro"]}},
                },
                "Events": {"a": event("_session.start", Session={"Id": "s1", "StartTimestamp": T0})},
            }
        },
    )
    assert results(response)["e1"]["EndpointItemResponse"] == ACCEPTED
    endpoint = get_endpoint(client, app_id, "e1")
    assert endpoint["ChannelType"] == "APNS"
    assert endpoint["Address"] == "device-token"
    assert endpoint["EndpointStatus"] == "ACTIVE"
    assert endpoint["OptOut"] == "NONE"
    assert endpoint["User"] == {"UserId": "u1", "UserAttributes": {"plan": ["pro"]}}
    assert endpoint["RequestId"] == response["ResponseMetadata"]["RequestId"]

    # A later batch updates it like UpdateEndpoint: partially.
    put_events(
        client,
        app_id,
        {
            "e1": {
                "Endpoint": {"Attributes": {"favorite": ["coffee"]}, "Demographic": {"AppVersion": "2.0"}},
                "Events": {},
            }
        },
    )
    endpoint = get_endpoint(client, app_id, "e1")
    assert endpoint["Attributes"] == {"favorite": ["coffee"], "level": ["3"]}
    assert endpoint["Demographic"] == {"Platform": "iOS", "Make": "Apple", "AppVersion": "2.0"}
    assert endpoint["Address"] == "device-token"

    # An empty Endpoint leaves it exactly as it was.
    before = get_endpoint(client, app_id, "e1")
    put_events(client, app_id, {"e1": {"Endpoint": {}, "Events": {"b": event()}}})
    assert get_endpoint(client, app_id, "e1") == before


def test_empty_endpoint_part_creates_no_endpoint(client: Any, server: Any, app_id: str) -> None:
    response = put_events(client, app_id, {"ghost": {"Endpoint": {}, "Events": {"a": event()}}})
    assert results(response)["ghost"] == {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {"a": ACCEPTED}}
    with pytest.raises(client.exceptions.NotFoundException):
        get_endpoint(client, app_id, "ghost")
    assert list(stored(server, app_id)) == ["a"]


# --- what is stored --------------------------------------------------------------------------------------------


def test_session_events_are_stored(client: Any, server: Any, app_id: str) -> None:
    start = event(
        "_session.start",
        "2026-01-01T10:00:00.000Z",
        Session={"Id": "sess-1", "StartTimestamp": "2026-01-01T10:00:00.000Z"},
        AppPackageName="com.example.app",
        AppTitle="Example",
        AppVersionCode="42",
        SdkName="aws-amplify-swift",
        ClientSdkVersion="2.0.0",
    )
    stop = event(
        "_session.stop",
        "2026-01-01T10:01:30.500Z",
        Session={
            "Id": "sess-1",
            "StartTimestamp": "2026-01-01T10:00:00.000Z",
            "StopTimestamp": "2026-01-01T10:01:30.500Z",
            "Duration": 90500,
        },
    )
    before = server_millis(server)
    put_events(client, app_id, {"e1": {"Events": {"start-1": start, "stop-1": stop}}})
    after = server_millis(server)

    rows = stored(server, app_id)
    assert rows["start-1"].event_type == "_session.start"
    assert rows["start-1"].event_at == 1767261600000
    assert rows["stop-1"].event_type == "_session.stop"
    assert rows["stop-1"].event_at == 1767261690500
    for row in rows.values():
        assert row.app_id == app_id
        assert row.endpoint_id == "e1"
        assert row.session_id == "sess-1"
        assert before <= row.arrival_at <= after  # the server's clock, not the client's Timestamp
    assert json.loads(rows["start-1"].doc) == start
    assert json.loads(rows["stop-1"].doc) == stop
    assert json.loads(rows["stop-1"].doc)["Session"]["Duration"] == 90500


def test_custom_event_with_attributes_and_metrics_is_stored(client: Any, server: Any, app_id: str) -> None:
    custom = event(
        "level.completed",
        T0,
        Attributes={"level": "7", "mode": "hard", "empty": ""},
        Metrics={"score": 1234.5, "seconds": 61, "negative": -2},
    )
    put_events(client, app_id, {"player-9": {"Events": {"ev-1": custom}}})
    row = stored(server, app_id)["ev-1"]
    assert (row.endpoint_id, row.event_type, row.event_at, row.session_id) == (
        "player-9",
        "level.completed",
        T0_MS,
        None,
    )
    doc = json.loads(row.doc)
    assert doc["Attributes"] == {"level": "7", "mode": "hard", "empty": ""}
    assert doc["Metrics"] == {"score": 1234.5, "seconds": 61.0, "negative": -2.0}
    assert doc["EventType"] == "level.completed" and doc["Timestamp"] == T0


def test_monetization_event_is_stored(client: Any, server: Any, app_id: str) -> None:
    purchase = event(
        "_monetization.purchase",
        "2026-02-03T04:05:06.789+00:00",
        Attributes={
            "_product_id": "sku-gold-100",
            "_currency": "EUR",
            "_store": "Apple",
            "_transaction_id": "tx-1",
            "_item_price_formatted": "€4.99",
        },
        Metrics={"_item_price": 4.99, "_quantity": 2},
        Session={"Id": "sess-9", "StartTimestamp": "2026-02-03T04:00:00.000Z"},
    )
    put_events(client, app_id, {"buyer": {"Events": {"purchase-1": purchase}}})
    row = stored(server, app_id)["purchase-1"]
    assert row.event_type == "_monetization.purchase"
    assert row.event_at == int(datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC).timestamp() * 1000)
    assert row.session_id == "sess-9"
    doc = json.loads(row.doc)
    assert doc["Attributes"]["_product_id"] == "sku-gold-100"
    assert doc["Attributes"]["_currency"] == "EUR"
    assert doc["Attributes"]["_item_price_formatted"] == "€4.99"
    assert doc["Metrics"] == {"_item_price": 4.99, "_quantity": 2.0}


def test_timestamps_with_offsets_are_stored_as_utc_epoch_millis(client: Any, server: Any, app_id: str) -> None:
    put_events(
        client,
        app_id,
        {
            "e1": {
                "Events": {
                    "utc": event(timestamp="2026-01-01T10:00:00.123Z"),
                    "offset": event(timestamp="2026-01-01T12:00:00.123+02:00"),
                    "naive": event(timestamp="2026-01-01T10:00:00.123"),  # no zone: taken as UTC
                }
            }
        },
    )
    assert {row.event_id: row.event_at for row in stored(server, app_id).values()} == {
        "utc": T0_MS,
        "offset": T0_MS,
        "naive": T0_MS,
    }


# --- limits ----------------------------------------------------------------------------------------------------


def test_more_than_100_events_refuse_the_whole_request(client: Any, server: Any, app_id: str) -> None:
    batch = {
        "e1": {"Endpoint": {"ChannelType": "CUSTOM", "Address": "x"}, "Events": {f"a{n}": event() for n in range(60)}},
        "e2": {"Events": {f"b{n}": event() for n in range(41)}},
    }
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_events(client, app_id, batch)
    assert "101" in message(info) and "100" in message(info)
    assert count(server, app_id) == 0
    with pytest.raises(client.exceptions.NotFoundException):
        get_endpoint(client, app_id, "e1")

    del batch["e2"]["Events"]["b40"]  # exactly 100 is fine
    response = put_events(client, app_id, batch)
    assert all(r == ACCEPTED for item in results(response).values() for r in item["EventsItemResponse"].values())
    assert count(server, app_id) == 100


def test_per_event_limits_reject_only_that_event(client: Any, server: Any, app_id: str) -> None:
    forty = {f"k{n}": "v" for n in range(20)}, {f"m{n}": float(n) for n in range(20)}
    events = {
        "ok": event(),
        "forty-keys": event(Attributes=forty[0], Metrics=forty[1]),
        "forty-one-keys": event(Attributes={**forty[0], "extra": "v"}, Metrics=forty[1]),
        "value-200": event(Attributes={"note": "v" * 200}),
        "value-201": event(Attributes={"note": "v" * 201}),
        "key-50": event(Attributes={"k" * 50: "v"}, Metrics={"m" * 50: 1.0}),
        "attribute-key-51": event(Attributes={"k" * 51: "v"}),
        "metric-key-51": event(Metrics={"m" * 51: 1.0}),
        "bad-timestamp": event(timestamp="yesterday at noon"),
        "bad-session-start": event(Session={"Id": "s1", "StartTimestamp": "not a time"}),
        "bad-session-stop": event(Session={"Id": "s1", "StartTimestamp": T0, "StopTimestamp": "13:99"}),
        "empty-type": event(event_type=""),
        "too-big": event(AppTitle="t" * (1000 * 1024 + 1)),
    }
    response = put_events(client, app_id, {"e1": {"Events": events}})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    outcome = results(response)["e1"]
    assert outcome["EndpointItemResponse"] == ACCEPTED
    answers = outcome["EventsItemResponse"]
    accepted = {"ok", "forty-keys", "value-200", "key-50"}
    assert {event_id for event_id, r in answers.items() if r == ACCEPTED} == accepted
    expected_words = {
        "forty-one-keys": "40",
        "value-201": "Attributes.note",
        "attribute-key-51": "k" * 50,
        "metric-key-51": "m" * 50,
        "bad-timestamp": "Timestamp",
        "bad-session-start": "Session.StartTimestamp",
        "bad-session-stop": "Session.StopTimestamp",
        "empty-type": "EventType",
        "too-big": "too-big",
    }
    assert set(answers) == accepted | set(expected_words)
    for event_id, word in expected_words.items():
        assert answers[event_id]["StatusCode"] == 400, event_id
        assert word in answers[event_id]["Message"], (event_id, answers[event_id]["Message"])
    assert "yesterday at noon" in answers["bad-timestamp"]["Message"]
    assert set(stored(server, app_id)) == accepted


def test_request_over_4_mb_is_payload_too_large(client: Any, server: Any, app_id: str) -> None:
    # Five events of ~900 KB each: every one is under the 1,000 KB event limit, the request is over 4 MB.
    events = {f"big-{n}": event(AppTitle="t" * (900 * 1024)) for n in range(5)}
    with pytest.raises(client.exceptions.PayloadTooLargeException) as info:
        put_events(client, app_id, {"e1": {"Events": events}})
    assert "PutEvents" in message(info) and str(4 * 1024 * 1024) in message(info)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert count(server, app_id) == 0

    # Four of them (~3.6 MB) pass.
    del events["big-4"]
    response = put_events(client, app_id, {"e1": {"Events": events}})
    assert set(results(response)["e1"]["EventsItemResponse"]) == {"big-0", "big-1", "big-2", "big-3"}
    assert count(server, app_id) == 4


# --- per-project caps ------------------------------------------------------------------------------------------


def test_custom_event_type_cap_per_project(client: Any, server: Any, app_id: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_service, "MAX_CUSTOM_EVENT_TYPES", 3)
    first = put_events(client, app_id, {"e1": {"Events": {"a": event("t1"), "b": event("t2"), "c": event("t3")}}})
    assert all(r == ACCEPTED for r in results(first)["e1"]["EventsItemResponse"].values())

    response = put_events(
        client,
        app_id,
        {
            "e1": {
                "Events": {
                    "new-type": event("t4"),
                    "known-type": event("t2"),
                    "standard-type": event("_session.start", Session={"Id": "s", "StartTimestamp": T0}),
                }
            },
            "e2": {"Events": {"another-new": event("t5")}},
        },
    )
    answers = results(response)
    assert answers["e1"]["EventsItemResponse"]["known-type"] == ACCEPTED
    assert answers["e1"]["EventsItemResponse"]["standard-type"] == ACCEPTED  # `_` types are Pinpoint's, not custom
    for refused in (
        answers["e1"]["EventsItemResponse"]["new-type"],
        answers["e2"]["EventsItemResponse"]["another-new"],
    ):
        assert refused["StatusCode"] == 400
        assert "event types" in refused["Message"] and "3" in refused["Message"]
    assert "t4" in answers["e1"]["EventsItemResponse"]["new-type"]["Message"]
    assert set(stored(server, app_id)) == {"a", "b", "c", "known-type", "standard-type"}


def test_attribute_and_metric_key_caps_per_project(client: Any, server: Any, app_id: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_service, "MAX_ATTRIBUTE_KEYS", 2)
    monkeypatch.setattr(events_service, "MAX_METRIC_KEYS", 1)
    put_events(client, app_id, {"e1": {"Events": {"a": event(Attributes={"x": "1", "y": "2"}, Metrics={"m": 1})}}})
    response = put_events(
        client,
        app_id,
        {
            "e1": {
                "Events": {
                    "known": event(Attributes={"y": "3"}, Metrics={"m": 2}),
                    "new-attribute": event(Attributes={"z": "1"}),
                    "new-metric": event(Metrics={"n": 1}),
                }
            }
        },
    )
    answers = results(response)["e1"]["EventsItemResponse"]
    assert answers["known"] == ACCEPTED
    assert answers["new-attribute"]["StatusCode"] == 400 and "event attributes" in answers["new-attribute"]["Message"]
    assert answers["new-metric"]["StatusCode"] == 400 and "event metrics" in answers["new-metric"]["Message"]
    assert set(stored(server, app_id)) == {"a", "known"}


def test_refused_events_do_not_use_up_the_caps(client: Any, server: Any, app_id: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_service, "MAX_CUSTOM_EVENT_TYPES", 1)
    # The invalid event's type must not be registered: the next valid event of another type still fits.
    response = put_events(client, app_id, {"e1": {"Events": {"bad": event("t-bad", timestamp="never")}}})
    assert results(response)["e1"]["EventsItemResponse"]["bad"]["StatusCode"] == 400
    response = put_events(client, app_id, {"e1": {"Events": {"good": event("t-good")}}})
    assert results(response)["e1"]["EventsItemResponse"]["good"] == ACCEPTED
    assert set(stored(server, app_id)) == {"good"}


# --- idempotency, endpoint failures, unknown app ---------------------------------------------------------------


def test_retried_put_events_stores_each_event_once(client: Any, server: Any, app_id: str) -> None:
    batch = {
        "e1": {"Events": {"a": event(), "b": event("custom.view")}},
        "e2": {"Events": {"a": event()}},  # the same event id under another endpoint is another event
    }
    first = put_events(client, app_id, batch)
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 100)))
    arrival = {(r.endpoint_id, r.event_id): r.arrival_at for r in rows}
    server.clock.offset += timedelta(seconds=5)
    second = put_events(client, app_id, batch)
    assert results(second) == results(first)
    rows = server.run(lambda s: s.db.read(lambda tx: event_store.recent(tx, app_id, 100)))
    assert sorted((r.endpoint_id, r.event_id) for r in rows) == [("e1", "a"), ("e1", "b"), ("e2", "a")]
    assert {(r.endpoint_id, r.event_id): r.arrival_at for r in rows} == arrival  # the first copy is kept
    assert count(server, app_id) == 3


def test_invalid_endpoint_part_still_stores_its_events(client: Any, server: Any, app_id: str) -> None:
    response = put_events(
        client,
        app_id,
        {
            "bad-address": {"Endpoint": {"ChannelType": "SMS", "Address": "12345"}, "Events": {"a": event()}},
            "bad-opt-out": {"Endpoint": {"ChannelType": "EMAIL", "OptOut": "MAYBE"}, "Events": {"b": event()}},
            "bad-id-$": {"Endpoint": {"ChannelType": "CUSTOM"}, "Events": {}},
            "good": {"Endpoint": {"ChannelType": "EMAIL", "Address": "g@example.com"}, "Events": {"c": event()}},
        },
    )
    answers = results(response)
    assert answers["bad-address"]["EndpointItemResponse"]["StatusCode"] == 400
    assert "Endpoint.Address" in answers["bad-address"]["EndpointItemResponse"]["Message"]
    assert answers["bad-opt-out"]["EndpointItemResponse"]["StatusCode"] == 400
    assert "Endpoint.OptOut" in answers["bad-opt-out"]["EndpointItemResponse"]["Message"]
    assert answers["bad-id-$"]["EndpointItemResponse"]["StatusCode"] == 400
    assert answers["good"]["EndpointItemResponse"] == ACCEPTED
    assert answers["bad-address"]["EventsItemResponse"] == {"a": ACCEPTED}
    assert answers["bad-opt-out"]["EventsItemResponse"] == {"b": ACCEPTED}
    assert set(stored(server, app_id)) == {"a", "b", "c"}
    for missing in ("bad-address", "bad-opt-out", "bad-id-$"):
        with pytest.raises(client.exceptions.NotFoundException):
            get_endpoint(client, app_id, missing)
    assert get_endpoint(client, app_id, "good")["Address"] == "g@example.com"


def test_endpoint_refused_by_a_store_rule_still_stores_its_events(client: Any, server: Any, app_id: str) -> None:
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": f"u{n}", "ChannelType": "EMAIL", "Address": f"u{n}@example.com", "User": {"UserId": "full"}}
                for n in range(15)
            ]
        },
    )
    response = put_events(
        client,
        app_id,
        {
            "sixteenth": {
                "Endpoint": {"ChannelType": "EMAIL", "Address": "x@example.com", "User": {"UserId": "full"}},
                "Events": {"a": event()},
            },
            "other": {"Endpoint": {"ChannelType": "EMAIL", "Address": "o@example.com"}, "Events": {"b": event()}},
        },
    )
    answers = results(response)
    assert answers["sixteenth"]["EndpointItemResponse"]["StatusCode"] == 400
    assert "full" in answers["sixteenth"]["EndpointItemResponse"]["Message"]
    assert answers["sixteenth"]["EventsItemResponse"] == {"a": ACCEPTED}
    assert answers["other"] == {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {"b": ACCEPTED}}
    assert set(stored(server, app_id)) == {"a", "b"}
    with pytest.raises(client.exceptions.NotFoundException):
        get_endpoint(client, app_id, "sixteenth")
    assert get_endpoint(client, app_id, "other")["Address"] == "o@example.com"


def test_unknown_application_is_not_found(client: Any) -> None:
    missing = "f" * 32
    with pytest.raises(client.exceptions.NotFoundException) as info:
        put_events(client, missing, {"e1": {"Endpoint": {"ChannelType": "CUSTOM"}, "Events": {"a": event()}}})
    assert missing in message(info)


def test_undecodable_endpoint_part_refuses_the_whole_request(client: Any, server: Any, app_id: str) -> None:
    # botocore does not check enum values, so the server sees the bad ChannelType; the body is decoded against
    # the model before anything else, so a value outside the enum fails the request, not only its endpoint.
    with pytest.raises(client.exceptions.BadRequestException) as info:
        put_events(
            client,
            app_id,
            {
                "bad": {"Endpoint": {"ChannelType": "CARRIER_PIGEON"}, "Events": {"a": event()}},
                "good": {"Events": {"b": event()}},
            },
        )
    assert "ChannelType" in message(info) and "CARRIER_PIGEON" in message(info)
    assert count(server, app_id) == 0


def test_events_under_an_invalid_endpoint_id_are_refused(client: Any, server: Any, app_id: str) -> None:
    response = put_events(client, app_id, {"bad$id": {"Endpoint": {}, "Events": {"e1": event()}}})
    outcome = results(response)["bad$id"]
    assert outcome["EndpointItemResponse"]["StatusCode"] == 400
    assert outcome["EventsItemResponse"]["e1"]["StatusCode"] == 400
    assert "$" in outcome["EventsItemResponse"]["e1"]["Message"]
    assert count(server, app_id) == 0


def test_standard_names_do_not_count_against_the_custom_caps(
    client: Any, server: Any, app_id: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(events_service, "MAX_ATTRIBUTE_KEYS", 1)
    monkeypatch.setattr(events_service, "MAX_METRIC_KEYS", 1)
    purchase = event(
        "_monetization.purchase",
        Attributes={"_product_id": "p1", "_currency": "USD", "color": "red"},
        Metrics={"_item_price": 9.5, "_quantity": 2.0, "rating": 4.0},
    )
    response = put_events(client, app_id, {"ep": {"Endpoint": {}, "Events": {"e1": purchase}}})
    assert results(response)["ep"]["EventsItemResponse"]["e1"]["StatusCode"] == 202
