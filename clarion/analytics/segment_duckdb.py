"""Segment membership as one DuckDB query over the columnar replica (clarion/analytics/replica.py).

The same plan (clarion/segments/plan.py states the semantics) and the same reads as the row-store compiler in
clarion/store/segment_sql.py — count, per-channel counts, keyset pages of member ids, a sample — but over typed
columns: a metric with a slot is a DOUBLE column and an attribute value with a bit a bit test (others are read from
the `metrics` MAP and the `attribute_pairs` list), the last activity sits on the endpoint row, events are a column
table, and imported segments' members are a table of their own (`segment_members`), so every plan is answered here.

Three-valued logic is handled by polarity, as in the row-store compiler (whose ConditionCompiler writes the boolean
structure for both): a condition that can only make a row qualify (not under a NOT) may be NULL, which WHERE treats
as false, so DuckDB can push plain comparisons into the scan; under a NOT every leaf is wrapped to be exactly TRUE
or FALSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from clarion.analytics.replica import INSTANT_MS, attribute_pair
from clarion.instants import INSTANT_PATTERN
from clarion.segments import plan
from clarion.segments.plan import Node
from clarion.store.segment_sql import DEGREE, SENDABLE, ConditionCompiler, engagement_measure

_COLUMNS = {
    plan.Field.CHANNEL: "e.channel_type",
    plan.Field.APP_VERSION: "e.app_version",
    plan.Field.MAKE: "e.make",
    plan.Field.MODEL: "e.model",
    plan.Field.PLATFORM: "e.platform",
    plan.Field.COUNTRY: "e.country",  # upper-cased in the replica
}


@dataclass
class _Compiler(ConditionCompiler):
    app_id: str
    metric_slots: dict[str, int]  # the project's metric names that have a column of their own, and its slot
    attribute_bits: dict[str, int]  # the project's attribute pairs (attribute_pair) that have a bit, and its bit
    params: list[Any] = field(default_factory=list)
    uses_users: bool = False

    def bind(self, *values: Any) -> str:
        """Append parameters; return their numbered placeholders (so SQL text may be assembled in any order)."""
        start = len(self.params)
        self.params.extend(values)
        return ", ".join(f"${n}" for n in range(start + 1, len(self.params) + 1))

    def leaf(self, node: Node) -> str:
        match node:
            case plan.FieldIn(field_, values):
                if field_ not in _COLUMNS:
                    return "FALSE"  # DeviceType: no endpoint field holds it
                return f"{_COLUMNS[field_]} IN ({self.bind(*values)})"
            case plan.AttributeCondition():
                return self.attribute(node)
            case plan.MetricCompare(name, comparison, value):
                slot = self.metric_slots.get(name)
                column = f"e.metric_{slot}" if slot is not None else f"e.metrics[{self.bind(name)}]"
                return f"{column} {comparison.value} {self.bind(value)}"
            case plan.WithinDistance():
                return self.within(node)
            case plan.ActiveSince(start_ms):
                return f"e.active_ms >= {self.bind(start_ms)}"
            case plan.EventCount():
                return self.event_count(node)
            case plan.EngagementWithin():
                return self.engagement(node)
            case plan.InImport(segment_id):
                members = "m.app_id = " + self.bind(self.app_id) + " AND m.segment_id = " + self.bind(segment_id)
                return f"e.endpoint_key IN (SELECT m.endpoint_key FROM segment_members m WHERE {members})"
        raise TypeError(f"not a plan node: {node!r}")

    def engagement(self, node: plan.EngagementWithin) -> str:
        """The measure over the replica's running totals of the endpoint (or of every endpoint of its user)."""
        measure = engagement_measure(node, "g.last_ms", "g.events", "g.revenue", self.bind)
        where = f"g.app_id = {self.bind(self.app_id)} AND g.event_key = e.event_key"
        own = f"coalesce((SELECT {measure} FROM engagement g WHERE {where}), 0)"
        if node.of_user:
            measure = engagement_measure(node, "g.last_ms", "g.events", "g.revenue", self.bind)
            keys = "SELECT u2.event_key FROM endpoints u2 WHERE u2.app_id = e.app_id AND u2.user_id = e.user_id"
            totals = (
                "SELECT max(last_ms) AS last_ms, coalesce(sum(events), 0) AS events, "
                "coalesce(sum(revenue), 0) AS revenue "
                f"FROM engagement WHERE app_id = {self.bind(self.app_id)} AND event_key IN ({keys})"
            )
            own = f"(CASE WHEN e.user_id IS NULL THEN {own} ELSE (SELECT {measure} FROM ({totals}) g) END)"
        return f"{own} BETWEEN {self.bind(node.minimum)} AND {self.bind(node.maximum)}"

    def attribute(self, node: plan.AttributeCondition) -> str:
        row = "e"
        if node.source is plan.Source.USER:
            self.uses_users = True
            row = "u"
        match node.operator:
            case plan.Operator.INCLUSIVE:
                return self.has_pair(row, node)
            case plan.Operator.EXCLUSIVE:
                return f"NOT coalesce({self.has_pair(row, node)}, FALSE)"
        values = f"{row}.attributes[{self.bind(node.name)}]"
        match node.operator:
            case plan.Operator.CONTAINS:
                wanted = " OR ".join(f"contains(v, {self.bind(value)})" for value in node.values)
                return f"len(list_filter({values}, lambda v: {wanted})) > 0"
        instant = INSTANT_MS.format("v", INSTANT_PATTERN)
        match node.operator:
            case plan.Operator.BEFORE:
                test = f"{instant} < {self.bind(max(node.instants))}"
            case plan.Operator.AFTER:
                test = f"{instant} > {self.bind(min(node.instants))}"
            case plan.Operator.BETWEEN:
                start, end = node.instants
                test = f"{instant} BETWEEN {self.bind(start)} AND {self.bind(end)}"
            case plan.Operator.ON:
                days = sorted({ms // plan.DAY_MS for ms in node.instants})
                # the UTC calendar day, floored like Python's `//` (DuckDB's `//` and `%` truncate toward zero)
                at, d = f"({instant})", plan.DAY_MS
                test = f"list_contains({self.bind(days)}::BIGINT[], ({at} - ({at} % {d} + {d}) % {d}) // {d})"
            case _:
                raise ValueError(f"unknown operator {node.operator}")
        return f"len(list_filter({values}, lambda v: coalesce({test}, FALSE))) > 0"

    def has_pair(self, row: str, node: plan.AttributeCondition) -> str:
        """Some value of the attribute equals some criterion: an endpoint's bit for the values that have one, else
        membership in the row's attribute_pairs."""
        pairs = [attribute_pair(node.name, value) for value in node.values]
        bits = self.attribute_bits if row == "e" else {}
        mask = sum(1 << bits[pair] for pair in pairs if pair in bits)
        tests = [f"({row}.attribute_bits & {mask}::UBIGINT) <> 0"] if mask else []
        tests += [f"list_contains({row}.attribute_pairs, {self.bind(pair)})" for pair in pairs if pair not in bits]
        return "(" + " OR ".join(tests) + ")"

    def within(self, node: plan.WithinDistance) -> str:
        """Haversine, term for term like clarion.segments.reference.haversine_km (point first, endpoint second)."""
        p1 = node.latitude * DEGREE
        half_dp = f"sin((e.latitude * {self.bind(DEGREE)} - {self.bind(p1)}) / 2)"
        half_dl = f"sin((e.longitude - {self.bind(node.longitude)}) * {self.bind(DEGREE)} / 2)"
        cosines = f"{self.bind(math.cos(p1))} * cos(e.latitude * {self.bind(DEGREE)})"
        a = f"pow({half_dp}, 2) + {cosines} * pow({half_dl}, 2)"
        distance = f"{self.bind(2 * plan.EARTH_RADIUS_KM)} * asin(least(1.0, sqrt({a})))"
        return f"{distance} <= {self.bind(node.kilometers)}"

    def event_count(self, node: plan.EventCount) -> str:
        where = f"ev.app_id = {self.bind(self.app_id)} AND ev.event_type = {self.bind(node.event_type)}"
        if node.start_ms is not None:
            where += f" AND ev.event_at >= {self.bind(node.start_ms)}"
        for name, values in node.attributes:
            where += f" AND coalesce(ev.attributes[{self.bind(name)}] IN ({self.bind(*values)}), FALSE)"
        return (
            f"e.event_key IN (SELECT ev.event_key FROM events ev WHERE {where} "
            f"GROUP BY ev.event_key HAVING count(*) >= {self.bind(node.minimum)})"
        )


def _where(con: duckdb.DuckDBPyConnection, app_id: str, node: Node, sendable_only: bool) -> tuple[str, _Compiler]:
    """`FROM ... WHERE ...` text selecting the members of `node`, and its compiler holding the parameters so far.

    A metric's slot or a value's bit, read here and used by the query after, cannot go stale in between: each keeps
    its slot or bit for the replica's life (a rebuild starts them over with every row), and one without is read from
    the `metrics` MAP or `attribute_pairs`, which every row holds whole (clarion/analytics/replica.py)."""
    slots = con.execute("SELECT name, slot FROM metric_slots WHERE app_id = ?", [app_id]).fetchall()
    bits = con.execute("SELECT pair, bit FROM attribute_slots WHERE app_id = ?", [app_id]).fetchall()
    compiler = _Compiler(app_id, dict(slots), dict(bits))
    app = compiler.bind(app_id)
    condition = compiler.condition(node, exact=False)
    source = "endpoints e"
    if compiler.uses_users:
        source += " LEFT JOIN users u ON u.app_id = e.app_id AND u.user_id = e.user_id"
    return f"FROM {source} WHERE e.app_id = {app} AND {condition}{SENDABLE if sendable_only else ''}", compiler


def count(con: duckdb.DuckDBPyConnection, app_id: str, node: Node, *, sendable_only: bool = False) -> int:
    where, compiler = _where(con, app_id, node, sendable_only)
    return int(con.execute(f"SELECT count(*) {where}", compiler.params).fetchone()[0])  # type: ignore[index]


def channel_counts(
    con: duckdb.DuckDBPyConnection, app_id: str, node: Node, *, sendable_only: bool = False
) -> dict[str, int]:
    """Members per ChannelType; endpoints without one are counted under ""."""
    where, compiler = _where(con, app_id, node, sendable_only)
    rows = con.execute(f"SELECT coalesce(e.channel_type, ''), count(*) {where} GROUP BY 1", compiler.params).fetchall()
    return {channel: int(n) for channel, n in rows}


def execute_members(con: duckdb.DuckDBPyConnection, app_id: str, node: Node, sendable_only: bool = False) -> None:
    """Start the query of every member's id in key order on `con`; the caller streams it with fetchmany."""
    where, compiler = _where(con, app_id, node, sendable_only)
    con.execute(f"SELECT e.id {where} ORDER BY e.endpoint_key", compiler.params)


def sample(
    con: duckdb.DuckDBPyConnection, app_id: str, node: Node, size: int, *, sendable_only: bool = False
) -> list[str]:
    """Up to `size` member ids spread over cohorts, the same ones on every call."""
    where, compiler = _where(con, app_id, node, sendable_only)
    rows = con.execute(
        f"SELECT e.id {where} ORDER BY e.cohort_id, e.endpoint_key LIMIT {compiler.bind(size)}", compiler.params
    ).fetchall()
    return [row[0] for row in rows]
