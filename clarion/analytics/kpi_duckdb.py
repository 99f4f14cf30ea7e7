"""KPI queries on the DuckDB replica: the row store's compiler (clarion/store/kpi_sql.py) with the replica's columns.

The replica's `events` keep each event's attributes as MAP(VARCHAR, VARCHAR) and metrics as MAP(VARCHAR, DOUBLE),
so a counter reads a MAP entry where the row store parses JSON. A KPI that only counts and sums reads the hourly
rollup `kpi_hourly` instead for the hours wholly inside its range, and the events of the two hours at its edges:
the same figures, exactly, from a few thousand rows. A KPI of distinct recipients unites sets of recipient numbers
(clarion/analytics/kpi_rollups.py): the day sets of the days wholly inside its range, the hour sets of its other
whole hours and the numbers its two edge hours' events carry, so its figures are exact too, at a cost that follows
the recipients in the range rather than the events. A KPI that filters or groups on an attribute a rollup does not
keep scans the events.
"""

from __future__ import annotations

from typing import Any

import duckdb
from pyroaring import BitMap

from clarion.analytics.kpi_rollups import DAY_HOURS, EVENT_PARTS, EVENT_PRICE, EVENT_RECIPIENT, rollup_columns
from clarion.store.kpi_sql import (
    DAY_MS,
    HOUR_MS,
    ROLLUP_ATTRIBUTES,
    KpiColumns,
    KpiQuery,
    RecipientRolledColumns,
    RolledColumns,
    compile_kpi,
    counter_condition,
    query_filter,
    recipients_roll_up,
    rolls_up,
)


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


class RollupColumns(RolledColumns):
    """The hourly rollup `kpi_hourly`, with the edge hours' events."""

    def __init__(self, query: KpiQuery) -> None:
        columns = "app_id, event_type, event_at, " + ", ".join(ROLLUP_ATTRIBUTES) + ", n, parts, price"
        edge = f"{rollup_columns('attributes', 'metrics')}, 1 AS n"
        self.table, self.table_params = _hours_and_edges(query, "kpi_hourly", columns, edge)

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


class RecipientSetColumns(RecipientRolledColumns):
    """The recipient sets `kpi_recipients` (one row per span, event type and RECIPIENT_KEYS)."""

    table = f"(SELECT *, hour * {HOUR_MS} AS event_at FROM kpi_recipients)"

    def recipient(self) -> str:
        return "recipients"

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


def _set_rows(
    query: KpiQuery, columns: KpiColumns, table: str, table_params: list[Any], payload: str
) -> tuple[str, list[Any]]:
    """`SELECT [group,] flag per counter, payload FROM table WHERE filter`, the payload NULL on rows no counter
    takes (a group with no recipient still appears, as in a scan, without its set being read)."""
    params: list[Any] = []
    selected = [] if query.group is None else [f"{columns.group(query.group)} AS g"]
    flags = [f"f{i}" for i in range(len(query.counters))]
    for counter, flag in zip(query.counters, flags, strict=True):
        selected.append(f"{counter_condition(counter, columns, params)} AS {flag}")
    params.extend(table_params)
    where = query_filter(query, columns, params)
    inner = f"SELECT {', '.join(selected)}, {payload} AS payload FROM {table} WHERE {where}"
    taken = " OR ".join(flags)
    return f"SELECT * EXCLUDE (payload), CASE WHEN {taken} THEN payload END AS payload FROM ({inner})", params


def _recipient_sets(con: duckdb.DuckDBPyConnection, query: KpiQuery) -> list[tuple[Any, ...]]:
    """Distinct recipients per group and counter: the day sets of the days wholly inside the range, the hour sets
    of its other whole hours, and the numbers the events of its two edge hours carry, united."""
    first, last = query.start_ms // HOUR_MS, query.end_ms // HOUR_MS
    # The first hours of the first and last days wholly within hours first + 1 .. last - 1 (none: an empty span).
    days = (-(-(first + 1) // DAY_HOURS) * DAY_HOURS, (last - DAY_HOURS) // DAY_HOURS * DAY_HOURS)
    if days[0] > days[1]:
        days = (0, -DAY_HOURS)
    spans = (
        f"SELECT * FROM {RecipientSetColumns.table} WHERE app_id = ? AND ((hours = {DAY_HOURS} AND hour BETWEEN ? "
        f"AND ?) OR (hours = 1 AND hour BETWEEN ? AND ? AND NOT hour BETWEEN ? AND ?))"
    )
    params: list[Any] = [query.app_id, *days, first + 1, last - 1, days[0], days[1] + DAY_HOURS - 1]
    sets_sql, sets_params = _set_rows(query, RecipientSetColumns(), f"({spans})", params, "recipients")
    edge = "SELECT * FROM events WHERE app_id = ? AND event_at BETWEEN ? AND ?"
    params = [
        *(query.app_id, query.start_ms, min(query.end_ms, (first + 1) * HOUR_MS - 1)),
        *(query.app_id, max(last * HOUR_MS, (first + 1) * HOUR_MS), query.end_ms),
    ]
    edge_sql, edge_params = _set_rows(query, ReplicaColumns(), f"({edge} UNION ALL {edge})", params, "recipient_id")
    grouped = int(query.group is not None)
    edge_sql = (
        f"SELECT * EXCLUDE (payload), list(payload) FILTER (WHERE payload IS NOT NULL) FROM ({edge_sql}) GROUP BY ALL"
    )
    found: dict[Any, list[list[BitMap]]] = {}
    for sql, params, read in ((sets_sql, sets_params, BitMap.deserialize), (edge_sql, edge_params, BitMap)):
        for row in con.execute(sql, params).fetchall():
            group = row[0] if grouped else None
            sets = found.setdefault(group, [[] for _ in query.counters])
            if row[-1] is None:
                continue
            recipients = read(row[-1])
            for counter, taken in enumerate(row[grouped:-1]):
                if taken:
                    sets[counter].append(recipients)
    if not grouped and not found:
        found[None] = [[] for _ in query.counters]
    return [
        (*((group,) if grouped else ()), *(len(BitMap.union(*parts)) if parts else 0 for parts in sets))
        for group, sets in found.items()
    ]


def columns_for(query: KpiQuery) -> KpiColumns:
    """The cheapest source that gives the query's exact figures."""
    if rolls_up(query):
        return RollupColumns(query)
    if recipients_roll_up(query):
        return RecipientSetColumns()
    return ReplicaColumns()


def run(con: duckdb.DuckDBPyConnection, query: KpiQuery) -> list[tuple[Any, ...]]:
    columns = columns_for(query)
    if isinstance(columns, RecipientSetColumns):
        return _recipient_sets(con, query)
    sql, params = compile_kpi(query, columns)
    return [tuple(row) for row in con.execute(sql, params).fetchall()]
