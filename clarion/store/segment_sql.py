"""Segment membership as one SQL query over the row store, the same code for SQLite and PostgreSQL.

A plan (clarion/segments/plan.py, which states the semantics) compiles to a boolean expression over one endpoint row
`e` (with its user row `u` when the plan reads user attributes); the reads below wrap it into a count, per-channel
counts, a keyset page of member ids or a sample. Because it reads the live tables, an endpoint update or an event is
visible to the next evaluation.

Rules the compiler keeps:
- Polarity: a condition outside any NOT may be NULL (WHERE treats it as false), so it stays a bare comparison that
  an index can serve; under a NOT every leaf is wrapped to be exactly TRUE or FALSE, so `NOT` is exact.
- Cost order: the terms of an AND (and of an OR) are written cheapest first — endpoint fields, then conditions that
  read the endpoint's JSON lists and maps, then event and import subqueries — because SQLite evaluates them in the
  order written and stops at the first that fails; PostgreSQL orders them by its own costs anyway.
- Parameters are appended in the order their `?` appear; JSON is read with json_each / json_extract on SQLite and
  jsonb on PostgreSQL (`Dialect.json_text` for fixed paths, shared with the index definitions).

The plan the bench's 5-condition count relies on (`tests/test_segment_sql.py` checks it on both stores): the
candidates come from the index `endpoints_by_country_platform (app_id, upper(country), platform)` (migration 14),
and the recency condition probes `events_by_endpoint (app_id, lower(endpoint_id), ...)` once or twice per remaining
candidate; every other condition is evaluated on the candidate rows.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from clarion.clock import iso_millis
from clarion.instants import INSTANT_PATTERN
from clarion.segments import plan
from clarion.segments.plan import Node
from clarion.store.database import Transaction
from clarion.store.events import app_event_sql, purchase_value_sql

DEGREE = math.pi / 180  # passed as a parameter so SQL and Python multiply by the very same double
_OFFSET_PATTERN = "(Z|[+-][0-9]{2}:[0-9]{2})$"
# What sendable_only adds: campaigns message ACTIVE endpoints that have not opted out.
SENDABLE = " AND e.endpoint_status = 'ACTIVE' AND e.opt_out = 'NONE'"
_USERS = " LEFT JOIN users u ON u.app_id = e.app_id AND u.user_id = e.user_id"
# An event of endpoint `e`, as a probe of events_by_endpoint. SQLite gives an index on an expression no
# affinity and will not use it for a comparison with a TEXT column (whose affinity would apply to both sides); the
# concatenation has no affinity either, so the index is used. PostgreSQL probes the same index with it.
_EVENT_OF_ENDPOINT = "ev.app_id = ? AND lower(ev.endpoint_id) = e.endpoint_key || ''"


def _cost(node: Node) -> int:
    """How dear a condition is per endpoint: 0 an endpoint field, 1 a JSON list or map, 2 a subquery."""
    match node:
        case plan.AllOf(children) | plan.AnyOf(children):
            return max((_cost(child) for child in children), default=0)
        case plan.Not(child) | plan.InSegment(plan=child):
            return _cost(child)
        case plan.FieldIn():
            return 0
        case plan.AttributeCondition() | plan.MetricCompare() | plan.WithinDistance():
            return 1
    return 2


def engagement_measure(
    node: plan.EngagementWithin, last: str, events: str, revenue: str, bind: Callable[[Any], str]
) -> str:
    """The node's measure as SQL over an activity's aggregates (latest app event, app events, revenue), by plan.py's
    bands; `bind` appends a parameter and answers its placeholder, in the order the text is written. The row store
    and DuckDB both spell it so."""
    parts = []
    if node.measure in ("Score", "Recency"):
        bands = " ".join(f"WHEN {last} >= {bind(start)} THEN {5 - n}" for n, start in enumerate(node.recency_starts))
        parts.append(f"(CASE WHEN {last} IS NULL THEN 0 {bands} ELSE 1 END)")
    if node.measure in ("Score", "Frequency"):
        parts += [f"(CASE WHEN {events} >= {least} THEN 1 ELSE 0 END)" for least in plan.FREQUENCY_AT_LEAST]
    if node.measure in ("Score", "Monetary"):
        steps = " + ".join(f"(CASE WHEN {revenue} >= {least} THEN 1 ELSE 0 END)" for least in plan.MONETARY_AT_LEAST)
        parts.append(f"(CASE WHEN {revenue} > 0 THEN 1 + {steps} ELSE 0 END)")
    return "(" + " + ".join(parts) + ")"


class ConditionCompiler(ABC):
    """The boolean structure of a plan as SQL, by the polarity and cost-order rules above; a subclass writes the
    leaves. Shared by this module's compiler and the DuckDB engine's (clarion/analytics/segment_duckdb.py)."""

    def condition(self, node: Node, exact: bool) -> str:
        """SQL for `node`; `exact` demands TRUE/FALSE (the result may be negated), else NULL may stand for FALSE."""
        match node:
            case plan.AllOf(children):
                parts = [self.condition(c, exact) for c in sorted(children, key=_cost)]
                return "(" + " AND ".join(parts) + ")" if parts else "TRUE"
            case plan.AnyOf(children):
                parts = [self.condition(c, exact) for c in sorted(children, key=_cost)]
                return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
            case plan.Not(child):
                return f"(NOT {self.condition(child, True)})"
            case plan.InSegment(_, _, inner):
                return self.condition(inner, exact)
        leaf = self.leaf(node)
        return f"coalesce({leaf}, FALSE)" if exact else leaf

    @abstractmethod
    def leaf(self, node: Node) -> str:
        """SQL for a condition that is not AllOf, AnyOf, Not or InSegment; it may be NULL."""


class _Compiler(ConditionCompiler):
    def __init__(self, tx: Transaction, app_id: str) -> None:
        self.postgres = tx.dialect.name == "postgresql"
        self.dialect = tx.dialect
        self.app_id = app_id
        self.params: list[Any] = []
        self.uses_users = False

    def bind(self, *values: Any) -> None:
        self.params.extend(values)

    def one_of(self, column: str, values: Sequence[Any]) -> str:
        sql, params = self.dialect.one_of(column, values)
        self.params.extend(params)
        return sql

    def leaf(self, node: Node) -> str:
        match node:
            case plan.FieldIn():
                return self.field_in(node)
            case plan.AttributeCondition():
                return self.attribute(node)
            case plan.MetricCompare():
                return self.metric(node)
            case plan.WithinDistance():
                return self.within(node)
            case plan.ActiveSince(start_ms):
                return self.active_since(start_ms)
            case plan.EventCount():
                return self.event_count(node)
            case plan.EngagementWithin():
                return self.engagement(node)
            case plan.InImport(segment_id):
                self.bind(self.app_id, segment_id)
                return (
                    "(e.endpoint_key IN (SELECT si.endpoint_key FROM segment_imports si "
                    "WHERE si.app_id = ? AND si.segment_id = ?))"
                )
        raise TypeError(f"not a plan node: {node!r}")

    # Endpoint fields ------------------------------------------------------------------------------------------

    def field_in(self, node: plan.FieldIn) -> str:
        """The endpoint field, spelt as endpoints_by_country_platform indexes it (for country and platform)."""
        if not node.field.path:
            return "(1=0)"
        if node.field is plan.Field.CHANNEL:
            column = "e.channel_type"
        else:
            column = self.dialect.json_text("e.doc", node.field.path)
        if node.field is plan.Field.COUNTRY:
            column = f"upper({column})"
        return self.one_of(column, node.values)

    # Attributes -----------------------------------------------------------------------------------------------

    def attribute(self, node: plan.AttributeCondition) -> str:
        if node.source is plan.Source.USER:
            self.uses_users = True
        if node.operator is plan.Operator.EXCLUSIVE:
            inclusive = plan.AttributeCondition(node.source, node.name, plan.Operator.INCLUSIVE, node.values)
            return f"(NOT {self.attribute(inclusive)})"
        if node.operator in plan.DATE_OPERATORS:
            # the instant is computed once per value in an inner select, then compared as `t.ms`
            instant = self.instant("v.value")
            values = self.attribute_values(node.source, node.name)
            return f"EXISTS (SELECT 1 FROM (SELECT {instant} AS ms FROM {values}) t WHERE {self.instant_matches(node)})"
        values = self.attribute_values(node.source, node.name)
        return f"EXISTS (SELECT 1 FROM {values} AND {self.value_matches(node)})"

    def attribute_values(self, source: plan.Source, name: str) -> str:
        """`FROM` text yielding one row per value `v.value` of the attribute, ending in an open `WHERE`."""
        self.bind(name)
        if self.postgres:
            document = "e.doc::jsonb -> 'Attributes'" if source is plan.Source.ENDPOINT else "u.attributes::jsonb"
            return f"jsonb_array_elements_text(coalesce({document} -> ?, '[]'::jsonb)) AS v(value) WHERE TRUE"
        document = "json_each(e.doc, '$.Attributes')" if source is plan.Source.ENDPOINT else "json_each(u.attributes)"
        return f"{document} AS a, json_each(a.value) AS v WHERE a.key = ?"

    def value_matches(self, node: plan.AttributeCondition) -> str:
        if node.operator is plan.Operator.INCLUSIVE:
            return self.one_of("v.value", node.values)
        # CONTAINS: a case-sensitive substring test (LIKE would fold case on SQLite)
        position = "strpos(v.value, ?)" if self.postgres else "instr(v.value, ?)"
        self.bind(*node.values)
        return "(" + " OR ".join(f"{position} > 0" for _ in node.values) + ")"

    def instant_matches(self, node: plan.AttributeCondition) -> str:
        match node.operator:
            case plan.Operator.BEFORE:
                self.bind(max(node.instants))
                return "t.ms < ?"
            case plan.Operator.AFTER:
                self.bind(min(node.instants))
                return "t.ms > ?"
            case plan.Operator.BETWEEN:
                self.bind(*node.instants)
                return "t.ms BETWEEN ? AND ?"
            case plan.Operator.ON:
                days = sorted({ms // plan.DAY_MS for ms in node.instants})
                for day in days:
                    self.bind(day * plan.DAY_MS, (day + 1) * plan.DAY_MS)
                return "(" + " OR ".join("(t.ms >= ? AND t.ms < ?)" for _ in days) + ")"
        raise ValueError(f"not a date operator: {node.operator}")

    def instant(self, text: str) -> str:
        """Epoch ms of a string in clarion.instants' syntax, NULL otherwise; never raises."""
        if not self.postgres:
            return f"clarion_instant_ms({text})"
        # PostgreSQL 15 has no safe cast: the pattern admits only well-formed text, the inner CASE rejects days past
        # the month's end and year 0 before anything is cast (CASE is the one construct whose order is guaranteed).
        year, month, day = (f"CAST(substr({text}, {start}, {n}) AS int)" for start, n in ((1, 4), (6, 2), (9, 2)))
        month_end = f"extract(day from make_date({year}, {month}, 1) + interval '1 month' - interval '1 day')"
        with_offset = f"CASE WHEN {text} ~ '{_OFFSET_PATTERN}' THEN {text} ELSE {text} || ' +00:00' END"
        epoch = f"CAST(floor(extract(epoch from CAST({with_offset} AS timestamptz)) * 1000) AS bigint)"
        return (
            f"(CASE WHEN {text} ~ '{INSTANT_PATTERN}' THEN CASE WHEN {year} = 0 THEN NULL "
            f"WHEN {day} <= {month_end} THEN {epoch} END END)"
        )

    # Metrics and location -------------------------------------------------------------------------------------

    def metric(self, node: plan.MetricCompare) -> str:
        operator = node.comparison.value
        self.bind(node.name, node.value)
        if self.postgres:
            return f"CAST(e.doc::jsonb -> 'Metrics' ->> ? AS double precision) {operator} ?"
        return f"EXISTS (SELECT 1 FROM json_each(e.doc, '$.Metrics') m WHERE m.key = ? AND m.value {operator} ?)"

    def within(self, node: plan.WithinDistance) -> str:
        """Haversine, written term for term like clarion.segments.reference.haversine_km (same doubles)."""
        latitude, longitude = self.doc_number("Latitude"), self.doc_number("Longitude")
        smaller = "least" if self.postgres else "min"
        point = node.latitude * DEGREE
        half_dp = "sin((" + latitude + " * ? - ?) / 2)"
        half_dl = "sin((" + longitude + " - ?) * ? / 2)"
        self.bind(2 * plan.EARTH_RADIUS_KM)
        self.bind(DEGREE, point, DEGREE, point, math.cos(point), DEGREE)
        self.bind(node.longitude, DEGREE, node.longitude, DEGREE, node.kilometers)
        a = f"{half_dp} * {half_dp} + ? * cos({latitude} * ?) * {half_dl} * {half_dl}"
        return f"? * asin({smaller}(1.0, sqrt({a}))) <= ?"

    def doc_number(self, member: str) -> str:
        if self.postgres:
            return f"CAST(e.doc::jsonb -> 'Location' ->> '{member}' AS double precision)"
        return f"json_extract(e.doc, '$.Location.{member}')"

    # Events ---------------------------------------------------------------------------------------------------

    def active_since(self, start_ms: int) -> str:
        """Latest event at or after start, or no events at all and EffectiveDate at or after start.

        Two probes of events_by_endpoint per endpoint that reaches this condition (written last, so on a
        selective segment few do), never a set of every endpoint with events: PostgreSQL cannot hash such a set
        past work_mem and rescans it per endpoint (a NOT IN of it ran past 15 minutes at 10M endpoints).
        """
        self.bind(self.app_id, start_ms, iso_millis_of(start_ms), self.app_id)
        return (
            f"(EXISTS (SELECT 1 FROM events ev WHERE {_EVENT_OF_ENDPOINT} AND ev.event_at >= ?)"
            f" OR (e.effective_at >= ? AND NOT EXISTS (SELECT 1 FROM events ev WHERE {_EVENT_OF_ENDPOINT})))"
        )

    def event_count(self, node: plan.EventCount) -> str:
        where = "ev.app_id = ? AND ev.event_type = ?"
        self.bind(self.app_id, node.event_type)
        if node.start_ms is not None:
            where += " AND ev.event_at >= ?"
            self.bind(node.start_ms)
        for name, values in node.attributes:
            where += " AND " + self.event_attribute(name, values)
        self.bind(node.minimum)
        return (
            f"(e.endpoint_key IN (SELECT lower(ev.endpoint_id) FROM events ev WHERE {where} "
            "GROUP BY lower(ev.endpoint_id) HAVING count(*) >= ?))"
        )

    def engagement(self, node: plan.EngagementWithin) -> str:
        """The measure over the endpoint's app events, aggregated by one probe of events_by_endpoint per
        endpoint (per endpoint of its user, `of_user`)."""
        own = self.activity_measure(node, _EVENT_OF_ENDPOINT)
        if node.of_user:
            endpoints_of_user = (
                "SELECT u2.endpoint_key FROM endpoints u2 WHERE u2.app_id = e.app_id AND u2.user_id = e.user_id"
            )
            users = self.activity_measure(node, f"ev.app_id = ? AND lower(ev.endpoint_id) IN ({endpoints_of_user})")
            own = f"(CASE WHEN e.user_id IS NULL THEN {own} ELSE {users} END)"
        self.bind(node.minimum, node.maximum)
        return f"{own} BETWEEN ? AND ?"

    def activity_measure(self, node: plan.EngagementWithin, events_of: str) -> str:
        """The measure over the app events `events_of` selects (its one `?` is the project)."""

        def placeholder(value: Any) -> str:
            self.bind(value)
            return "?"

        value = purchase_value_sql(self.dialect, "ev")
        measure = engagement_measure(node, "max(ev.event_at)", "count(*)", f"sum({value})", placeholder)
        self.bind(self.app_id)
        return f"(SELECT {measure} FROM events ev WHERE {events_of} AND {app_event_sql('ev.event_type')})"

    def event_attribute(self, name: str, values: tuple[str, ...]) -> str:
        self.bind(name)
        if self.postgres:
            return "coalesce(" + self.one_of("ev.doc::jsonb -> 'Attributes' ->> ?", values) + ", FALSE)"
        matches = self.one_of("ea.value", values)
        return f"EXISTS (SELECT 1 FROM json_each(ev.doc, '$.Attributes') ea WHERE ea.key = ? AND {matches})"


