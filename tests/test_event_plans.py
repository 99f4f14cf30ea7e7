"""The plans of the queries that read an endpoint's events, as SQLite and PostgreSQL describe them (EXPLAIN).

Events have one index by endpoint, `events_by_endpoint (app_id, lower(endpoint_id), endpoint_id, event_id)`
(migration 29): it keeps retries idempotent and serves both a lookup by the id as sent and an endpoint's events by
its folded id. Each query below is run as the store's own function issues it, through a connection that asks for
its plan first; every plan must read events through that index, never a scan of the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from conftest import analysed_database

from clarion.config import Settings
from clarion.store import apps as app_store
from clarion.store import events as event_store
from clarion.store import streams as stream_store
from clarion.store.database import Database, Transaction
from clarion.store.events import EventRow

APPS = ("a" * 32, "b" * 32)
ENDPOINTS = 1_000
EVENTS = 10_000  # per project: enough for both planners to weigh an index against a scan


def rows(app_id: str) -> list[EventRow]:
    return [
        EventRow(app_id, f"Device-{n % ENDPOINTS}", f"e-{n}", ("_email.send", "level.done")[n % 2], n, n, None, "{}")
        for n in range(EVENTS)
    ]


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    def load(tx: Transaction) -> None:
        for app_id in APPS:
            app_store.insert(tx, app_id, "plans", "2026-12-03T00:00:00.000Z", "{}")
            event_store.append(tx, rows(app_id))

    with analysed_database(settings, load) as database:
        yield database


class Explaining:
    """A connection that notes the plan of every statement on events before running it."""

    def __init__(self, conn: Any, sqlite: bool) -> None:
        self.conn, self.sqlite = conn, sqlite
        self.plans: list[tuple[str, list[str]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if " events " in f"{sql} ":
            explain = "EXPLAIN QUERY PLAN " if self.sqlite else "EXPLAIN "
            found = self.conn.execute(explain + sql, params).fetchall()
            self.plans.append((sql, [str(row[-1]) for row in found]))
        return self.conn.execute(sql, params)


def plans_of(db: Database, query: Any) -> list[tuple[str, list[str]]]:
    def work(tx: Transaction) -> list[tuple[str, list[str]]]:
        explaining = Explaining(tx._conn, tx.dialect.name == "sqlite")
        query(Transaction(explaining, tx.dialect))
        return explaining.plans

    return asyncio.run(db.read(work))


QUERIES = {
    "exists": lambda tx: event_store.exists(tx, APPS[0], "Device-7", "e-7"),
    "doc": lambda tx: event_store.doc(tx, APPS[0], "Device-7", "e-7"),
    "latest_at": lambda tx: event_store.latest_at(tx, APPS[0], "Device-7", ["_email.send", "_email.open"]),
    "recent": lambda tx: event_store.recent(tx, APPS[0], 10, "Device-7"),
    "of_endpoints": lambda tx: event_store.of_endpoints(tx, APPS[0], ["device-7", "device-8"], None, 10),
    "activity": lambda tx: event_store.activity(tx, APPS[0], ["device-7", "device-8"]),
    "send_event_docs": lambda tx: stream_store.send_event_docs(tx, APPS[0], [("Device-7", "e-7"), ("Device-8", "e-8")]),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_an_endpoints_events_are_read_through_events_by_endpoint(db: Database, name: str) -> None:
    plans = plans_of(db, QUERIES[name])
    assert plans, "the query ran no statement on events"
    for sql, steps in plans:
        text = "\n".join(steps)
        assert "events_by_endpoint" in text, (sql, text)
        if db.dialect.name == "sqlite":
            assert not any(step.startswith("SCAN ev") for step in steps), (sql, text)
        else:
            assert "Seq Scan on events" not in text, (sql, text)


def test_the_queries_answer_by_the_id_as_sent_and_by_the_folded_id(db: Database) -> None:
    """The probes find what they should: by the id as sent only that spelling, by the key every spelling."""

    def work(tx: Transaction) -> tuple[Any, ...]:
        return (
            event_store.exists(tx, APPS[0], "Device-7", "e-7"),
            event_store.exists(tx, APPS[0], "device-7", "e-7"),
            event_store.doc(tx, APPS[1], "Device-7", "e-7"),
            event_store.latest_at(tx, APPS[0], "Device-7", ["_email.send"]),
            [row.event_id for row in event_store.recent(tx, APPS[0], 3, "Device-7")],
            len(event_store.of_endpoints(tx, APPS[0], ["device-7"], None, 100)),
            stream_store.send_event_docs(tx, APPS[0], [("Device-7", "e-7"), ("device-8", "e-8")]),
        )

    found = asyncio.run(db.read(work))
    assert found == (True, False, "{}", None, ["e-9007", "e-8007", "e-7007"], 10, {"e-7": "{}"})
