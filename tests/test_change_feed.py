"""The change feed's event rows as the analytics replica reads them (clarion/store/changes.py), on both stores."""

from __future__ import annotations

import asyncio
import json

from conftest import analysed_database

from clarion.config import Settings
from clarion.store import apps as app_store
from clarion.store import changes
from clarion.store import events as event_store
from clarion.store.database import Transaction
from clarion.store.events import EventRow

APP = "f" * 32
STAMP = "2026-12-03T09:00:00.000Z"


def test_the_events_feed_carries_of_each_document_its_attributes_and_metrics_alone(settings: Settings) -> None:
    documents = {
        "full": {
            "EventType": "level.done",
            "Timestamp": STAMP,
            "AppPackageName": "com.example.game",
            "Attributes": {"level": "3", "mode": "hard"},
            "Metrics": {"score": 9.5},
            "Session": {"Id": "s-1", "StartTimestamp": STAMP},
        },
        "bare": {"EventType": "app.open", "Timestamp": STAMP},
    }

    def load(tx: Transaction) -> None:
        app_store.insert(tx, APP, "feed", STAMP, "{}")
        rows = [
            EventRow(APP, "Device-1", name, doc["EventType"], 1, 2, None, json.dumps(doc))
            for name, doc in documents.items()
        ]
        event_store.append(tx, rows)

    written: list[str] = []

    def read(tx: Transaction) -> changes.Cursor:
        return changes.events_batch(tx, 0, None, changes.committed_seq(tx), 100, written.extend)

    with analysed_database(settings, load) as db:
        assert asyncio.run(db.read(read)) is None  # one batch held them all
    fed = [json.loads(line) for line in written]
    assert [row["doc"] for row in fed] == [
        {"Attributes": {"level": "3", "mode": "hard"}, "Metrics": {"score": 9.5}},
        {"Attributes": None, "Metrics": None},
    ]
    assert [(row["endpoint_id"], row["event_type"], row["event_at"], row["arrival_at"]) for row in fed] == [
        ("Device-1", "level.done", 1, 2),
        ("Device-1", "app.open", 1, 2),
    ]