def iso_millis_of(ms: int) -> str:
    """The EffectiveDate spelling of an instant (ISO, milliseconds, Z), which orders like the instant itself."""
    return iso_millis(datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=ms))


def _where(tx: Transaction, app_id: str, node: Node, sendable_only: bool) -> tuple[str, list[Any]]:
    """`FROM ... WHERE ...` selecting the members of `node`, with its parameters; runs the dialect's scan settings."""
    for statement in tx.dialect.scan_settings:
        tx.execute(statement)
    compiler = _Compiler(tx, app_id)
    compiler.bind(app_id)
    condition = compiler.condition(node, exact=False)
    source = "endpoints e" + (_USERS if compiler.uses_users else "")
    return f"FROM {source} WHERE e.app_id = ? AND {condition}{SENDABLE if sendable_only else ''}", compiler.params


def count(tx: Transaction, app_id: str, node: Node, *, sendable_only: bool = False) -> int:
    where, params = _where(tx, app_id, node, sendable_only)
    return int(tx.scalar(f"SELECT count(*) {where}", params))


def count_plan(tx: Transaction, app_id: str, node: Node) -> list[str]:
    """The plan the store chooses for `count`, one line per step (what the benchmark records and tests check)."""
    where, params = _where(tx, app_id, node, False)
    return [str(row[-1]) for row in tx.fetchall(f"{tx.dialect.explain} SELECT count(*) {where}", params)]


