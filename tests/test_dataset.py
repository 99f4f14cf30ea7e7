"""The who/when/what dataset on both stores: known people, events, messages and outcomes come out of
`clarion analytics export` as Parquet partitioned by project and day and are read back with DuckDB exactly; the
analytics_* views say the same in the store; exporting again replaces rather than duplicates; the scheduled export
runs once a day through the work queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import RunningServer

from clarion.analytics.config import AnalyticsSettings
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import ProviderReport
from clarion.config import Settings
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker

DAY_ONE, DAY_TWO = "2026-11-20", "2026-11-21"


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Any:
    tuned = settings.model_copy(
        update={
            "delivery": DeliverySettings(dry_run=True),
            "queue": QueueSettings(workers=0),
            "analytics": AnalyticsSettings(export_dir=str(tmp_path / "scheduled"), export_hour=0, export_days=2),
        }
    )
    with RunningServer(tuned) as running:
        yield running


def traffic(server: RunningServer) -> tuple[str, str]:
    """Two endpoints of one user, four app events over two days, an email and what happened to it."""
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    client.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {
                    "Id": "phone-1",
                    "ChannelType": "GCM",
                    "Address": "token-1",
                    "Demographic": {"Platform": "android"},
                    "Location": {"Country": "DE"},
                    "Attributes": {"tier": ["gold"]},
                    "User": {"UserId": "u1", "UserAttributes": {"plan": ["pro"]}},
                },
                {"Id": "mail-1", "ChannelType": "EMAIL", "Address": "ana@example.com", "User": {"UserId": "u1"}},
            ]
        },
    )
    events = {
        "a": {"EventType": "_session.start", "Timestamp": f"{DAY_ONE}T10:00:00Z"},
        "b": {"EventType": "level.done", "Timestamp": f"{DAY_ONE}T00:00:00Z", "Attributes": {"level": "3"}},
        "c": {"EventType": "level.done", "Timestamp": f"{DAY_TWO}T23:59:59.999Z"},
        "d": {
            "EventType": "_monetization.purchase",
            "Timestamp": f"{DAY_TWO}T12:00:00Z",
            "Metrics": {"_item_price": 9.5, "_quantity": 2},
        },
    }
    client.put_events(
        ApplicationId=app_id, EventsRequest={"BatchItem": {"phone-1": {"Endpoint": {}, "Events": events}}}
    )
    sent = client.send_messages(
        ApplicationId=app_id,
        MessageRequest={
            "Endpoints": {"mail-1": {}},
            "MessageConfiguration": {
                "EmailMessage": {
                    "FromAddress": "shop@example.com",
                    "SimpleEmail": {"Subject": {"Data": "Hi"}, "TextPart": {"Data": "Hello"}},
                }
            },
        },
    )["MessageResponse"]["EndpointResult"]["mail-1"]["MessageId"]
    server.run(lambda services: services.record_outcomes([ProviderReport("_email.open", "EMAIL", message_id=sent)]))
    return app_id, sent


def read(folder: Path, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            f"SELECT {columns} FROM read_parquet('{folder}/{table}/*/*/*.parquet', hive_partitioning = true) "
            f"ORDER BY {order}"
        ).fetchall()


def export_cli(server: RunningServer, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    settings = server.settings
    store = ["--database-url", settings.database_url] if settings.database_url else []
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "clarion",
            "analytics",
            "export",
            str(folder),
            "--data-dir",
            str(settings.data_dir),
            *store,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_export_reads_back_with_duckdb_and_matches_the_views(server: RunningServer, tmp_path: Path) -> None:
    app_id, message_id = traffic(server)
    today = datetime.now(UTC).date().isoformat()
    folder = tmp_path / "dataset"
    exported = export_cli(server, folder, "--from", DAY_ONE, "--to", today)
    assert exported.returncode == 0, exported.stderr
    assert "events" in exported.stdout and "Parquet files" in exported.stdout

    columns = "app_id, day::VARCHAR, event_type, endpoint_id, strftime(event_at, '%Y-%m-%dT%H:%M:%S.%g'), event_at_ms"
    # JSON columns are compared parsed: PostgreSQL writes jsonb's spacing, SQLite the text as stored.
    rows = read(folder, "events", f"{columns}, attributes, metrics", "event_at_ms, event_type")
    events = [(*row[:6], json.loads(row[6]), json.loads(row[7])) for row in rows]
    assert events[:4] == [
        (app_id, DAY_ONE, "level.done", "phone-1", f"{DAY_ONE}T00:00:00.000", 1795132800000, {"level": "3"}, {}),
        (app_id, DAY_ONE, "_session.start", "phone-1", f"{DAY_ONE}T10:00:00.000", 1795168800000, {}, {}),
        (
            app_id, DAY_TWO, "_monetization.purchase", "phone-1", f"{DAY_TWO}T12:00:00.000", 1795262400000, {},
            {"_item_price": 9.5, "_quantity": 2},
        ),
        (app_id, DAY_TWO, "level.done", "phone-1", f"{DAY_TWO}T23:59:59.999", 1795305599999, {}, {}),
    ]  # fmt: skip
    # What Clarion recorded about the email, on the day it happened.
    assert [event[1:4] for event in events[4:]] == [(today, "_email.send", "mail-1"), (today, "_email.open", "mail-1")]
    assert all(event[6]["message_id"] == message_id for event in events[4:])
    [message] = read(
        folder, "messages", "app_id, day::VARCHAR, message_id, endpoint_id, user_id, channel, address, status", "1"
    )
    assert message == (app_id, today, message_id, "mail-1", "u1", "EMAIL", "ana@example.com", "SUCCESSFUL")
    outcomes = read(folder, "outcomes", "message_id, outcome, day::VARCHAR", "occurred_at_ms, outcome")
    assert sorted(outcomes) == sorted([(message_id, "_email.send", today), (message_id, "_email.open", today)])
    people = read(
        folder, "endpoints", "endpoint_id, user_id, channel_type, platform, country, attributes, day::VARCHAR", "1"
    )
    people = [(*person[:5], json.loads(person[5]), person[6]) for person in people]
    assert people == [
        ("mail-1", "u1", "EMAIL", None, None, {}, today),
        ("phone-1", "u1", "GCM", "android", "DE", {"tier": ["gold"]}, today),
    ]
    [(user_id, attributes)] = read(folder, "users", "user_id, attributes", "1")
    assert (user_id, json.loads(attributes)) == ("u1", {"plan": ["pro"]})
    with duckdb.connect() as con:
        kinds = dict(
            con.execute(
                "SELECT column_name, column_type FROM "
                f"(DESCRIBE SELECT * FROM read_parquet('{folder}/events/*/*/*.parquet'))"
            ).fetchall()
        )
    assert (kinds["event_at"], kinds["event_at_ms"], kinds["session_id"]) == (
        "TIMESTAMP WITH TIME ZONE",
        "BIGINT",
        "VARCHAR",
    )

    # The views hold the same rows, with the same days, in the store itself (SQLite or PostgreSQL).
    def views(tx: Any) -> Any:
        events = tx.fetchall(
            "SELECT event_type, day, event_at_ms FROM analytics_events WHERE app_id = ? "
            "ORDER BY event_at_ms, event_type",
            (app_id,),
        )
        counts = {
            view: tx.scalar(f"SELECT count(*) FROM analytics_{view} WHERE app_id = ?", (app_id,))
            for view in ("endpoints", "users", "messages", "outcomes")
        }
        return events, counts

    events, counts = server.run(lambda services: services.db.read(views))
    assert [(kind, day, ms) for kind, day, ms in events] == [
        (row[0], row[1], row[2])
        for row in read(folder, "events", "event_type, day::VARCHAR, event_at_ms", "event_at_ms, event_type")
    ]
    assert counts == {"endpoints": 2, "users": 1, "messages": 1, "outcomes": 2}

    # Again, one day only: that day's partition is replaced, nothing is duplicated, the others stay.
    again = export_cli(server, folder, "--day", DAY_TWO)
    assert again.returncode == 0, again.stderr
    assert len(read(folder, "events", "event_id", "1")) == 6
    with duckdb.connect(str(folder / "clarion.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE day = ?", [DAY_TWO]).fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM outcomes").fetchone() == (2,)


def test_the_scheduled_export_runs_once_a_day_through_the_queue(server: RunningServer) -> None:
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    client.put_events(
        ApplicationId=app_id,
        EventsRequest={
            "BatchItem": {
                "p": {"Endpoint": {}, "Events": {"e": {"EventType": "x", "Timestamp": yesterday.isoformat()}}}
            }
        },
    )

    async def run_schedule(services: Any) -> bool:
        from clarion.analytics.dataset import EXPORT_KIND, ScheduledExport

        analytics = services.settings.analytics
        schedule = ScheduledExport(
            services.db, services.queue, services.clock, Path(analytics.export_dir), 0, analytics.export_days, 1
        )
        await schedule.tick()  # the server's own loop may have enqueued it first: one item either way
        worker = Worker(services.queue, {EXPORT_KIND: services.queue_handlers[EXPORT_KIND]}, services.settings.queue)
        ran = 0
        while await worker.run_once():
            ran += 1
        assert ran == 1
        return await schedule.tick()

    again = server.run(run_schedule)
    folder = Path(server.settings.analytics.export_dir)
    assert again is False  # done today: not enqueued a second time
    assert read(folder, "events", "app_id, day::VARCHAR, event_type", "1") == [
        (app_id, yesterday.date().isoformat(), "x")
    ]
    run_day = datetime.now(UTC).date().isoformat()
    recorded = server.run(lambda s: s.db.read(lambda tx: tx.scalar("SELECT run_day FROM analytics_exports")))
    assert recorded == run_day
