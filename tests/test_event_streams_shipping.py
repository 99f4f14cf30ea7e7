"""How streams are shipped: one project's failing sink does not hold up another's, and with several processes on
PostgreSQL one ships each stream at a time (a lease in the store) and another takes over when it stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunningServer, free_port
from test_event_streams import custom_events, new_app, put_events, put_stream, records_in, streaming, wait_for

from clarion.config import Settings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated


def test_a_failing_sink_does_not_hold_up_another_project(settings: Settings) -> None:
    sinks = [
        {"type": "file", "arn": "*:stream/broken", "path": "broken/{application_id}.jsonl"},
        {"type": "file", "arn": "arn:aws:kinesis:*", "path": "{application_id}.jsonl"},
    ]
    with streaming(settings, sinks=sinks) as server:
        client = server.client()
        healthy, failing = new_app(client), new_app(client)
        (server.settings.data_dir / "streams" / "broken").mkdir(parents=True)
        (server.settings.data_dir / "streams" / "broken" / f"{failing}.jsonl").mkdir()  # cannot be written
        put_stream(client, failing, arn="arn:aws:kinesis:us-east-1:123456789012:stream/broken")
        put_stream(client, healthy)
        for round_ in range(3):
            put_events(client, failing, "f", custom_events(10, start=10 * round_))
            put_events(client, healthy, "h", custom_events(10, start=10 * round_))
        healthy_file = server.settings.data_dir / "streams" / f"{healthy}.jsonl"
        wait_for(lambda: healthy_file.exists() and len(healthy_file.read_text().splitlines()) == 30, "30 records")

        def failing_lag() -> int:
            _, body = server.signed_request("GET", f"/v1/apps/{failing}/eventstream", {})
            return body["ClarionDelivery"]["LagRecords"] if body["ClarionDelivery"]["ConsecutiveFailures"] else 0

        wait_for(lambda: failing_lag() == 30, "the failing stream's lag of 30 records")


def test_one_process_ships_a_stream_and_another_takes_over(settings: Settings, tmp_path: Path) -> None:
    if not settings.uses_postgres:
        pytest.skip("several processes share one store on PostgreSQL only (SQLite is one process's)")
    with streaming(settings.model_copy(update={"data_dir": tmp_path / "first"}), lease_seconds=1.0) as one:
        app_id = new_app(one.client())
        put_stream(one.client(), app_id)
        # A second process: the same store and stream settings, its own data folder and port.
        two = one.settings.model_copy(update={"data_dir": tmp_path / "second", "port": free_port()})
        server_two = RunningServer(two).start()
        try:
            for round_ in range(4):
                put_events(one.client(), app_id, "d", custom_events(10, start=10 * round_))
            folders = [tmp_path / "first" / "streams", tmp_path / "second" / "streams"]
            wait_for(lambda: sum(len(records_in(folder)) for folder in folders if folder.exists()) >= 40, "40")
            shipped_by = [folder for folder in folders if folder.exists() and records_in(folder)]
            assert len(shipped_by) == 1  # one process held the lease and shipped everything
            holder = one if shipped_by[0] == folders[0] else server_two
            other_folder = folders[1] if holder is one else folders[0]
            if holder is one:
                put_events(server_two.client(), app_id, "d", custom_events(10, start=40))
            else:
                put_events(one.client(), app_id, "d", custom_events(10, start=40))
            wait_for(lambda: len(records_in(shipped_by[0])) == 50, "the holder ships what the other process wrote")
            holder.stop()  # its lease is released; the other process takes the stream over
            survivor = server_two if holder is one else one
            put_events(survivor.client(), app_id, "d", custom_events(10, start=50))
            wait_for(lambda: other_folder.exists() and len(records_in(other_folder)) == 10, "the takeover")
        finally:
            server_two.stop()
    numbers = [
        json.loads(line)["attributes"]["n"]
        for folder in folders
        for path in folder.glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sorted(map(int, numbers)) == list(range(60))  # each event shipped once, by one process or the other