def channel_counts(tx: Transaction, app_id: str, node: Node, *, sendable_only: bool = False) -> dict[str, int]:
    """Members per ChannelType; endpoints without one are counted under ""."""
    where, params = _where(tx, app_id, node, sendable_only)
    rows = tx.fetchall(f"SELECT coalesce(e.channel_type, ''), count(*) {where} GROUP BY e.channel_type", params)
    return {channel: int(n) for channel, n in rows}


def page(
    tx: Transaction, app_id: str, node: Node, after_key: str, limit: int, *, sendable_only: bool = False
) -> list[tuple[str, str]]:
    """(endpoint_key, id) of members after `after_key`, in key order: a keyset page over the primary key."""
    where, params = _where(tx, app_id, node, sendable_only)
    rows = tx.fetchall(
        f"SELECT e.endpoint_key, e.id {where} AND e.endpoint_key > ? ORDER BY e.endpoint_key LIMIT ?",
        (*params, after_key, limit),
    )
    return [(key, endpoint_id) for key, endpoint_id in rows]


def sample(tx: Transaction, app_id: str, node: Node, size: int, *, sendable_only: bool = False) -> list[str]:
    """Up to `size` member ids spread over cohorts (CohortId is a stable hash), the same ones on every call."""
    where, params = _where(tx, app_id, node, sendable_only)
    rows = tx.fetchall(f"SELECT e.id {where} ORDER BY e.cohort_id, e.endpoint_key LIMIT ?", (*params, size))
    return [row[0] for row in rows]


def among(tx: Transaction, app_id: str, node: Node, keys: list[str], *, sendable_only: bool = False) -> list[str]:
    """Which of these endpoint keys are members: a membership test by primary key, for event-triggered sends."""
    if not keys:
        return []
    where, params = _where(tx, app_id, node, sendable_only)
    listed, key_params = tx.dialect.one_of("e.endpoint_key", keys)
    return [row[0] for row in tx.fetchall(f"SELECT e.endpoint_key {where} AND {listed}", (*params, *key_params))]
