"""A segment definition as a small tree of conditions: what every membership engine evaluates.

`plan_of(definition, resolve_segment, now)` turns the JSON a client wrote (`{Dimensions?, SegmentGroups?}`, API
Reference "Segments") into frozen dataclasses. The plan is closed: other segments are resolved into it, relative windows
are turned into absolute instants from the injected `now`, and date criteria are parsed. An engine (the SQL compiler in
clarion/store/segment_sql.py, the DuckDB engine, the plain-Python oracle in clarion/segments/reference.py) needs nothing
but the plan and the data. This module states the semantics; every engine must follow them exactly.

Boolean structure
- `AllOf(children)` holds when every child holds (`AllOf(())` holds for every endpoint); `AnyOf(children)` when at
  least one does (`AnyOf(())` for none); `Not(child)` when the child does not.
  `EVERYONE` and `NO_ONE` name the two ends.
- A definition with both `Dimensions` and `SegmentGroups` requires both (AND); with neither, it holds every endpoint
  of the project. An empty `SegmentDimensions` object, or a `SegmentGroups` without groups, imposes nothing.
- Within one `SegmentDimensions`, every criterion present must hold (AND), including every named attribute/metric.
- `SegmentGroups.Include` (default ALL) combines groups: ALL = in every group, ANY = in at least one, NONE = in none.
- In a group, the base population is its `SourceSegments` combined by `SourceType` (default ANY): ANY = in at least
  one, ALL = in all, NONE = in none of them; without source segments it is every endpoint. The group's `Dimensions`
  list filters that base, combined by `Type` (default ALL): ALL = every object holds, ANY = at least one, NONE = no
  object holds. An empty `Dimensions` list filters nothing, whatever `Type` says.
- A source segment is resolved at plan time to its version (pinned by `Version`, else its latest) and embedded as
  `InSegment`; an IMPORT segment becomes `InImport` (its static members, table `segment_imports`); a segment that no
  longer exists, or a reference cycle, holds no endpoint.

Endpoint fields (`FieldIn`): the endpoint's value equals one of `values`, compared exactly and case-sensitively,
except `COUNTRY`, whose values are upper-cased ISO 3166-1 codes (alpha-3 criteria are mapped to alpha-2, so both
spellings match) and whose endpoint side is upper-cased before comparing. An endpoint without the field does not
hold. `SetDimension` INCLUSIVE is `FieldIn`; EXCLUSIVE is `Not(FieldIn)`, which therefore holds for an endpoint
without the field. `Demographic.Channel` compares `ChannelType`; `Demographic.DeviceType` has no endpoint field in
Pinpoint's model, so it is a field every endpoint lacks (INCLUSIVE holds for none, EXCLUSIVE for all).

Attributes (`AttributeCondition`, endpoint `Attributes` or the user's `UserAttributes`): the endpoint side is a list
of strings; a condition holds when **some** endpoint value matches **some** criterion value, except EXCLUSIVE.
- INCLUSIVE: equal (exact, case-sensitive). CONTAINS: the criterion is a substring (case-sensitive; "" is in every
  string). EXCLUSIVE: no endpoint value equals any criterion value — an endpoint without the attribute (or with an
  empty list, or without a user for `UserAttributes`) holds.
- BEFORE / AFTER / ON / BETWEEN compare instants. Criterion values are parsed when the plan is built (any ISO-8601
  form `datetime.fromisoformat` accepts; no offset means UTC) into epoch milliseconds, `instants`. Endpoint values are
  parsed by `clarion.instants.instant_ms`, which accepts only `YYYY-MM-DD`, optionally followed by `T` or a space
  and `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` (1–6 fraction digits, truncated to milliseconds), optionally followed by
  `Z` or `±HH:MM` (hours up to 14); no offset means UTC; impossible dates are not instants. A value that is not an
  instant never matches a date operator.
  BEFORE: value < some criterion (i.e. < the latest). AFTER: value > some criterion. ON: the value's calendar date in
  UTC equals the UTC calendar date of some criterion. BETWEEN: instants[0] <= value <= instants[1] (inclusive).

Metrics (`MetricCompare`): `Metrics[name] <operator> value`; an endpoint without the metric does not hold.

GPS (`WithinDistance`): great-circle (haversine, Earth radius `EARTH_RADIUS_KM`) distance from the endpoint's
`Location.Latitude/Longitude` to the point is at most `kilometers` (default `DEFAULT_RANGE_KM`); an endpoint without
both coordinates does not hold.

Events. An event belongs to the endpoint whose id equals the event's endpoint id case-insensitively (ASCII folding,
like Pinpoint's endpoint ids); times are the events' `event_at` (the client's Timestamp, epoch ms).
- `ActiveSince(start_ms)` (Behavior.Recency ACTIVE): the endpoint's last activity is at or after `start_ms`, where
  last activity is its latest event if it has any events at all, else its `EffectiveDate` (Clarion's choice where
  Pinpoint's documentation is silent). INACTIVE is `Not(ActiveSince)`. The window start is `now - Duration` (HR_24 = 24
  h, DAY_7/14/30 = 7/14/30 days).
- `EventCount(event_type, attributes, start_ms, minimum)` (the ClarionBehavior extension): at least `minimum` events
  of the type with `event_at >= start_ms` (no lower bound when None) whose `Attributes` hold, for every
  `(name, values)` pair, a value equal to one of `values`.

Engagement (`EngagementWithin`, the ClarionEngagement extension): RFM-style scores of an endpoint from its app
events (every event but those Clarion records about its own messages: `clarion.store.events.is_server_event`), the
events matched to the endpoint as above.
- Recency (0-5): 0 without app events; else by its latest app event's `event_at`: at or after `now - 1 day` 5, `now -
  7 days` 4, `now - 30 days` 3, `now - 90 days` 2, earlier 1 (`recency_starts` holds the four instants).
- Frequency (0-5): its app events, ever: at least 1, 3, 10, 30, 100 give 1, 2, 3, 4, 5 (0 for none).
- Monetary (0-5): its revenue, the sum over its `_monetization.purchase` events of Metrics `_item_price` times
  `_quantity` (a missing price counts 0, a missing quantity 1), whatever the currency: above 0 gives 1, at least 10,
  50, 250, 1000 give 2, 3, 4, 5 (0 for none or a negative sum).
- Score (0-15): the sum of the three. `EngagementWithin(measure, minimum, maximum, ...)` holds when
  `minimum <= measure <= maximum`.
- With `of_user`, the activity is that of every endpoint with the endpoint's user id (their app events together);
  an endpoint without a user is measured alone.

The ClarionBehavior extension: `SegmentDimensions.ClarionBehavior` is a list; each item must hold (AND):
`{"EventType": str, "Minimum"?: int >= 1 (default 1), "WithinDays"?: int >= 1 | "Since"?: instant,
"Attributes"?: {name: [values]}}` → `EventCount` (performed at least Minimum times in the window), or
`{"EventType", "NotSince": instant, "Attributes"?}` → `Not(EventCount(minimum=1, start=NotSince))` (has not performed
it since). `rules.validate_definition` checks the shape.

The ClarionEngagement extension: `SegmentDimensions.ClarionEngagement` is `{"Of"?: "ENDPOINT" | "USER", "Score"?,
"Recency"?, "Frequency"?, "Monetary"?}`, each measure `{"Minimum"?: int, "Maximum"?: int}`; every measure given must
hold (AND), measured for the endpoint or (`"Of": "USER"`) its user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from clarion.instants import to_ms
from clarion.segments.countries import ALPHA3_TO_ALPHA2
from clarion.segments.rules import BEHAVIOR_MEMBER, ENGAGEMENT_MEMBER, ENGAGEMENT_RANGES, parse_instant
from clarion.store.events import PURCHASE, is_server_event

EARTH_RADIUS_KM = 6371.0
DEFAULT_RANGE_KM = 100.0
RECENCY_WINDOWS = {
    "HR_24": timedelta(hours=24),
    "DAY_7": timedelta(days=7),
    "DAY_14": timedelta(days=14),
    "DAY_30": timedelta(days=30),
}
MAX_DEPTH = 32  # nested source segments deeper than this are treated as a cycle

_MS = timedelta(milliseconds=1)
DAY_MS = 86_400_000


class Field(Enum):
    """Endpoint fields a SetDimension compares, with their place in the endpoint document."""

    CHANNEL = ("ChannelType",)
    APP_VERSION = ("Demographic", "AppVersion")
    DEVICE_TYPE = ()  # no endpoint field holds it (see module docstring)
    MAKE = ("Demographic", "Make")
    MODEL = ("Demographic", "Model")
    PLATFORM = ("Demographic", "Platform")
    COUNTRY = ("Location", "Country")

    @property
    def path(self) -> tuple[str, ...]:
        return self.value


DEMOGRAPHIC_FIELDS = {
    "AppVersion": Field.APP_VERSION,
    "Channel": Field.CHANNEL,
    "DeviceType": Field.DEVICE_TYPE,
    "Make": Field.MAKE,
    "Model": Field.MODEL,
    "Platform": Field.PLATFORM,
}


class Source(Enum):
    ENDPOINT = "Attributes"  # the endpoint's own Attributes
    USER = "UserAttributes"  # the attributes of the endpoint's user (table users)


class Operator(Enum):
    INCLUSIVE = "INCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"
    CONTAINS = "CONTAINS"
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    ON = "ON"
    BETWEEN = "BETWEEN"


DATE_OPERATORS = frozenset({Operator.BEFORE, Operator.AFTER, Operator.ON, Operator.BETWEEN})


class Comparison(Enum):
    """MetricDimension.ComparisonOperator; each value is the SQL operator every engine compiles it to."""

    GREATER_THAN = ">"
    LESS_THAN = "<"
    GREATER_THAN_OR_EQUAL = ">="
    LESS_THAN_OR_EQUAL = "<="
    EQUAL = "="


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class FieldIn:
    field: Field
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    source: Source
    name: str
    operator: Operator
    values: tuple[str, ...]
    instants: tuple[int, ...] = ()  # epoch ms of `values`, for date operators only


@dataclass(frozen=True, slots=True)
class MetricCompare:
    name: str
    comparison: Comparison
    value: float


@dataclass(frozen=True, slots=True)
class WithinDistance:
    latitude: float
    longitude: float
    kilometers: float


@dataclass(frozen=True, slots=True)
class ActiveSince:
    start_ms: int


@dataclass(frozen=True, slots=True)
class EventCount:
    event_type: str
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    start_ms: int | None
    minimum: int


@dataclass(frozen=True, slots=True)
class EngagementWithin:
    measure: str  # Score, Recency, Frequency or Monetary
    minimum: int
    maximum: int
    recency_starts: tuple[int, int, int, int]  # epoch ms of now - 1, 7, 30 and 90 days
    of_user: bool = False  # measure the endpoint's user (all their endpoints) rather than the endpoint


@dataclass(frozen=True, slots=True)
class InSegment:
    """Membership of a DIMENSIONAL segment at one version, its plan embedded."""

    segment_id: str
    version: int
    plan: Node


@dataclass(frozen=True, slots=True)
class InImport:
    """Membership of an IMPORT segment: its rows in `segment_imports(app_id, segment_id, endpoint_key)`."""

    segment_id: str


Node = (
    AllOf
    | AnyOf
    | Not
    | FieldIn
    | AttributeCondition
    | MetricCompare
    | WithinDistance
    | ActiveSince
    | EventCount
    | EngagementWithin
    | InSegment
    | InImport
)
EVERYONE = AllOf(())
NO_ONE = AnyOf(())


@dataclass(frozen=True, slots=True)
class ResolvedSegment:
    """What `resolve_segment` answers for a SourceSegments reference."""

    segment_id: str
    version: int
    segment_type: str  # DIMENSIONAL | IMPORT
    definition: dict[str, Any]


ResolveSegment = Callable[[str, int | None], ResolvedSegment | None]


def plan_of(definition: dict[str, Any], resolve_segment: ResolveSegment, now: datetime) -> Node:
    """The plan of `{Dimensions?, SegmentGroups?}` (already validated by rules.validate_definition)."""
    return _Planner(resolve_segment, to_ms(now)).definition(definition, ())


class _Planner:
    def __init__(self, resolve_segment: ResolveSegment, now_ms: int) -> None:
        self.resolve_segment = resolve_segment
        self.now_ms = now_ms

    def definition(self, definition: dict[str, Any], trail: tuple[tuple[str, int], ...]) -> Node:
        parts: list[Node] = []
        if definition.get("Dimensions") is not None:
            parts.append(self.dimensions(definition["Dimensions"]))
        groups = (definition.get("SegmentGroups") or {}).get("Groups") or []
        if groups:
            include = definition["SegmentGroups"].get("Include") or "ALL"
            parts.append(_combine(include, [self.group(group, trail) for group in groups]))
        return _all(parts)

    def group(self, group: dict[str, Any], trail: tuple[tuple[str, int], ...]) -> Node:
        parts: list[Node] = []
        sources = group.get("SourceSegments") or []
        if sources:
            members = [self.source(reference, trail) for reference in sources]
            parts.append(_combine(group.get("SourceType") or "ANY", members))
        dimensions = group.get("Dimensions") or []
        if dimensions:
            parts.append(_combine(group.get("Type") or "ALL", [self.dimensions(d) for d in dimensions]))
        return _all(parts)

    def source(self, reference: dict[str, Any], trail: tuple[tuple[str, int], ...]) -> Node:
        resolved = self.resolve_segment(reference["Id"], reference.get("Version"))
        if resolved is None or len(trail) >= MAX_DEPTH or any(resolved.segment_id == s for s, _ in trail):
            return NO_ONE
        if resolved.segment_type == "IMPORT":
            return InImport(resolved.segment_id)
        inner = self.definition(resolved.definition, (*trail, (resolved.segment_id, resolved.version)))
        return InSegment(resolved.segment_id, resolved.version, inner)

    def dimensions(self, dimensions: dict[str, Any]) -> Node:
        parts: list[Node] = []
        for source in Source:
            for name, dimension in (dimensions.get(source.value) or {}).items():
                parts.append(_attribute(source, name, dimension))
        for name, dimension in (dimensions.get("Metrics") or {}).items():
            parts.append(MetricCompare(name, Comparison[dimension["ComparisonOperator"]], float(dimension["Value"])))
        recency = (dimensions.get("Behavior") or {}).get("Recency")
        if recency:
            active = ActiveSince(self.now_ms - RECENCY_WINDOWS[recency["Duration"]] // _MS)
            parts.append(active if recency["RecencyType"] == "ACTIVE" else Not(active))
        for name, dimension in (dimensions.get("Demographic") or {}).items():
            parts.append(_set(DEMOGRAPHIC_FIELDS[name], dimension))
        location = dimensions.get("Location") or {}
        if "Country" in location:
            parts.append(_set(Field.COUNTRY, location["Country"]))
        if "GPSPoint" in location:
            point = location["GPSPoint"]
            coordinates = point["Coordinates"]
            kilometers = float(point.get("RangeInKilometers") or DEFAULT_RANGE_KM)
            parts.append(WithinDistance(float(coordinates["Latitude"]), float(coordinates["Longitude"]), kilometers))
        for item in dimensions.get(BEHAVIOR_MEMBER) or []:
            parts.append(self.behavior(item))
        starts = recency_starts(self.now_ms)
        engagement_condition = dict(dimensions.get(ENGAGEMENT_MEMBER) or {})
        of_user = engagement_condition.pop("Of", "ENDPOINT") == "USER"
        for measure, bounds in engagement_condition.items():
            low, high = ENGAGEMENT_RANGES[measure]
            minimum, maximum = bounds.get("Minimum", low), bounds.get("Maximum", high)
            parts.append(EngagementWithin(measure, minimum, maximum, starts, of_user))
        return _all(parts)

    def behavior(self, item: dict[str, Any]) -> Node:
        attributes = tuple(sorted((name, tuple(values)) for name, values in (item.get("Attributes") or {}).items()))
        if "NotSince" in item:
            return Not(EventCount(item["EventType"], attributes, _criterion_ms(item["NotSince"]), 1))
        start: int | None = None
        if "WithinDays" in item:
            start = self.now_ms - int(item["WithinDays"]) * DAY_MS
        elif "Since" in item:
            start = _criterion_ms(item["Since"])
        return EventCount(item["EventType"], attributes, start, int(item.get("Minimum", 1)))


def _all(parts: list[Node]) -> Node:
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _combine(how: str, parts: list[Node]) -> Node:
    """ALL / ANY / NONE over a non-empty list."""
    if how == "ALL":
        return _all(parts)
    either = parts[0] if len(parts) == 1 else AnyOf(tuple(parts))
    return either if how == "ANY" else Not(either)


def _criterion_ms(value: str) -> int:
    moment = parse_instant(value)
    if moment is None:  # validation refuses these first; kept so a stored oddity cannot crash an evaluation
        raise ValueError(f"not an instant: {value!r}")
    return to_ms(moment)


def _attribute(source: Source, name: str, dimension: dict[str, Any]) -> AttributeCondition:
    operator = Operator(dimension.get("AttributeType") or "INCLUSIVE")
    values = tuple(dimension["Values"])
    instants = tuple(_criterion_ms(v) for v in values) if operator in DATE_OPERATORS else ()
    return AttributeCondition(source, name, operator, values, instants)


def _set(field: Field, dimension: dict[str, Any]) -> Node:
    values = tuple(dimension["Values"])
    if field is Field.COUNTRY:
        values = tuple(sorted({ALPHA3_TO_ALPHA2.get(v.upper(), v.upper()) for v in values}))
    condition = FieldIn(field, values)
    return Not(condition) if dimension.get("DimensionType") == "EXCLUSIVE" else condition


# Engagement -------------------------------------------------------------------------------------------------------

RECENCY_DAYS = (1, 7, 30, 90)  # latest app event at or after now minus these: recency 5, 4, 3, 2 (earlier: 1)
FREQUENCY_AT_LEAST = (1, 3, 10, 30, 100)  # app events ever: frequency 1 ... 5
MONETARY_AT_LEAST = (10, 50, 250, 1000)  # revenue: monetary 2 ... 5 (any revenue above 0: 1)


@dataclass(frozen=True, slots=True)
class Activity:
    """What engagement is scored from: an endpoint's app events (or a user's, over their endpoints)."""

    last_ms: int | None = None  # the latest app event's event_at
    events: int = 0
    revenue: float = 0.0


def recency_starts(now_ms: int) -> tuple[int, int, int, int]:
    one, seven, thirty, ninety = (now_ms - days * DAY_MS for days in RECENCY_DAYS)
    return one, seven, thirty, ninety


def purchase_value(event_type: str, metrics: dict[str, float]) -> float:
    """What one event adds to revenue."""
    if event_type != PURCHASE:
        return 0.0
    return float(metrics.get("_item_price", 0.0)) * float(metrics.get("_quantity", 1.0))


def counts_for_engagement(event_type: str) -> bool:
    return not is_server_event(event_type)


def engagement(activity: Activity, starts: tuple[int, ...]) -> dict[str, int]:
    """The four measures of an activity, as every engine computes them."""
    if activity.last_ms is None:
        recency = 0
    else:
        recency = next((5 - n for n, start in enumerate(starts) if activity.last_ms >= start), 1)
    frequency = sum(1 for least in FREQUENCY_AT_LEAST if activity.events >= least)
    monetary = 0 if activity.revenue <= 0 else 1 + sum(1 for least in MONETARY_AT_LEAST if activity.revenue >= least)
    return {
        "Score": recency + frequency + monetary,
        "Recency": recency,
        "Frequency": frequency,
        "Monetary": monetary,
    }
