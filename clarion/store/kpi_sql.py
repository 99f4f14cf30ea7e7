"""KPI queries as one SQL statement: the same compiler for the row store (SQLite, PostgreSQL) and DuckDB's replica.

A KPI (clarion/analytics/kpis.py) asks for a few counters over one project's events in a time window, optionally
grouped (by date, campaign, activity, country, ...). Each counter is a conditional aggregate over the events of the
types it names, so a whole KPI is one scan (or one range of `events_by_type_time`) however many counters it needs.
The engines differ only in how they spell a column (`KpiColumns`): JSON paths into `doc` on the row store, MAP
lookups on the replica's `events`, plain columns on the replica's daily rollup.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clarion.store.database import Dialect

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


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


# The rollups' key columns and the event attributes each is read from (the first present wins): what KPIs filter
# and group on. A KPI that reads another attribute scans the events.
ROLLUP_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "campaign_id": ("campaign_id",),
    "activity_id": ("campaign_activity_id", "ActivityId"),
    "journey_id": ("journey_id",),
    "journey_activity_id": ("journey_activity_id",),
    "channel_type": ("channel_type",),
    "delivery_status": ("delivery_status",),
    "record_status": ("record_status",),
    "country": ("iso_country_code",),
}
ROLLUP_KEYS = tuple(ROLLUP_ATTRIBUTES)
# Event attribute -> the rollup column holding it.
ROLLED = {name: column for column, names in ROLLUP_ATTRIBUTES.items() for name in names}
# The event types whose recipients KPIs count distinct (unique deliveries, opens and clicks), and the attributes
# those KPIs filter and group on.
RECIPIENT_EVENT_TYPES = ("_campaign.send", "_email.open", "_email.click")
RECIPIENT_KEYS = ("campaign_id", "activity_id", "journey_id", "delivery_status")
RECIPIENT_ROLLED = {name: column for name, column in ROLLED.items() if column in RECIPIENT_KEYS}


def rolled_keys(read: Callable[[str], str], keys: tuple[str, ...] = ROLLUP_KEYS) -> list[str]:
    """The rollup key columns `keys` of one event, named, '' when absent; `read(name)` reads an attribute."""
    return [f"coalesce({', '.join(map(read, ROLLUP_ATTRIBUTES[column]))}, '') AS {column}" for column in keys]


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


def counter_condition(counter: Counter, columns: KpiColumns, params: list[Any]) -> str:
    """Whether an event counts for `counter`, as SQL; its parameters are appended to `params`."""
    params.extend(counter.event_types)
    condition = f"event_type IN ({', '.join('?' for _ in counter.event_types)})"
    for name, values in counter.where:
        condition += f" AND {columns.attribute(name)} IN ({', '.join('?' for _ in values)})"
        params.extend(values)
    return condition


def query_filter(query: KpiQuery, columns: KpiColumns, params: list[Any]) -> str:
    """The project, the counters' event types and the scope, as SQL (the time range aside)."""
    types = query.event_types
    where = f"app_id = ? AND event_type IN ({', '.join('?' for _ in types)})"
    params.extend([query.app_id, *types])
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
    return where


def compile_kpi(query: KpiQuery, columns: KpiColumns) -> tuple[str, list[Any]]:
    """`SELECT [group,] counter... FROM ... WHERE ... [GROUP BY group]`, parameters in the order of their `?`."""
    params: list[Any] = []
    selected: list[str] = []
    if query.group is not None:
        selected.append(columns.group(query.group))
    for counter in query.counters:
        condition = counter_condition(counter, columns, params)
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
    where = query_filter(query, columns, params) + " AND event_at BETWEEN ? AND ?"
    params.extend([query.start_ms, query.end_ms])
    sql = f"SELECT {', '.join(selected)} FROM {columns.table} WHERE {where}"
    if query.group is not None:
        sql += " GROUP BY 1"
    return sql, params


def rolls_up(query: KpiQuery) -> bool:
    """Whether a counting rollup answers the query: no distinct counts, and only rolled-up attributes filtered on."""
    return all(
        counter.aggregate is not Aggregate.RECIPIENTS and all(name in ROLLED for name, _ in counter.where)
        for counter in query.counters
    )


def recipients_roll_up(query: KpiQuery) -> bool:
    """Whether a recipients rollup answers the query: distinct recipients only, of the event types it keeps, and
    only the attributes it keeps filtered on, scoped on and grouped by."""
    if query.group not in (None, Group.DATE, Group.CAMPAIGN, Group.ACTIVITY):
        return False
    return all(
        counter.aggregate is Aggregate.RECIPIENTS
        and set(counter.event_types) <= set(RECIPIENT_EVENT_TYPES)
        and all(name in RECIPIENT_ROLLED for name, _ in counter.where)
        for counter in query.counters
    )


class RolledColumns(KpiColumns):
    """A counting rollup's columns (ROLLUP_KEYS, '' when absent; `n` events; their SMS `parts` and `price`), whatever
    table or union of rollup rows and edge events holds them."""

    def attribute(self, name: str) -> str:
        return f"nullif({ROLLED[name]}, '')"

    def recipient(self) -> str:
        raise ValueError("distinct recipients cannot be read from a counting rollup")

    def weight(self) -> str:
        return "n"

    def parts(self) -> str:
        return "parts"

    def price(self) -> str:
        return "price"


class RecipientRolledColumns(KpiColumns):
    """A recipients rollup's columns (RECIPIENT_KEYS, '' when absent; `recipient`): it answers distinct counts of
    the attributes it keeps only (`attribute` raises KeyError for another)."""

    def attribute(self, name: str) -> str:
        return f"nullif({RECIPIENT_ROLLED[name]}, '')"

    def recipient(self) -> str:
        return "recipient"

    def parts(self) -> str:
        raise ValueError("a recipients rollup keeps no SMS parts")

    def price(self) -> str:
        raise ValueError("a recipients rollup keeps no prices")


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
