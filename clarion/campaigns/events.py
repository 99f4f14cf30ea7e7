"""Whether an event triggers an EVENT campaign (Schedule.EventFilter, API Reference "Campaign").

- FilterType ENDPOINT matches the project's own events (types not starting with `_`); SYSTEM matches the events
  Clarion records itself (`_session.start`, `_email.open`, ...).
- `Dimensions.EventType` is a SetDimension on the event type; `Attributes` are AttributeDimensions on the event's
  (single-valued) attributes, with the same operators as segments; `Metrics` are MetricDimensions. Every dimension
  given must hold.
- Only events inside the campaign's [StartTime, EndTime] window (by the time Clarion received them) trigger it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from clarion.campaigns.definition import IMMEDIATE, Schedule
from clarion.campaigns.schedule import parse_start
from clarion.instants import instant_ms, to_ms

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GREATER_THAN": operator.gt,
    "LESS_THAN": operator.lt,
    "GREATER_THAN_OR_EQUAL": operator.ge,
    "LESS_THAN_OR_EQUAL": operator.le,
    "EQUAL": operator.eq,
}


def _set_holds(dimension: Mapping[str, Any], value: str) -> bool:
    inside = value in dimension.get("Values", [])
    return inside if dimension.get("DimensionType", "INCLUSIVE") == "INCLUSIVE" else not inside


def _attribute_holds(dimension: Mapping[str, Any], value: str | None) -> bool:
    kind = dimension.get("AttributeType", "INCLUSIVE")
    values = dimension.get("Values", [])
    if kind == "EXCLUSIVE":
        return value not in values
    if value is None:
        return False
    if kind == "INCLUSIVE":
        return value in values
    if kind == "CONTAINS":
        return any(criterion in value for criterion in values)
    at = instant_ms(value)
    if at is None:
        return False
    bounds = [to_ms(parse_start(criterion)) for criterion in values]
    if kind == "BEFORE":
        return at < max(bounds)
    if kind == "AFTER":
        return at > min(bounds)
    if kind == "BETWEEN":
        return len(bounds) >= 2 and bounds[0] <= at <= bounds[1]
    if kind == "ON":
        day = 86_400_000
        return any(at // day == bound // day for bound in bounds)
    return False


def event_matches(schedule: Schedule, event: Mapping[str, Any], received: datetime) -> bool:
    start, end = schedule.start_time, schedule.end_time
    if start != IMMEDIATE and received < parse_start(start):
        return False
    if end and received > parse_start(end):
        return False
    return filter_matches(schedule.event_filter or {}, event)


def filter_matches(event_filter: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an event passes an EventFilter {FilterType, Dimensions} (a campaign's, or a journey's start)."""
    event_type = event.get("EventType", "")
    system = event_type.startswith("_")
    if (event_filter.get("FilterType") == "SYSTEM") != system:
        return False
    dimensions = event_filter.get("Dimensions") or {}
    if "EventType" in dimensions and not _set_holds(dimensions["EventType"], event_type):
        return False
    attributes = event.get("Attributes") or {}
    for name, dimension in (dimensions.get("Attributes") or {}).items():
        if not _attribute_holds(dimension, attributes.get(name)):
            return False
    metrics = event.get("Metrics") or {}
    for name, dimension in (dimensions.get("Metrics") or {}).items():
        value = metrics.get(name)
        if value is None or not COMPARE[dimension["ComparisonOperator"]](float(value), dimension["Value"]):
            return False
    return True
