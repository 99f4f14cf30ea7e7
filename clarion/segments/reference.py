"""A plain-Python evaluator of a segment plan: written straight from plan.py's semantics, slow and obvious.

It is the oracle the SQL and DuckDB engines are tested against, so it favours reading like the rules over speed.
Endpoints are given as Pinpoint `EndpointResponse` dicts (with `User.UserAttributes` filled in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.instants import instant_ms
from clarion.segments import plan
from clarion.segments.plan import Node


@dataclass(frozen=True, slots=True)
class Event:
    endpoint_id: str
    event_type: str
    event_at: int  # epoch ms
    attributes: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class World:
    """Everything a plan can look at, for one project."""

    endpoints: list[dict[str, Any]]
    events: list[Event] = field(default_factory=list)
    imports: Mapping[str, set[str]] = field(default_factory=dict)  # segment id -> endpoint keys (folded ids)

    def events_of(self, endpoint: dict[str, Any]) -> Iterable[Event]:
        key = _fold(endpoint["Id"])
        return (event for event in self.events if _fold(event.endpoint_id) == key)


def members(node: Node, world: World) -> set[str]:
    """The ids of the endpoints `node` holds for."""
    return {endpoint["Id"] for endpoint in world.endpoints if holds(node, endpoint, world)}


def holds(node: Node, endpoint: dict[str, Any], world: World) -> bool:
    match node:
        case plan.AllOf(children):
            return all(holds(child, endpoint, world) for child in children)
        case plan.AnyOf(children):
            return any(holds(child, endpoint, world) for child in children)
        case plan.Not(child):
            return not holds(child, endpoint, world)
        case plan.FieldIn():
            return _field_in(node, endpoint)
        case plan.AttributeCondition():
            return _attribute(node, endpoint)
        case plan.MetricCompare(name, comparison, value):
            metric = (endpoint.get("Metrics") or {}).get(name)
            return metric is not None and _compare(float(metric), comparison, value)
        case plan.WithinDistance():
            return _within(node, endpoint)
        case plan.ActiveSince(start_ms):
            times = [event.event_at for event in world.events_of(endpoint)]
            last = max(times) if times else instant_ms(endpoint["EffectiveDate"])
            return last is not None and last >= start_ms
        case plan.EventCount():
            return _event_count(node, endpoint, world)
        case plan.EngagementWithin(measure, minimum, maximum, starts, of_user):
            user = _user(endpoint)
            if of_user and user:
                events = [e for other in world.endpoints if _user(other) == user for e in world.events_of(other)]
            else:
                events = list(world.events_of(endpoint))
            return minimum <= plan.engagement(activity(events), starts)[measure] <= maximum
        case plan.InSegment(_, _, inner):
            return holds(inner, endpoint, world)
        case plan.InImport(segment_id):
            return _fold(endpoint["Id"]) in world.imports.get(segment_id, set())
    raise TypeError(f"not a plan node: {node!r}")


def _user(endpoint: dict[str, Any]) -> str | None:
    return (endpoint.get("User") or {}).get("UserId")


def _fold(endpoint_id: str) -> str:
    """ASCII-only lower-casing, the folding SQL's lower() does in both stores."""
    return endpoint_id.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lookup(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _field_in(node: plan.FieldIn, endpoint: dict[str, Any]) -> bool:
    if not node.field.path:
        return False
    value = _lookup(endpoint, node.field.path)
    if not isinstance(value, str):
        return False
    if node.field is plan.Field.COUNTRY:
        value = value.upper()
    return value in node.values


def _attribute(node: plan.AttributeCondition, endpoint: dict[str, Any]) -> bool:
    if node.source is plan.Source.ENDPOINT:
        have = (endpoint.get("Attributes") or {}).get(node.name) or []
    else:
        have = ((endpoint.get("User") or {}).get("UserAttributes") or {}).get(node.name) or []
    match node.operator:
        case plan.Operator.INCLUSIVE:
            return any(value in node.values for value in have)
        case plan.Operator.EXCLUSIVE:
            return not any(value in node.values for value in have)
        case plan.Operator.CONTAINS:
            return any(wanted in value for value in have for wanted in node.values)
    instants = [ms for ms in (instant_ms(value) for value in have) if ms is not None]
    match node.operator:
        case plan.Operator.BEFORE:
            return any(ms < bound for ms in instants for bound in node.instants)
        case plan.Operator.AFTER:
            return any(ms > bound for ms in instants for bound in node.instants)
        case plan.Operator.ON:
            days = {bound // plan.DAY_MS for bound in node.instants}
            return any(ms // plan.DAY_MS in days for ms in instants)
        case plan.Operator.BETWEEN:
            start, end = node.instants
            return any(start <= ms <= end for ms in instants)
    raise ValueError(f"unknown operator {node.operator}")


def _compare(left: float, comparison: plan.Comparison, right: float) -> bool:
    match comparison:
        case plan.Comparison.GREATER_THAN:
            return left > right
        case plan.Comparison.LESS_THAN:
            return left < right
        case plan.Comparison.GREATER_THAN_OR_EQUAL:
            return left >= right
        case plan.Comparison.LESS_THAN_OR_EQUAL:
            return left <= right
        case plan.Comparison.EQUAL:
            return left == right
    raise ValueError(f"unknown comparison {comparison}")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance, operation for operation as segment_sql writes it (so both round alike)."""
    degree = math.pi / 180
    p1, p2 = lat1 * degree, lat2 * degree
    half_dp, half_dl = math.sin((p2 - p1) / 2), math.sin((lon2 - lon1) * degree / 2)
    a = half_dp * half_dp + math.cos(p1) * math.cos(p2) * half_dl * half_dl
    return 2 * plan.EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _within(node: plan.WithinDistance, endpoint: dict[str, Any]) -> bool:
    location = endpoint.get("Location") or {}
    latitude, longitude = location.get("Latitude"), location.get("Longitude")
    if latitude is None or longitude is None:
        return False
    return haversine_km(node.latitude, node.longitude, latitude, longitude) <= node.kilometers


def _event_count(node: plan.EventCount, endpoint: dict[str, Any], world: World) -> bool:
    count = 0
    for event in world.events_of(endpoint):
        if event.event_type != node.event_type:
            continue
        if node.start_ms is not None and event.event_at < node.start_ms:
            continue
        if all(event.attributes.get(name) in values for name, values in node.attributes):
            count += 1
    return count >= node.minimum


def activity(events: Iterable[Event]) -> plan.Activity:
    """What engagement is scored from: the app events among `events`."""
    counted = [event for event in events if plan.counts_for_engagement(event.event_type)]
    if not counted:
        return plan.Activity()
    revenue = sum(plan.purchase_value(event.event_type, dict(event.metrics)) for event in counted)
    return plan.Activity(max(event.event_at for event in counted), len(counted), revenue)
