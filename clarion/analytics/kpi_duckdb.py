"""KPI queries on the DuckDB replica: the row store's compiler (clarion/store/kpi_sql.py) with the replica's columns.

The replica's `events` keep each event's attributes as MAP(VARCHAR, VARCHAR) and metrics as MAP(VARCHAR, DOUBLE),
so a counter reads a MAP entry where the row store parses JSON. A KPI that only counts and sums reads the hourly
rollup `kpi_hourly` instead for the hours wholly inside its range, and the events of the two hours at its edges:
the same figures, exactly, from a few thousand rows. A KPI of distinct recipients reads, the same way, the hourly
recipients rollup `kpi_recipients` (one narrow row per recipient, hour and campaign activity instead of every event
with its attribute MAP): a recipient counted in two parts of the range is one value of the distinct count, so the
figures are exact too. A KPI that filters or groups on an attribute a rollup does not keep scans the events.
"""

from __future__ import annotations

from typing import Any

import duckdb

from clarion.analytics.replica import (
    EVENT_PARTS,
    EVENT_PRICE,
    EVENT_RECIPIENT,
    HOUR_MS,
    RECIPIENT_EVENT_TYPES,
    RECIPIENT_KEYS,
    ROLLUP_ATTRIBUTES,
    rollup_columns,
    rollup_keys,
)
from clarion.store.kpi_sql import DAY_MS, Aggregate, Group, KpiColumns, KpiQuery, compile_kpi

# Event attribute -> the rollup column holding it.
_ROLLED = {name: column for column, names in ROLLUP_ATTRIBUTES.items() for name in names}
_RECIPIENT_ROLLED = {name: column for name, column in _ROLLED.items() if column in RECIPIENT_KEYS}


class ReplicaColumns(KpiColumns):
    table = "events"

    def attribute(self, name: str) -> str:
        return f"attributes['{name}']"

    def recipient(self) -> str:
        return EVENT_RECIPIENT.format("event_key", "attributes")

    def parts(self) -> str:
        return EVENT_PARTS.format("attributes", "metrics")

    def price(self) -> str:
        return EVENT_PRICE.format("attributes", "metrics")

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


def _hours_and_edges(query: KpiQuery, rollup: str, columns: str, edge_columns: str) -> tuple[str, tuple[Any, ...]]:
    """A rollup's rows for the hours strictly inside the range, with the events of the first and last hours (which
    the range may cover only in part) rolled up on the fly into the same `columns`; and its parameters."""
    first, last = query.start_ms // HOUR_MS, query.end_ms // HOUR_MS
    # Each edge is its own narrow time range, so that DuckDB's zone maps skip every other row group (an OR of
    # the two would read the whole range). With a range inside one hour the second edge is empty.
    edge = (
        f"SELECT app_id, event_type, event_at, {edge_columns} FROM events WHERE app_id = ? AND event_at BETWEEN ? AND ?"
    )
    table = (
        f"(SELECT {columns} FROM (SELECT *, hour * {HOUR_MS} AS event_at FROM {rollup} "
        f"WHERE app_id = ? AND hour > ? AND hour < ?) UNION ALL BY NAME {edge} UNION ALL BY NAME {edge}) src"
    )
    params = (
        *(query.app_id, first, last),
        *(query.app_id, query.start_ms, min(query.end_ms, (first + 1) * HOUR_MS - 1)),
        *(query.app_id, max(last * HOUR_MS, (first + 1) * HOUR_MS), query.end_ms),
    )
    return table, params


class RollupColumns(KpiColumns):
    """The hourly rollup `kpi_hourly`, with the edge hours' events."""

    def __init__(self, query: KpiQuery) -> None:
        columns = "app_id, event_type, event_at, " + ", ".join(ROLLUP_ATTRIBUTES) + ", n, parts, price"
        edge = f"{rollup_columns('attributes', 'metrics')}, 1 AS n"
        self.table, self.table_params = _hours_and_edges(query, "kpi_hourly", columns, edge)

    def attribute(self, name: str) -> str:
        return f"nullif({_ROLLED[name]}, '')"

    def recipient(self) -> str:
        raise ValueError("distinct recipients cannot be read from the rollup")

    def weight(self) -> str:
        return "n"

    def parts(self) -> str:
        return "parts"

    def price(self) -> str:
        return "price"

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


class RecipientColumns(KpiColumns):
    """The hourly recipients rollup `kpi_recipients`, with the edge hours' events; only distinct recipients of the
    attributes it keeps can be read from it (`attribute` raises KeyError for another)."""

    def __init__(self, query: KpiQuery) -> None:
        columns = "app_id, event_type, event_at, " + ", ".join(RECIPIENT_KEYS) + ", recipient"
        recipient = EVENT_RECIPIENT.format("event_key", "attributes")
        edge = f"{', '.join(rollup_keys('attributes', RECIPIENT_KEYS))}, {recipient} AS recipient"
        self.table, self.table_params = _hours_and_edges(query, "kpi_recipients", columns, edge)

    def attribute(self, name: str) -> str:
        return f"nullif({_RECIPIENT_ROLLED[name]}, '')"

    def recipient(self) -> str:
        return "recipient"

    def day(self) -> str:
        return f"event_at // {DAY_MS}"

    def parts(self) -> str:
        raise ValueError("the recipients rollup keeps no SMS parts")

    def price(self) -> str:
        raise ValueError("the recipients rollup keeps no prices")


def rolls_up(query: KpiQuery) -> bool:
    """Whether the rollup answers the query: no distinct counts, and only rolled-up attributes filtered on."""
    return all(
        counter.aggregate is not Aggregate.RECIPIENTS and all(name in _ROLLED for name, _ in counter.where)
        for counter in query.counters
    )


def recipients_roll_up(query: KpiQuery) -> bool:
    """Whether the recipients rollup answers the query: distinct recipients only, of the event types it keeps, and
    only the attributes it keeps filtered on, scoped on and grouped by."""
    if query.group not in (None, Group.DATE, Group.CAMPAIGN, Group.ACTIVITY):
        return False
    return all(
        counter.aggregate is Aggregate.RECIPIENTS
        and set(counter.event_types) <= set(RECIPIENT_EVENT_TYPES)
        and all(name in _RECIPIENT_ROLLED for name, _ in counter.where)
        for counter in query.counters
    )


def columns_for(query: KpiQuery) -> KpiColumns:
    """The cheapest source that gives the query's exact figures."""
    if rolls_up(query):
        return RollupColumns(query)
    if recipients_roll_up(query):
        return RecipientColumns(query)
    return ReplicaColumns()


def run(con: duckdb.DuckDBPyConnection, query: KpiQuery) -> list[tuple[Any, ...]]:
    sql, params = compile_kpi(query, columns_for(query))
    return [tuple(row) for row in con.execute(sql, params).fetchall()]
