"""Nothing accepted with a 2xx is lost when the server process is killed with SIGKILL.

A real `clarion serve` process takes concurrent UpdateEndpointsBatch and PutEvents traffic; it is killed while
requests are in flight, restarted on the same store, and every write it acknowledged must be there.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import pytest
from processes import pinpoint, start_server

from clarion.config import Settings
from clarion.services import open_database
from clarion.store.database import Transaction

WRITERS = 4
KILL_AFTER_ACKS = 60


class Writer(threading.Thread):
    """Sends batches until stopped; remembers exactly what the server acknowledged."""

    def __init__(self, number: int, port: int, app_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.number, self.port, self.app_id, self.stop = number, port, app_id, stop
        self.endpoints: set[str] = set()
        self.events: set[tuple[str, str]] = set()
        self.acks = 0

    def run(self) -> None:
        client = pinpoint(self.port)
        batch = 0
        while not self.stop.is_set():
            batch += 1
            ids = [f"w{self.number}-b{batch}-{i}" for i in range(20)]
            items = [{"Id": i, "ChannelType": "EMAIL", "Address": f"{i}@example.com"} for i in ids]
            events = {
                ids[0]: {
                    "Endpoint": {},
                    "Events": {
                        f"e{n}": {"EventType": "purchase", "Timestamp": "2026-11-23T10:00:00Z"} for n in range(10)
                    },
                }
            }
            try:
                client.update_endpoints_batch(ApplicationId=self.app_id, EndpointBatchRequest={"Item": items})
                self.endpoints.update(i.lower() for i in ids)
                client.put_events(ApplicationId=self.app_id, EventsRequest={"BatchItem": events})
                self.events.update((ids[0], f"e{n}") for n in range(10))
                self.acks += 1
            except Exception:
                return  # the server is gone: what was acknowledged is recorded, the rest was never promised


def stored(settings: Settings, app_id: str) -> tuple[set[str], set[tuple[str, str]]]:
    def read(tx: Transaction) -> tuple[set[str], set[tuple[str, str]]]:
        endpoints = {row[0] for row in tx.fetchall("SELECT endpoint_key FROM endpoints WHERE app_id = ?", (app_id,))}
        events = {
            (row[0], row[1])
            for row in tx.fetchall("SELECT endpoint_id, event_id FROM events WHERE app_id = ?", (app_id,))
        }
        return endpoints, events

    async def run() -> tuple[set[str], set[tuple[str, str]]]:
        db = open_database(settings)
        try:
            return await db.read(read)
        finally:
            db.close()

    return asyncio.run(run())


@pytest.mark.timeout(180)
def test_sigkill_loses_nothing_acknowledged(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = start_server(settings, log)
    try:
        app_id = pinpoint(settings.port).create_app(CreateApplicationRequest={"Name": "crash"})["ApplicationResponse"][
            "Id"
        ]
        stop = threading.Event()
        writers = [Writer(n, settings.port, app_id, stop) for n in range(WRITERS)]
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 60
        while sum(w.acks for w in writers) < KILL_AFTER_ACKS and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # while the writers still have requests in flight
        process.wait(timeout=10)
        stop.set()
        for writer in writers:
            writer.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    acknowledged_endpoints = set().union(*(w.endpoints for w in writers))
    acknowledged_events = set().union(*(w.events for w in writers))
    assert sum(w.acks for w in writers) >= KILL_AFTER_ACKS

    restarted = start_server(settings, log)
    try:
        client = pinpoint(settings.port)
        some = sorted(acknowledged_endpoints)[0]
        assert client.get_endpoint(ApplicationId=app_id, EndpointId=some)["EndpointResponse"]["Address"].startswith(
            some
        )
    finally:
        restarted.terminate()
        restarted.wait(timeout=10)

    endpoints, events = stored(settings, app_id)
    assert acknowledged_endpoints <= endpoints, f"lost {len(acknowledged_endpoints - endpoints)} endpoints"
    assert acknowledged_events <= events, f"lost {len(acknowledged_events - events)} events"
