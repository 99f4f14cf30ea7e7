"""KPI queries on the DuckDB replica: the row store's compiler (clarion/store/kpi_sql.py) with the replica's columns.

The replica's `events` keep each event's attributes as MAP(VARCHAR, VARCHAR) and metrics as MAP(VARCHAR, DOUBLE),
so a counter reads a MAP entry where the row store parses JSON.
"""

from __future__ import annotations

from typing import Any

import duckdb

from clarion.store.kpi_sql import DAY_MS, KpiColumns, KpiQuery, compile_kpi


class ReplicaColumns(KpiColumns):
    table = "events"

    def attribute(self, name: str) -> str:
        return f"attributes['{name}']"

    def recipient(self) -> str:
        return f"CASE WHEN event_key <> '' THEN event_key ELSE '@' || {self.attribute('destination')} END"

    def parts(self) -> str:
        return f"coalesce(TRY_CAST({self.attribute('number_of_message_parts')} AS INTEGER), 1)"

    def price(self) -> str:
        return "coalesce(metrics['price_in_millicents_usd'], 0)"

    def day(self) -> str:
        return f"event_at // {DAY_MS}"


def run(con: duckdb.DuckDBPyConnection, query: KpiQuery) -> list[tuple[Any, ...]]:
    sql, params = compile_kpi(query, ReplicaColumns())
    return [tuple(row) for row in con.execute(sql, params).fetchall()]
