"""The who/when/what dataset: five stable tables over the store's own, for analysis outside Clarion.

`endpoints` and `users` (people), `events` (what they did, when), `messages` (what was sent to whom, with the send's
outcome) and `outcomes` (what happened to each message afterwards: deliveries, opens, clicks, bounces, opt-outs...).
The columns are stated once, here: the `analytics_*` views (created by a migration, on SQLite and PostgreSQL alike,
for BI tools) and the Parquet export (clarion/analytics/dataset.py) both come from these definitions.
docs/analytics.md documents every column; a change here is a change of a published contract, and comes with a
migration that recreates the views (migration 18 created them from these definitions).

Times are kept two ways: epoch milliseconds as stored (`*_ms`), and a time column (timestamptz on PostgreSQL and in
Parquet, ISO-8601 text on SQLite). `day` is the UTC date of the row's time, what the export partitions by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clarion.store.database import Dialect, Transaction


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # text, integer, ms (epoch milliseconds), iso (ISO-8601 text), json (a JSON document as text)
    source: Callable[[Dialect], str]  # the expression over the base row (alias `b`)


def _plain(column: str) -> Callable[[Dialect], str]:
    return lambda dialect: f"b.{column}"


def _stored(name: str, kind: str = "text") -> Column:
    """A column the base table holds under the same name."""
    return Column(name, kind, _plain(name))


def _doc(*path: str) -> Callable[[Dialect], str]:
    return lambda dialect: dialect.json_text("b.doc", path)


def _json(document: str, member: str | None) -> Callable[[Dialect], str]:
    """A JSON member (or the whole document) as JSON text, `{}` when absent."""

    def spell(dialect: Dialect) -> str:
        if dialect.name == "postgresql":
            value = f"b.{document}::jsonb" + (f" -> '{member}'" if member else "")
            return f"coalesce(({value})::text, '{{}}')"
        path = f"'$.{member}'" if member else "'$'"
        return f"coalesce(json_extract(b.{document}, {path}), '{{}}')"

    return spell


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    base: str  # the store table read
    columns: tuple[Column, ...]
    time: str | None  # the base column `day` and export ranges go by; None: a snapshot of current state
    keys: tuple[str, ...]  # base columns that order the rows uniquely, for keyset pages
    where: Callable[[Dialect], str] | None = None
    time_column: str | None = None  # the dataset's column for `time`, when its name differs

    @property
    def timed(self) -> Column | None:
        """The dataset column holding the row's time."""
        name = self.time_column or self.time
        return next((column for column in self.columns if column.name == name), None)

    def select(self, dialect: Dialect) -> str:
        return ", ".join(f"{column.source(dialect)} AS {column.name}" for column in self.columns)


ENDPOINTS = Table(
    "endpoints",
    "endpoints",
    (
        _stored("app_id"),
        Column("endpoint_id", "text", _plain("id")),
        _stored("channel_type"),
        _stored("address"),
        _stored("endpoint_status"),
        _stored("opt_out"),
        _stored("user_id"),
        _stored("created_at", "iso"),
        _stored("effective_at"),  # as the client wrote it: not always an instant
        Column("platform", "text", _doc("Demographic", "Platform")),
        Column("platform_version", "text", _doc("Demographic", "PlatformVersion")),
        Column("make", "text", _doc("Demographic", "Make")),
        Column("model", "text", _doc("Demographic", "Model")),
        Column("app_version", "text", _doc("Demographic", "AppVersion")),
        Column("locale", "text", _doc("Demographic", "Locale")),
        Column("timezone", "text", _doc("Demographic", "Timezone")),
        Column("country", "text", _doc("Location", "Country")),
        Column("region", "text", _doc("Location", "Region")),
        Column("city", "text", _doc("Location", "City")),
        Column("postal_code", "text", _doc("Location", "PostalCode")),
        Column("attributes", "json", _json("doc", "Attributes")),
        Column("metrics", "json", _json("doc", "Metrics")),
    ),
    None,
    ("endpoint_key",),
)
USERS = Table(
    "users",
    "users",
    (
        _stored("app_id"),
        _stored("user_id"),
        Column("attributes", "json", _json("attributes", None)),
    ),
    None,
    ("user_id",),
)
EVENTS = Table(
    "events",
    "events",
    (
        _stored("app_id"),
        _stored("event_id"),
        _stored("endpoint_id"),
        _stored("event_type"),
        _stored("event_at", "ms"),
        _stored("arrival_at", "ms"),
        _stored("session_id"),
        Column("attributes", "json", _json("doc", "Attributes")),
        Column("metrics", "json", _json("doc", "Metrics")),
    ),
    "event_at",
    ("event_at", "seq"),
)
MESSAGES = Table(
    "messages",
    "messages",
    (
        _stored("app_id"),
        _stored("message_id"),
        _stored("endpoint_id"),
        _stored("user_id"),
        _stored("channel"),
        _stored("address"),
        _stored("campaign_id"),
        _stored("treatment_id"),
        _stored("journey_id"),
        _stored("status"),
        _stored("status_code", "integer"),
        _stored("status_message"),
        _stored("created_at", "iso"),
    ),
    "created_at",
    ("created_at", "message_id"),
)


