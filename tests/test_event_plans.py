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
from conftest import analysed_database, reset_postgres

from clarion.config import Settings
from clarion.store import apps as app_store
from clarion.store import changes
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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One store of each kind for the whole module: its tests only read, and loading and analysing 20,000 events
    for each test was most of the module's time."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("plans") / "data")
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        reset_postgres(url)
        settings = settings.model_copy(update={"database_url": url})

    def load(tx: Transaction) -> None:
        for app_id in APPS:
            app_store.insert(tx, app_id, "plans", "2026-12-03T00:00:00.000Z", "{}")
        events = {app_id: rows(app_id) for app_id in APPS}
        for start in range(0, EVENTS, 100):  # a change stamp per 100 events, the projects taking turns
            for app_id in APPS:
                event_store.append(tx, events[app_id][start : start + 100])

    with analysed_database(settings, load) as database:
        yield database


class Explaining:
    """A connection that notes the plan of every statement on a table (events unless told) before running it."""

    def __init__(self, conn: Any, sqlite: bool, table: str = "events") -> None:
        self.conn, self.sqlite, self.table = conn, sqlite, table
        self.plans: list[tuple[str, list[str]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if f" {self.table} " in f"{sql} ":
            explain = "EXPLAIN QUERY PLAN " if self.sqlite else "EXPLAIN "
            found = self.conn.execute(explain + sql, params).fetchall()
            self.plans.append((sql, [str(row[-1]) for row in found]))
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:  # PostgreSQL's server-side cursors (Transaction.stream)
        return getattr(self.conn, name)


def plans_of(db: Database, query: Any, table: str = "events") -> list[tuple[str, list[str]]]:
    def work(tx: Transaction) -> list[tuple[str, list[str]]]:
        explaining = Explaining(tx._conn, tx.dialect.name == "sqlite", table)
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


# Read in feed order, from a cursor: a range of events_by_change (change_seq, app_id, seq), never sorted.
# Cursors near the end, as a stream or a sync that keeps up has them: the last 10 of 200 change stamps.
FEED_QUERIES = {
    "stream events_after": lambda tx: stream_store.events_after(tx, APPS[0], (190, 0), 2000),
    "stream backlog": lambda tx: stream_store.backlog(tx, APPS[0], (190, 0)),
    "feed events_batch": lambda tx: changes.events_batch(tx, 190, (192, APPS[1], 0), 200, 500, lambda rows: None),
    "feed round_end": lambda tx: changes.round_end(tx, 190, 200, 500),
}


@pytest.mark.parametrize("name", sorted(FEED_QUERIES))
def test_streams_and_the_change_feed_read_a_range_of_events_by_change(db: Database, name: str) -> None:
    plans = [(sql, steps) for sql, steps in plans_of(db, FEED_QUERIES[name]) if "FROM events" in sql]
    assert plans, "the query ran no statement on events"
    for sql, steps in plans:
        text = "\n".join(steps)
        assert "events_by_change" in text, (sql, text)
        if db.dialect.name == "sqlite":
            assert any(step.startswith("SEARCH events USING") for step in steps), (sql, text)
            assert "TEMP B-TREE" not in text, (sql, text)
        else:
            assert "Seq Scan on events" not in text and "Sort" not in text, (sql, text)


def test_a_stream_reads_its_own_projects_events_in_feed_order(db: Database) -> None:
    def work(tx: Transaction) -> tuple[list[tuple[int, int]], tuple[int, int | None], set[str]]:
        found, _ = stream_store.events_after(tx, APPS[0], (101, 0), 300)
        seqs = [row[1] for row in found]
        apps = {row[0] for row in tx.fetchall(f"SELECT app_id FROM events WHERE seq IN ({','.join('?' * 300)})", seqs)}
        return [(row[0], row[1]) for row in found], stream_store.backlog(tx, APPS[0], (101, 0)), apps

    found, (waiting, oldest), apps = asyncio.run(db.read(work))
    assert found == sorted(found) and len(found) == 300 and apps == {APPS[0]}
    # The projects' stamps alternate (a odd, b even), each of 100 events: from (101, 0) on, a has 50 stamps, the
    # first holding its events 5,000-5,099 (arrival_at = n).
    assert [stamp for stamp, _ in found[::100]] == [101, 103, 105]
    assert (waiting, oldest) == (5_000, 5_000)


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
