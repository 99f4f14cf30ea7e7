"""KPI queries on the DuckDB replica: the row store's compiler (clarion/store/kpi_sql.py) with the replica's columns.

The replica's `events` keep each event's attributes as MAP(VARCHAR, VARCHAR) and metrics as MAP(VARCHAR, DOUBLE),
so a counter reads a MAP entry where the row store parses JSON. A KPI that only counts and sums (no distinct
recipients) reads the hourly rollup `kpi_hourly` instead for the hours wholly inside its range, and the events of
the two hours at its edges: the same figures, exactly, from a few thousand rows.
"""

from __future__ import annotations

from typing import Any

import duckdb

from clarion.analytics.replica import EVENT_PARTS, EVENT_PRICE, HOUR_MS, ROLLUP_ATTRIBUTES, rollup_columns
from clarion.store.kpi_sql import DAY_MS, Aggregate, KpiColumns, KpiQuery, compile_kpi

# Event attribute -> the rollup column holding it.
_ROLLED = {name: column for column, names in ROLLUP_ATTRIBUTES.items() for name in names}


class ReplicaColumns(KpiColumns):
    table = "events"

    def attribute(self, name: str) -> str:
        return f"attributes['{name}']"

    def recipient(self) -> str:
        return f"CASE WHEN event_key <> '' THEN event_key ELSE '@' || {self.attribute('destination')} END"

    def parts(self) -> str:
        return EVENT_PARTS.format("attributes", "metrics")

    def price(self) -> str:
        return EVENT_PRICE.format("attributes", "metrics")

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


class RollupColumns(KpiColumns):
    """The rollup's rows for the hours strictly inside the range, with the events of the first and last hours
    (which the range may cover only in part) rolled up on the fly into the same columns."""

    def __init__(self, query: KpiQuery) -> None:
        first, last = query.start_ms // HOUR_MS, query.end_ms // HOUR_MS
        columns = "app_id, event_type, event_at, " + ", ".join(ROLLUP_ATTRIBUTES) + ", n, parts, price"
        # Each edge is its own narrow time range, so that DuckDB's zone maps skip every other row group (an OR of
        # the two would read the whole range). With a range inside one hour the second edge is empty.
        edge = (
            f"SELECT app_id, event_type, event_at, {rollup_columns('attributes', 'metrics')}, 1 AS n "
            "FROM events WHERE app_id = ? AND event_at BETWEEN ? AND ?"
        )
        self.table = (
            f"(SELECT {columns} FROM (SELECT *, hour * {HOUR_MS} AS event_at FROM kpi_hourly "
            f"WHERE app_id = ? AND hour > ? AND hour < ?) UNION ALL BY NAME {edge} UNION ALL BY NAME {edge}) src"
        )
        self.table_params = (
            *(query.app_id, first, last),
            *(query.app_id, query.start_ms, min(query.end_ms, (first + 1) * HOUR_MS - 1)),
            *(query.app_id, max(last * HOUR_MS, (first + 1) * HOUR_MS), query.end_ms),
        )

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


def rolls_up(query: KpiQuery) -> bool:
    """Whether the rollup answers the query: no distinct counts, and only rolled-up attributes filtered on."""
    return all(
        counter.aggregate is not Aggregate.RECIPIENTS and all(name in _ROLLED for name, _ in counter.where)
        for counter in query.counters
    )


def run(con: duckdb.DuckDBPyConnection, query: KpiQuery) -> list[tuple[Any, ...]]:
    columns = RollupColumns(query) if rolls_up(query) else ReplicaColumns()
    sql, params = compile_kpi(query, columns)
    return [tuple(row) for row in con.execute(sql, params).fetchall()]