def _message_of_event(dialect: Dialect) -> str:
    return dialect.json_text("b.doc", ("Attributes", "message_id"))


OUTCOMES = Table(
    "outcomes",
    "events",
    (
        _stored("app_id"),
        Column("message_id", "text", _message_of_event),
        _stored("endpoint_id"),
        Column("outcome", "text", _plain("event_type")),
        Column("occurred_at", "ms", _plain("event_at")),
        Column("attributes", "json", _json("doc", "Attributes")),
    ),
    "event_at",
    ("event_at", "seq"),
    where=lambda dialect: f"{_message_of_event(dialect)} IS NOT NULL",
    time_column="occurred_at",
)
TABLES = (ENDPOINTS, USERS, EVENTS, MESSAGES, OUTCOMES)


def _time(column: Column, dialect: Dialect) -> str:
    """The column as a time: timestamptz on PostgreSQL, ISO text on SQLite."""
    source = column.source(dialect)
    if column.kind == "ms":
        if dialect.name == "postgresql":
            return f"to_timestamp({source} / 1000.0)"
        return f"strftime('%Y-%m-%dT%H:%M:%fZ', {source} / 1000.0, 'unixepoch')"
    return f"CAST({source} AS timestamptz)" if dialect.name == "postgresql" else source


def view_sql(table: Table, dialect: Dialect) -> str:
    """`CREATE VIEW analytics_<name>`: every column, `<name>_ms` beside each millisecond time, and `day`."""
    selected = []
    for column in table.columns:
        if column.kind in ("ms", "iso"):
            if column.kind == "ms":
                selected.append(f"{column.source(dialect)} AS {column.name}_ms")
            selected.append(f"{_time(column, dialect)} AS {column.name}")
        else:
            selected.append(f"{column.source(dialect)} AS {column.name}")
    time = table.timed
    if time is not None:
        if dialect.name == "postgresql":
            day = f"to_char({_time(time, dialect)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        else:
            day = f"substr({_time(time, dialect)}, 1, 10)"
        selected.append(f"{day} AS day")
    where = f" WHERE {table.where(dialect)}" if table.where else ""
    return f"CREATE VIEW analytics_{table.name} AS SELECT {', '.join(selected)} FROM {table.base} b{where}"


def page(
    tx: Transaction,
    table: Table,
    app_id: str,
    after: Sequence[Any] | None,
    limit: int,
    start: Any = None,
    end: Any = None,
) -> tuple[list[tuple[Any, ...]], Sequence[Any] | None]:
    """Up to `limit` rows of one project (times in [start, end) for tables with a time), after the keyset position
    `after`; returns the rows (the table's columns, in order) and the position to continue from (None: done)."""
    dialect = tx.dialect
    where, params = ["b.app_id = ?"], [app_id]
    if table.time is not None and start is not None:
        where.append(f"b.{table.time} >= ? AND b.{table.time} < ?")
        params += [start, end]
    if table.where is not None:
        where.append(table.where(dialect))
    keys = ", ".join(f"b.{key}" for key in table.keys)
    if after is not None:
        where.append(f"({keys}) > ({', '.join('?' * len(table.keys))})")
        params += list(after)
    rows = tx.fetchall(
        f"SELECT {table.select(dialect)}, {keys} FROM {table.base} b WHERE {' AND '.join(where)} "
        f"ORDER BY {keys} LIMIT ?",
        (*params, limit),
    )
    width = len(table.columns)
    position = tuple(rows[-1][width:]) if len(rows) == limit else None
    return [tuple(row[:width]) for row in rows], position


def export_done(tx: Transaction, run_day: str) -> bool:
    return tx.fetchone("SELECT 1 FROM analytics_exports WHERE run_day = ?", (run_day,)) is not None


def record_export(tx: Transaction, run_day: str, exported_at: str) -> None:
    tx.execute(
        "INSERT INTO analytics_exports (run_day, exported_at) VALUES (?, ?) ON CONFLICT (run_day) DO NOTHING",
        (run_day, exported_at),
    )
