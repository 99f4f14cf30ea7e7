"""Filling a benchmark's store with generated events by SQL in bulk: the rows, indexes and KPI rollups that appending
the same events through the store's write path (`clarion.store.events.append`, a transaction per batch) leaves, in a
fraction of the time. Through the write path ten million events took an hour on a loaded machine; most of that is
B-tree inserts of each row into the events table's six indexes, in random order for most of them.

How: the events table's secondary indexes are dropped, the rows are inserted by `INSERT … SELECT` over generated
numbers (a chunk per transaction), each row stamped with the change-feed stamp the write path would have given its
batch, the feed's counter is moved on as those batches would have moved it, and the indexes are created again from
their own definitions (one sort each). On PostgreSQL the KPI rollup trigger is disabled for the load and the rollups
are made afterwards by the trigger's own SQL over all the loaded events (clarion/store/kpi_rollup.py): the same
figures per hour and key as the trigger's appended rows add up to, in one row per key instead of one per insert.

`check` proves it on a small fill: the same events appended through the write path into a second store must give the
same events table, the same index definitions, the same change feed and the same rollups (figures per key; sets of
recipients). Each benchmark runs it before its timed fill.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from clarion.store import changes, kpi_rollup
from clarion.store import events as event_store
from clarion.store.database import (
    POSTGRESQL,
    SQLITE,
    Database,
    Dialect,
    PostgresDatabase,
    SqliteDatabase,
    Transaction,
    connect_postgres,
)
from clarion.store.events import EventRow
from clarion.store.kpi_sql import RECIPIENT_KEYS, ROLLUP_KEYS
from clarion.store.migrations import migrate

# The columns an events generator selects, in this order, from a row source with the event's number as `i`.
EVENT_COLUMNS = ("app_id", "endpoint_id", "event_id", "event_type", "event_at", "arrival_at", "session_id", "doc")
# Events per transaction of the bulk insert: the WAL (SQLite) and a statement's memory stay bounded.
CHUNK = 1_000_000
# (dialect) -> the SELECT list of EVENT_COLUMNS over `i`, the event's number from 0.
EventsSql = Callable[[Dialect], str]
TxOf = Callable[[], AbstractContextManager[Transaction]]


@dataclass
class FreshStore:
    """A new, migrated store of its own: a SQLite file, or a PostgreSQL database dropped at the end."""

    kind: str  # "sqlite" | "postgres"
    path: Path | None = None
    url: str | None = None
    conn: Any = None  # the bulk connection, until `database()`

    def tx_of(self) -> AbstractContextManager[Transaction]:
        """A transaction on the bulk connection, committed on exit."""
        return _sqlite_tx(self.conn) if self.kind == "sqlite" else _postgres_tx(self.conn)

    def database(self) -> Database:
        """The store as Clarion opens it (the bulk connection is closed first)."""
        self.conn.close()
        if self.kind == "sqlite":
            assert self.path is not None
            return SqliteDatabase(self.path, "NORMAL")
        assert self.url is not None
        return PostgresDatabase(self.url)


@contextmanager
def _sqlite_tx(conn: sqlite3.Connection) -> Iterator[Transaction]:
    conn.execute("BEGIN")
    try:
        yield Transaction(conn, SQLITE)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def _postgres_tx(conn: Any) -> Iterator[Transaction]:
    with conn.transaction():
        yield Transaction(conn, POSTGRESQL)


@contextmanager
def fresh_store(kind: str, folder: Path, postgres_url: str, prefix: str, keep: bool = False) -> Iterator[FreshStore]:
    """A migrated store in `folder` (SQLite) or a new database `<prefix>_<random>` on the server of `postgres_url`
    (dropped at the end unless `keep`)."""
    if kind == "sqlite":
        path = folder / f"{prefix}-{uuid.uuid4().hex[:8]}.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")  # a benchmark's fill: nothing to keep across a crash
        conn.execute("PRAGMA cache_size=-262144")
        store = FreshStore(kind, path=path, conn=conn)
        with store.tx_of() as tx:
            migrate(tx)
        try:
            yield store
        finally:
            store.conn.close()
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(postgres_url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    store = FreshStore(kind, url=database_url(postgres_url, name))
    try:
        store.conn = connect_postgres(store.url)
        with store.tx_of() as tx:
            migrate(tx)
        yield store
    finally:
        if store.conn is not None:
            store.conn.close()
        if not keep:
            drop_database(postgres_url, name)
        admin.close()


def database_url(postgres_url: str, name: str) -> str:
    return f"{postgres_url.rsplit('/', 1)[0]}/{name}"


def drop_database(postgres_url: str, name: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def iso_ms(dialect: Dialect, ms: str) -> str:
    """Epoch milliseconds as Clarion writes an instant (`2026-10-01T00:00:00.000Z`), in SQL."""
    if dialect.name == "postgresql":
        return (
            f"to_char(to_timestamp(({ms}) / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '.' || "
            f"lpad((({ms}) % 1000)::text, 3, '0') || 'Z'"
        )
    return (
        f"strftime('%Y-%m-%dT%H:%M:%S', ({ms}) / 1000, 'unixepoch') || '.' || substr('00' || (({ms}) % 1000), -3) "
        "|| 'Z'"
    )


def _numbers(dialect: Dialect, start: int, stop: int) -> str:
    """A row source of the numbers [start, stop) as column `i`."""
    if dialect.name == "postgresql":
        return f"generate_series({start}::bigint, {stop - 1}::bigint) AS g(i)"
    return (
        f"(WITH RECURSIVE n(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {stop}) SELECT i FROM n)"
    )


def _secondary_indexes(tx: Transaction) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the events table's indexes but its primary key's."""
    if tx.dialect.name == "postgresql":
        rows = tx.fetchall(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey' "
            "ORDER BY indexname"
        )
    else:
        rows = tx.fetchall(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL "
            "ORDER BY name"
        )
    return [(name, sql) for name, sql in rows]


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def fill(tx_of: TxOf, events_sql: EventsSql, total: int, batch: int, progress: bool = True) -> dict[str, float]:
    """Insert events 0 … total-1 of `events_sql`, stamped as appends of `batch` events each would be; `tx_of` is a
    context manager giving a Transaction (committed on exit), entered once per step. Returns seconds per step."""
    timings: dict[str, float] = {}
    with tx_of() as tx:
        dialect = tx.dialect
        indexes = _secondary_indexes(tx)
        base = changes.committed_seq(tx)
        for name, _ in indexes:
            tx.execute(f"DROP INDEX {name}")
        if dialect.name == "postgresql":
            tx.execute("ALTER TABLE events DISABLE TRIGGER events_kpi_roll_up")
    columns = ", ".join(EVENT_COLUMNS)
    with _timed(timings, "insert"):
        for start in range(0, total, CHUNK):
            stop = min(total, start + CHUNK)
            with tx_of() as tx:
                tx.execute(
                    f"INSERT INTO events ({columns}, change_seq) SELECT {events_sql(dialect)}, "
                    f"{base + 1} + i / {batch} FROM {_numbers(dialect, start, stop)}"
                )
            if progress:
                print(f"  bulk fill: {stop:,} events inserted", flush=True)
    with tx_of() as tx:
        tx.execute("UPDATE change_feed SET seq = ? WHERE name = ?", (base + -(-total // batch), changes.FEED))
    if dialect.name == "postgresql":
        with _timed(timings, "rollups"), tx_of() as tx:
            for statement in kpi_rollup.roll_up_sql("events"):
                tx.execute(statement)
            tx.execute("ALTER TABLE events ENABLE TRIGGER events_kpi_roll_up")
    with _timed(timings, "indexes"):
        for _, create in indexes:
            with tx_of() as tx:
                if dialect.name == "postgresql":
                    tx.execute("SET LOCAL maintenance_work_mem = '512MB'")
                tx.execute(create)
    return timings


def append_through_store(tx_of: TxOf, events_sql: EventsSql, total: int, batch: int) -> None:
    """The reference: events 0 … total-1 appended through the write path, `batch` per transaction."""
    for start in range(0, total, batch):
        with tx_of() as tx:
            rows = tx.fetchall(
                f"SELECT i, {events_sql(tx.dialect)} FROM {_numbers(tx.dialect, start, min(total, start + batch))} "
                "ORDER BY 1"
            )
        with tx_of() as tx:
            event_store.append(tx, [EventRow(*row[1:]) for row in rows])


def _content(tx: Transaction) -> dict[str, Any]:
    """What the two ways must agree on."""
    events = tx.fetchall(f"SELECT seq, {', '.join(EVENT_COLUMNS)}, change_seq FROM events ORDER BY seq")
    for row in events[:1000]:  # each document as PutEvents stores it: msgspec's compact encoding of the event
        assert msgspec.json.encode(msgspec.json.decode(row[-2])).decode() == row[-2], row[-2]
    keys = ", ".join(("app_id", "hour", "event_type", *ROLLUP_KEYS))
    recipients = ", ".join(("app_id", "hour", "event_type", *RECIPIENT_KEYS, "recipient"))
    return {
        "events": [tuple(row) for row in events],
        "indexes": _secondary_indexes(tx),
        "feed": changes.committed_seq(tx),
        "kpi_hourly": tx.fetchall(
            f"SELECT {keys}, sum(n), sum(parts), sum(price) FROM kpi_hourly GROUP BY {keys} ORDER BY {keys}"
        ),
        "kpi_recipients": tx.fetchall(f"SELECT DISTINCT {recipients} FROM kpi_recipients ORDER BY {recipients}"),
    }


def check(bulk_tx: TxOf, appended_tx: TxOf, events_sql: EventsSql, total: int, batch: int) -> dict[str, int]:
    """Fill two fresh, migrated stores with the same `total` events, one in bulk and one through the write path,
    and assert they agree; returns what was compared (rows per part)."""
    fill(bulk_tx, events_sql, total, batch, progress=False)
    append_through_store(appended_tx, events_sql, total, batch)
    with bulk_tx() as tx:
        bulk = _content(tx)
    with appended_tx() as tx:
        appended = _content(tx)
    for part, rows in bulk.items():
        assert rows == appended[part], f"bulk fill and write path differ in {part}"
    return {part: (len(rows) if isinstance(rows, list) else rows) for part, rows in bulk.items()}
