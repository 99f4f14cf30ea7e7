"""Retention on both stores: the prune removes events, messages and change-feed tombstones past their settings and
nothing younger; it keeps events an event stream has not shipped and the messages of live campaigns; the replica
drops the same events; KPIs cannot reach back past the events kept; and PutEvents goes on, every event accepted and
kept, while a prune of thousands of old events runs in small batches.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import RunningServer, running

from clarion.analytics.config import RetentionSettings
from clarion.clock import epoch_millis, iso_millis
from clarion.config import Settings
from clarion.store import events as event_store
from clarion.store import kpi_rollup
from clarion.store import messages as message_store
from clarion.store.events import EventRow
from clarion.store.messages import MessageRow
from clarion.streams.config import StreamSettings

OLD = datetime.now(UTC) - timedelta(days=100)
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/kept"


@pytest.fixture
def retained(migrated_settings: Settings) -> Iterator[RunningServer]:
    # The background pass is pushed far off: the test runs passes itself. No shipper: a stream's cursor stays put.
    values = migrated_settings.model_copy(
        update={
            "retention": RetentionSettings(interval_seconds=3600, batch_rows=100, pause_seconds=0.005),
            "streams": StreamSettings(
                sinks=[{"type": "file", "arn": "arn:aws:kinesis:*", "path": "{stream_name}.jsonl"}], shipper=False
            ),
        }
    )
    with running(values) as server:
        yield server


def old_events(app_id: str, count: int, at: datetime = OLD) -> list[EventRow]:
    millis = epoch_millis(at)
    doc = json.dumps({"EventType": "level.done", "Timestamp": iso_millis(at)})
    return [
        EventRow(app_id, "dev", f"old-{uuid.uuid4().hex}", "level.done", millis, millis, None, doc)
        for _ in range(count)
    ]


def message(
    app_id: str, created: datetime, campaign_id: str | None = None, journey_id: str | None = None
) -> MessageRow:
    return MessageRow(
        str(uuid.uuid4()), app_id, None, "dev", None, "EMAIL", "a@example.com", None, campaign_id, None, journey_id,
        "SUCCESSFUL", 200, "ok", iso_millis(created), "{}",
    )  # fmt: skip


def write(server: RunningServer, work: Any) -> Any:
    return server.run(lambda services: services.db.write(work))


def read(server: RunningServer, work: Any) -> Any:
    return server.run(lambda services: services.db.read(work))


def prune(server: RunningServer) -> dict[str, int]:
    return server.run(lambda services: services.retention.prune_once())


def put_events(client: Any, app_id: str, prefix: str, count: int) -> None:
    now = iso_millis(datetime.now(UTC))
    events = {f"{prefix}-{n}": {"EventType": "level.done", "Timestamp": now} for n in range(count)}
    response = client.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {"dev": {"Endpoint": {}, "Events": events}}}
    )
    items = response["EventsResponse"]["Results"]["dev"]["EventsItemResponse"]
    assert all(item["StatusCode"] == 202 for item in items.values())


def test_prune_keeps_what_it_must_and_kpis_stop_at_retention(retained: RunningServer) -> None:
    client = retained.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "kept"})["ApplicationResponse"]["Id"]
    segment = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})["SegmentResponse"]
    live = client.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            "Name": "live",
            "SegmentId": segment["Id"],
            "Schedule": {"StartTime": "IMMEDIATE"},
            "MessageConfiguration": {"SMSMessage": {"Body": "hi"}},
        },
    )["CampaignResponse"]["Id"]
    journey = client.create_journey(ApplicationId=app_id, WriteJourneyRequest={"Name": "live"})["JourneyResponse"]["Id"]
    put_events(client, app_id, "new", 3)
    write(retained, lambda tx: event_store.append(tx, old_events(app_id, 150)))
    # The replica has the old events before the prune.
    retained.run(lambda services: services.segments_engine.sync.sync())
    messages = [
        message(app_id, OLD),
        message(app_id, OLD, campaign_id="deleted-campaign"),
        message(app_id, OLD, campaign_id=live),
        message(app_id, datetime.now(UTC)),
        message(app_id, OLD, journey_id="deleted-journey"),
        message(app_id, OLD, journey_id=journey),
    ]
    write(retained, lambda tx: message_store.insert(tx, messages))
    client.update_endpoint(ApplicationId=app_id, EndpointId="gone", EndpointRequest={"Address": "g@example.com"})
    client.delete_endpoint(ApplicationId=app_id, EndpointId="gone")
    write(retained, lambda tx: tx.execute("UPDATE change_tombstones SET recorded_at = 1"))
    # A stream put now holds back the old events written after it, until they are shipped.
    client.put_event_stream(
        ApplicationId=app_id,
        WriteEventStream={"DestinationStreamArn": STREAM, "RoleArn": "arn:aws:iam::123456789012:role/r"},
    )
    unshipped = old_events(app_id, 5)
    write(retained, lambda tx: event_store.append(tx, unshipped))

    removed = prune(retained)
    assert removed == {"events": 150, "messages": 3, "tombstones": 1}

    def left(tx: Any) -> dict[str, Any]:
        return {
            "events": sorted(row[0] for row in tx.fetchall("SELECT event_id FROM events WHERE app_id = ?", (app_id,))),
            "messages": {row.message_id for row in message_store.recent(tx, app_id, 100)},
            "tombstones": tx.scalar("SELECT count(*) FROM change_tombstones"),
            "pruned": tx.scalar("SELECT seq FROM change_feed WHERE name = 'pruned'"),
        }

    after = read(retained, left)
    assert after["events"] == sorted(["new-0", "new-1", "new-2", *(row.event_id for row in unshipped)])
    assert after["messages"] == {messages[2].message_id, messages[3].message_id, messages[5].message_id}
    assert after["tombstones"] == 0 and after["pruned"] > 0
    counts = retained.run(lambda services: services.segments_engine.sync.sync())
    assert counts.position >= after["pruned"]
    replica_events = retained.run(
        lambda services: services.segments_engine._query(
            lambda con: con.execute("SELECT count(*) FROM events WHERE app_id = ?", [app_id]).fetchone()[0]
        )
    )
    assert replica_events == 3 + 5  # the replica dropped the same events (the unshipped ones arrived after it)

    # Once the stream has shipped them, the held events go too.
    def shipped(tx: Any) -> None:
        top = tx.fetchone("SELECT max(change_seq), max(seq) FROM events WHERE app_id = ?", (app_id,))
        tx.execute("UPDATE event_streams SET cursor_change = ?, cursor_seq = ? WHERE app_id = ?", (*top, app_id))

    write(retained, shipped)
    assert prune(retained)["events"] == 5
    assert prune(retained) == {"events": 0, "messages": 0, "tombstones": 0}

    # KPIs cannot start before the events kept (90 days by default, as Pinpoint).
    now = datetime.now(UTC)
    with pytest.raises(ClientError) as raised:
        client.get_application_date_range_kpi(
            ApplicationId=app_id,
            KpiName="txn-emails-sent",
            StartTime=now - timedelta(days=95),
            EndTime=now - timedelta(days=70),
        )
    assert raised.value.response["Error"]["Code"] == "BadRequestException"
    assert "90 days" in raised.value.response["Error"]["Message"]
    registry = retained.services.metrics.registry
    assert registry.get_sample_value("clarion_retention_pruned_total", {"kind": "events"}) == 155
    assert registry.get_sample_value("clarion_retention_pruned_total", {"kind": "messages"}) == 3


def test_kpis_follow_a_shorter_retention(settings: Settings) -> None:
    shorter = settings.model_copy(update={"retention": RetentionSettings(events_days=30, interval_seconds=3600)})
    with running(shorter) as server:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "short"})["ApplicationResponse"]["Id"]
        now = datetime.now(UTC)
        with pytest.raises(ClientError) as raised:
            client.get_application_date_range_kpi(
                ApplicationId=app_id,
                KpiName="txn-sms-sent",
                StartTime=now - timedelta(days=45),
                EndTime=now - timedelta(days=25),
            )
        assert "30 days" in raised.value.response["Error"]["Message"]
        answer = client.get_application_date_range_kpi(
            ApplicationId=app_id, KpiName="txn-sms-sent", StartTime=now - timedelta(days=29), EndTime=now
        )
        assert answer["ApplicationDateRangeKpiResponse"]["KpiResult"] == {"Rows": []}


def test_prune_under_concurrent_writes(retained: RunningServer) -> None:
    client = retained.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "busy"})["ApplicationResponse"]["Id"]
    write(retained, lambda tx: event_store.append(tx, old_events(app_id, 5000)))
    done_at: list[float] = []
    failures: list[BaseException] = []
    writing, stop = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            own = retained.client()  # a client of this thread's own
            while not stop.is_set() or len(done_at) < 3:
                put_events(own, app_id, f"w{len(done_at)}", 20)
                done_at.append(time.monotonic())
                writing.set()
        except BaseException as error:  # reported below
            failures.append(error)
            writing.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(timeout=30)
    started = time.monotonic()
    removed = prune(retained)
    finished = time.monotonic()
    stop.set()
    thread.join(timeout=60)
    assert not failures
    assert removed["events"] == 5000
    # Writes committed while the prune was under way: it never held the store for its whole run.
    assert any(started < at < finished for at in done_at)
    kept = read(retained, lambda tx: event_store.count(tx, app_id))
    assert kept == len(done_at) * 20


def test_the_retention_pass_merges_the_kpi_rollups(retained: RunningServer) -> None:
    """The pass folds each ended hour's KPI rollup rows appended by separate inserts into one row per key and counts
    the rows folded (PostgreSQL); SQLite's rollups stay empty, with nothing to merge. (That KPIs answer the same
    from merged rows, under concurrent inserts, is tests/test_kpis.py's.)"""
    client = retained.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "merged"})["ApplicationResponse"]["Id"]
    at = datetime.now(UTC) - timedelta(hours=3)
    millis = epoch_millis(at)
    attributes = {"campaign_id": "c1", "delivery_status": "SUCCESSFUL", "channel_type": "EMAIL"}
    doc = json.dumps({"EventType": "_campaign.send", "Timestamp": iso_millis(at), "Attributes": attributes})
    for n in range(3):  # three inserts: three appended rows of the same hour and key
        row = EventRow(app_id, f"ep-{n}", f"send-{n}", "_campaign.send", millis, millis, None, doc)
        write(retained, lambda tx, row=row: event_store.append(tx, [row]))

    def rows(tx: Any) -> tuple[int, int]:
        return tuple(int(tx.scalar(f"SELECT count(*) FROM {t} WHERE app_id = ?", (app_id,))) for t in kpi_rollup.TABLES)

    before = read(retained, rows)
    folded = retained.run(lambda services: services.retention.merge_rollups())
    postgres = retained.services.db.dialect.name == "postgresql"
    assert before == ((3, 3) if postgres else (0, 0))
    assert read(retained, rows) == ((1, 3) if postgres else (0, 0))  # three recipients, one send count
    assert folded == (2 if postgres else 0)
    merged = retained.services.metrics.registry.get_sample_value("clarion_kpi_rollup_rows_merged_total")
    assert merged == (2 if postgres else 0)
