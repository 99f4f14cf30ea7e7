"""KPI queries as one SQL statement: the same compiler for the row store (SQLite, PostgreSQL) and DuckDB's replica.

A KPI (clarion/analytics/kpis.py) asks for a few counters over one project's events in a time window, optionally
grouped (by date, campaign, activity, country, ...). Each counter is a conditional aggregate over the events of the
types it names, so a whole KPI is one scan (or one range of `events_by_type_time`) however many counters it needs.
The engines differ only in how they spell a column (`KpiColumns`): JSON paths into `doc` on the row store, MAP
lookups on the replica's `events`, plain columns on the replica's daily rollup.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clarion.store.database import Dialect, Transaction

DAY_MS = 86_400_000


class Aggregate(StrEnum):
    COUNT = "count"  # events
    RECIPIENTS = "recipients"  # distinct recipients: the endpoint, or the address of a send without one
    PARTS = "parts"  # SMS message parts (number_of_message_parts, 1 when not recorded)
    PRICE = "price"  # the price_in_millicents_usd metric


class Scope(StrEnum):
    TRANSACTIONAL = "transactional"  # direct sends: events with neither a campaign nor a journey id
    CAMPAIGNS = "campaigns"  # every campaign of the project
    CAMPAIGN = "campaign"  # one campaign (scope_id)
    JOURNEY = "journey"  # one journey (scope_id)


class Group(StrEnum):
    DATE = "date"  # the UTC day of the event, as a day number since the epoch
    CAMPAIGN = "campaign"
    ACTIVITY = "activity"  # the campaign run (activity) the message belongs to
    JOURNEY_ACTIVITY = "journey_activity"
    COUNTRY = "country"  # the SMS destination's ISO country
    ERROR = "error"  # an SMS failure's record status


@dataclass(frozen=True, slots=True)
class Counter:
    aggregate: Aggregate
    event_types: tuple[str, ...]
    # attribute -> the values it must hold (a code constant, such as delivery_status = SUCCESSFUL)
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class KpiQuery:
    app_id: str
    start_ms: int  # inclusive
    end_ms: int  # inclusive
    scope: Scope
    scope_id: str | None
    group: Group | None
    counters: tuple[Counter, ...]

    @property
    def event_types(self) -> list[str]:
        return sorted({kind for counter in self.counters for kind in counter.event_types})


class KpiColumns(ABC):
    """How one engine spells what the compiler reads. Attribute names come from code, never from a client."""

    table: str
    table_params: Sequence[Any] = ()  # parameters of `table` when it is a subquery

    @abstractmethod
    def attribute(self, name: str) -> str: ...

    @abstractmethod
    def recipient(self) -> str: ...

    @abstractmethod
    def parts(self) -> str: ...

    @abstractmethod
    def price(self) -> str: ...

    def weight(self) -> str:
        """How many events a row stands for (1 on an event table; the count on a rollup)."""
        return "1"

    def day(self) -> str:
        return f"event_at / {DAY_MS}"

    def group(self, group: Group) -> str:
        match group:
            case Group.DATE:
                return self.day()
            case Group.CAMPAIGN:
                return self.attribute("campaign_id")
            case Group.ACTIVITY:
                return f"coalesce({self.attribute('campaign_activity_id')}, {self.attribute('ActivityId')})"
            case Group.JOURNEY_ACTIVITY:
                return self.attribute("journey_activity_id")
            case Group.COUNTRY:
                return self.attribute("iso_country_code")
            case Group.ERROR:
                return f"coalesce({self.attribute('record_status')}, {self.attribute('delivery_status')}, 'UNKNOWN')"


def compile_kpi(query: KpiQuery, columns: KpiColumns) -> tuple[str, list[Any]]:
    """`SELECT [group,] counter... FROM ... WHERE ... [GROUP BY group]`, parameters in the order of their `?`."""
    params: list[Any] = []
    selected: list[str] = []
    if query.group is not None:
        selected.append(columns.group(query.group))
    for counter in query.counters:
        types = ", ".join("?" for _ in counter.event_types)
        params.extend(counter.event_types)
        condition = f"event_type IN ({types})"
        for name, values in counter.where:
            condition += f" AND {columns.attribute(name)} IN ({', '.join('?' for _ in values)})"
            params.extend(values)
        match counter.aggregate:
            case Aggregate.COUNT:
                selected.append(f"sum(CASE WHEN {condition} THEN {columns.weight()} ELSE 0 END)")
            case Aggregate.RECIPIENTS:
                selected.append(f"count(DISTINCT CASE WHEN {condition} THEN {columns.recipient()} END)")
            case Aggregate.PARTS:
                selected.append(f"sum(CASE WHEN {condition} THEN {columns.parts()} ELSE 0 END)")
            case Aggregate.PRICE:
                selected.append(f"sum(CASE WHEN {condition} THEN {columns.price()} ELSE 0 END)")
    params.extend(columns.table_params)
    types = query.event_types
    where = f"app_id = ? AND event_type IN ({', '.join('?' for _ in types)}) AND event_at BETWEEN ? AND ?"
    params.extend([query.app_id, *types, query.start_ms, query.end_ms])
    match query.scope:
        case Scope.TRANSACTIONAL:
            where += f" AND {columns.attribute('campaign_id')} IS NULL AND {columns.attribute('journey_id')} IS NULL"
        case Scope.CAMPAIGNS:
            where += f" AND {columns.attribute('campaign_id')} IS NOT NULL"
        case Scope.CAMPAIGN:
            where += f" AND {columns.attribute('campaign_id')} = ?"
            params.append(query.scope_id)
        case Scope.JOURNEY:
            where += f" AND {columns.attribute('journey_id')} = ?"
            params.append(query.scope_id)
    sql = f"SELECT {', '.join(selected)} FROM {columns.table} WHERE {where}"
    if query.group is not None:
        sql += " GROUP BY 1"
    return sql, params


class RowStoreColumns(KpiColumns):
    """The row store's `events`: attributes and metrics read from the event document (JSON text)."""

    table = "events"

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def attribute(self, name: str) -> str:
        return self.dialect.json_text("doc", ("Attributes", name))

    def recipient(self) -> str:
        return f"CASE WHEN endpoint_id <> '' THEN endpoint_id ELSE '@' || {self.attribute('destination')} END"

    def parts(self) -> str:
        return f"coalesce(CAST({self.attribute('number_of_message_parts')} AS INTEGER), 1)"

    def price(self) -> str:
        kind = "double precision" if self.dialect.name == "postgresql" else "REAL"
        return f"coalesce(CAST({self.dialect.json_text('doc', ('Metrics', 'price_in_millicents_usd'))} AS {kind}), 0)"


def run(tx: Transaction, query: KpiQuery) -> list[tuple[Any, ...]]:
    """The query's rows on the row store: (group value?, counter values...)."""
    sql, params = compile_kpi(query, RowStoreColumns(tx.dialect))
    for statement in tx.dialect.scan_settings:
        tx.execute(statement)
    rows: Sequence[tuple[Any, ...]] = tx.fetchall(sql, params)
    return [tuple(row) for row in rows]
