"""KPI rollups on the row store (PostgreSQL): the hourly counters and recipients of the events KPIs read, kept by
the database itself in each events insert's transaction, so a 31-day KPI reads whole hours from them and only the
events of the two hours at its edges.

A statement-level trigger on `events` (its transition table holds exactly the rows an insert added: a retry that
ON CONFLICT skipped adds nothing) adds to `kpi_hourly` (counts, SMS parts and prices per project, hour, event type
and ROLLUP_KEYS) and to `kpi_recipients` (each hour's distinct recipients of RECIPIENT_EVENT_TYPES by
RECIPIENT_KEYS). Only the events KPIs count are rolled up — Clarion's own message events and
`_campaign.opened_notification` —, so PutEvents of other app events never touches them. Each insert appends rows of
its own (its events' counts, and recipients, per hour and key) and never updates one: writers in several processes
never wait for each other on a rollup row nor deadlock, and a KPI adds the rows up (counts) or counts distinct
over them (recipients). A background merge (`merge_next`, run by each process's retention pass) folds an hour's
appended rows into one row per key once the hour is over, so the tables hold about one row per hour and key
whatever the number of inserts; retention removes them by the hour.

On SQLite the tables exist (and are emptied with their project and by retention alike) but stay empty: the embedded
default counts KPIs on its DuckDB replica, and a store that does not is small enough to scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clarion.store.database import Dialect, Transaction
from clarion.store.kpi_sql import (
    HOUR_MS,
    RECIPIENT_EVENT_TYPES,
    RECIPIENT_KEYS,
    ROLLUP_KEYS,
    KpiColumns,
    KpiQuery,
    RecipientRolledColumns,
    RolledColumns,
    RowStoreColumns,
    compile_kpi,
    recipients_roll_up,
    rolled_keys,
    rolls_up,
)

# The events the trigger rolls up: what KPI counters count (clarion/analytics/kpis.py).
ROLLED_PREFIXES = ("_email.", "_SMS.")
ROLLED_TYPES = ("_campaign.send", "_campaign.opened_notification")
ROLLED_SQL = (
    "(substr(event_type, 1, 7) = '_email.' OR substr(event_type, 1, 5) = '_SMS.' "
    "OR event_type IN ('_campaign.send', '_campaign.opened_notification'))"
)


def is_rolled(event_type: str) -> bool:
    return event_type.startswith(ROLLED_PREFIXES) or event_type in ROLLED_TYPES


def _json(path: str) -> str:
    """A member of the event document `d` (jsonb, parsed once per row) as text."""
    return f"(d #>> '{{{path}}}')"


def _attribute(name: str) -> str:
    return _json(f"Attributes,{name}")


# Ends a subquery that parses each event's document once (`doc::jsonb AS d`): without it PostgreSQL pulls the subquery
# up into the outer query and parses the document again at every use of `d`, a dozen times per row (rolling up
# 120,000 KPI events took 4.0 s instead of 1.1 s).
_PARSED_ONCE = "OFFSET 0"


_PARTS = f"coalesce(CAST({_attribute('number_of_message_parts')} AS INTEGER), 1)"
_PRICE = f"coalesce(CAST({_json('Metrics,price_in_millicents_usd')} AS double precision), 0)"
_RECIPIENT = f"CASE WHEN endpoint_id <> '' THEN endpoint_id ELSE '@' || {_attribute('destination')} END"
_KEY_COLUMNS = ", ".join(ROLLUP_KEYS)
_RECIPIENT_COLUMNS = ", ".join(RECIPIENT_KEYS)


def _tables(dialect: Dialect) -> str:
    return f"""CREATE TABLE kpi_hourly (
        app_id TEXT NOT NULL, hour BIGINT NOT NULL, event_type TEXT NOT NULL,
        {", ".join(name + " TEXT NOT NULL" for name in ROLLUP_KEYS)},
        n BIGINT NOT NULL, parts BIGINT NOT NULL, price DOUBLE PRECISION NOT NULL
    )"""


def _recipients_table(dialect: Dialect) -> str:
    return f"""CREATE TABLE kpi_recipients (
        app_id TEXT NOT NULL, hour BIGINT NOT NULL, event_type TEXT NOT NULL,
        {", ".join(name + " TEXT NOT NULL" for name in RECIPIENT_KEYS)}, recipient TEXT NOT NULL
    )"""


def roll_up_sql(source: str) -> tuple[str, str]:
    """The two inserts adding the events of `source` (a table of event rows) to the rollups: rows of their own,
    never an update of rows another transaction may hold. The trigger runs them over each insert's rows; a bulk load
    with the trigger disabled runs them once over all its events (bench/bulk_fill.py)."""
    rows = (
        f"(SELECT app_id, endpoint_id, event_type, event_at, doc::jsonb AS d FROM {source} WHERE {ROLLED_SQL} "
        f"{_PARSED_ONCE}) e"
    )
    keys = ", ".join(rolled_keys(_attribute))
    recipient_keys = ", ".join(rolled_keys(_attribute, RECIPIENT_KEYS))
    types = ", ".join(f"'{kind}'" for kind in RECIPIENT_EVENT_TYPES)
    return (
        f"""INSERT INTO kpi_hourly
        SELECT app_id, hour, event_type, {_KEY_COLUMNS}, count(*), sum(parts), sum(price) FROM (
            SELECT app_id, event_at / {HOUR_MS} AS hour, event_type, {keys}, {_PARTS} AS parts, {_PRICE} AS price
            FROM {rows}) k
        GROUP BY app_id, hour, event_type, {_KEY_COLUMNS}""",
        f"""INSERT INTO kpi_recipients
        SELECT DISTINCT app_id, event_at / {HOUR_MS}, event_type, {recipient_keys}, {_RECIPIENT} AS recipient
        FROM {rows} WHERE event_type IN ({types}) AND {_RECIPIENT} IS NOT NULL""",
    )


def _trigger(dialect: Dialect) -> str:
    if dialect.name != "postgresql":
        return "SELECT 1"
    return f"""CREATE OR REPLACE FUNCTION kpi_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {"; ".join(roll_up_sql("inserted"))}; RETURN NULL; END $$"""


def _on_insert(dialect: Dialect) -> str:
    if dialect.name != "postgresql":
        return "SELECT 1"
    return (
        "CREATE TRIGGER events_kpi_roll_up AFTER INSERT ON events REFERENCING NEW TABLE AS inserted "
        "FOR EACH STATEMENT EXECUTE FUNCTION kpi_roll_up()"
    )


def _backfill(part: int) -> Callable[[Dialect], str]:
    """The events stored before the rollups existed."""
    return lambda dialect: roll_up_sql("events")[part] if dialect.name == "postgresql" else "SELECT 1"


MIGRATION: list[Callable[[Dialect], str] | str] = [
    _tables,
    _recipients_table,
    "CREATE INDEX kpi_hourly_by_hour ON kpi_hourly (app_id, hour)",
    "CREATE INDEX kpi_recipients_by_hour ON kpi_recipients (app_id, hour)",
    _trigger,
    _on_insert,
    _backfill(0),
    _backfill(1),
]
# The trigger's function again, parsing each event's document once (_PARSED_ONCE).
PARSE_ONCE: list[Callable[[Dialect], str] | str] = [_trigger]
TABLES = ("kpi_hourly", "kpi_recipients")
# `merged`: the row is an hour's rows folded into one per key. The trigger's rows (false by default) are what is left
# to merge; a partial index finds them without reading the merged rest.
MERGED = [
    *(f"ALTER TABLE {table} ADD COLUMN merged BOOLEAN NOT NULL DEFAULT false" for table in TABLES),
    *(f"CREATE INDEX {table}_unmerged ON {table} (hour) WHERE NOT merged" for table in TABLES),
]


def _merge_sql(table: str, columns: str, folded: str) -> str:
    """Delete every row of one project's hour and insert them back folded, in one statement: a KPI reading at the
    same time sees the rows before or after, never both. Rows another transaction appends meanwhile are not deleted
    (this statement does not see them) and are merged on a later pass; rows another merge deleted first are skipped
    (each row is folded once). Appending writers take no lock a merge holds: they never wait for it."""
    return f"""WITH gone AS (DELETE FROM {table} WHERE app_id = ? AND hour = ? RETURNING *),
        kept AS (INSERT INTO {table} ({columns}, merged) {folded} RETURNING 1)
        SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)"""


_HOURLY_KEYS = f"app_id, hour, event_type, {_KEY_COLUMNS}"
_RECIPIENT_ROW = f"app_id, hour, event_type, {_RECIPIENT_COLUMNS}, recipient"
_MERGE = {
    "kpi_hourly": _merge_sql(
        "kpi_hourly",
        f"{_HOURLY_KEYS}, n, parts, price",
        f"SELECT {_HOURLY_KEYS}, sum(n), sum(parts), sum(price), true FROM gone GROUP BY {_HOURLY_KEYS}",
    ),
    "kpi_recipients": _merge_sql("kpi_recipients", _RECIPIENT_ROW, f"SELECT DISTINCT {_RECIPIENT_ROW}, true FROM gone"),
}


def merge_next(tx: Transaction, before_ms: int) -> int | None:
    """Fold one project's hour (the oldest ended before `before_ms` with rows not merged yet, in either rollup) into
    one row per key; the rows it removed, or None when no such hour is left. One hour per call keeps each write
    short. SQLite's rollups stay empty: nothing to merge there."""
    if tx.dialect.name != "postgresql":
        return None
    for table in TABLES:
        found = tx.fetchone(
            f"SELECT app_id, hour FROM {table} WHERE NOT merged AND hour < ? ORDER BY hour LIMIT 1",
            (before_ms // HOUR_MS,),
        )
        if found is not None:
            return int(tx.scalar(_MERGE[table], found))
    return None


def prune(tx: Transaction, app_id: str, before_ms: int) -> None:
    """Forget the hours before `before_ms`, as retention prunes their events (no range a KPI may ask for reads
    them)."""
    for table in TABLES:
        tx.execute(f"DELETE FROM {table} WHERE app_id = ? AND hour < ?", (app_id, before_ms // HOUR_MS))


def _hours_and_edges(query: KpiQuery, table: str, rolled: str, edge_columns: str) -> tuple[str, list[Any]]:
    """A rollup's whole hours inside the range (its `rolled` columns), with the events of the first and last hours
    (which the range may cover only in part) as the same columns; and its parameters."""
    first, last = query.start_ms // HOUR_MS, query.end_ms // HOUR_MS
    hours = (
        f"SELECT app_id, event_type, hour * {HOUR_MS} AS event_at, {rolled} FROM {table} "
        "WHERE app_id = ? AND hour > ? AND hour < ?"
    )
    types = ", ".join("?" for _ in query.event_types)
    edge = (
        f"SELECT app_id, event_type, event_at, {edge_columns} FROM (SELECT *, doc::jsonb AS d FROM events "
        f"WHERE app_id = ? AND event_type IN ({types}) AND event_at BETWEEN ? AND ? {_PARSED_ONCE}) e"
    )
    params = [
        *(query.app_id, first, last),
        *(query.app_id, *query.event_types, query.start_ms, min(query.end_ms, (first + 1) * HOUR_MS - 1)),
        *(query.app_id, *query.event_types, max(last * HOUR_MS, (first + 1) * HOUR_MS), query.end_ms),
    ]
    return f"({hours} UNION ALL {edge} UNION ALL {edge}) src", params


class HourlyColumns(RolledColumns):
    """`kpi_hourly`'s whole hours inside the range, with the edge hours' events rolled up on the fly."""

    def __init__(self, query: KpiQuery) -> None:
        edges = f"{', '.join(rolled_keys(_attribute))}, 1 AS n, {_PARTS} AS parts, {_PRICE} AS price"
        self.table, self.table_params = _hours_and_edges(query, "kpi_hourly", f"{_KEY_COLUMNS}, n, parts, price", edges)


class RecipientColumns(RecipientRolledColumns):
    """`kpi_recipients`' whole hours inside the range, with the edge hours' events' recipients."""

    def __init__(self, query: KpiQuery) -> None:
        edges = f"{', '.join(rolled_keys(_attribute, RECIPIENT_KEYS))}, {_RECIPIENT} AS recipient"
        self.table, self.table_params = _hours_and_edges(
            query, "kpi_recipients", f"{_RECIPIENT_COLUMNS}, recipient", edges
        )


def columns_for(query: KpiQuery, dialect: Dialect) -> KpiColumns:
    """The rollups on PostgreSQL when they hold every event the query counts; the events otherwise."""
    if dialect.name == "postgresql" and all(is_rolled(kind) for kind in query.event_types):
        if rolls_up(query):
            return HourlyColumns(query)
        if recipients_roll_up(query):
            return RecipientColumns(query)
    return RowStoreColumns(dialect)


def run(tx: Transaction, query: KpiQuery) -> list[tuple[Any, ...]]:
    """The query's rows on the row store: (group value?, counter values...)."""
    sql, params = compile_kpi(query, columns_for(query, tx.dialect))
    for statement in tx.dialect.scan_settings:
        tx.execute(statement)
    return [tuple(row) for row in tx.fetchall(sql, params)]
