"""What a segment definition must satisfy before it is stored (API Reference, "Segments"; "Amazon Pinpoint quotas").

msgspec has already checked types and enums against the model; these are the rules the model cannot express.
Every error names the field path, as a client wrote it: `SegmentGroups.Groups[0].Dimensions[1].Attributes.tier.Values`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from clarion.errors import BadRequest

MAX_DIMENSIONS = 100  # "100 dimensions per segment" ("Amazon Pinpoint quotas"): every criterion counts
MAX_VALUE_LENGTH = 100  # criteria values ≤100 characters ("Amazon Pinpoint quotas")

METRIC_OPERATORS = ("GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN_OR_EQUAL", "EQUAL")
ATTRIBUTE_TYPES = ("INCLUSIVE", "EXCLUSIVE", "CONTAINS", "BEFORE", "AFTER", "ON", "BETWEEN")
DATE_TYPES = ("BEFORE", "AFTER", "ON", "BETWEEN")
DEMOGRAPHICS = ("AppVersion", "Channel", "DeviceType", "Make", "Model", "Platform")
BEHAVIOR_MEMBER = "ClarionBehavior"  # Clarion's extension member of SegmentDimensions (docs/segments.md)
MAX_WITHIN_DAYS = 3660
ENGAGEMENT_MEMBER = "ClarionEngagement"  # Clarion's extension member of SegmentDimensions (docs/analytics.md)
ENGAGEMENT_RANGES = {"Score": (0, 15), "Recency": (0, 5), "Frequency": (0, 5), "Monetary": (0, 5)}


def parse_instant(value: str) -> datetime | None:
    """An ISO-8601 date or date-time; a missing offset means UTC. None if `value` is not one."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def validate_definition(definition: dict[str, Any]) -> None:
    """Check `{Dimensions?, SegmentGroups?}` on its own (references to other segments are checked by the service)."""
    count = 0
    if "Dimensions" in definition:
        count += _dimensions(definition["Dimensions"], "Dimensions")
    for index, group in enumerate((definition.get("SegmentGroups") or {}).get("Groups") or []):
        where = f"SegmentGroups.Groups[{index}]"
        for position, dimensions in enumerate(group.get("Dimensions") or []):
            count += _dimensions(dimensions, f"{where}.Dimensions[{position}]")
        for position, reference in enumerate(group.get("SourceSegments") or []):
            if not reference.get("Id", "").strip():
                raise BadRequest(f"{where}.SourceSegments[{position}].Id must not be empty")
            if "Version" in reference and reference["Version"] < 1:
                raise BadRequest(f"{where}.SourceSegments[{position}].Version must be at least 1")
    if count > MAX_DIMENSIONS:
        raise BadRequest(f"A segment can have at most {MAX_DIMENSIONS} dimensions, not {count}")


def references(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every SourceSegments entry, with its field path."""
    for index, group in enumerate((definition.get("SegmentGroups") or {}).get("Groups") or []):
        for position, reference in enumerate(group.get("SourceSegments") or []):
            yield f"SegmentGroups.Groups[{index}].SourceSegments[{position}]", reference


def _dimensions(dimensions: dict[str, Any], where: str) -> int:
    """Validate one SegmentDimensions object; return how many criteria it holds."""
    count = 0
    for member in ("Attributes", "UserAttributes"):
        for name, dimension in (dimensions.get(member) or {}).items():
            _attribute(dimension, _name(name, f"{where}.{member}"))
            count += 1
    for name, dimension in (dimensions.get("Metrics") or {}).items():
        path = _name(name, f"{where}.Metrics")
        operator = dimension.get("ComparisonOperator")
        if operator not in METRIC_OPERATORS:
            raise BadRequest(
                f"{path}.ComparisonOperator must be one of {', '.join(METRIC_OPERATORS)}, not {operator!r}"
            )
        count += 1
    if (dimensions.get("Behavior") or {}).get("Recency"):
        count += 1
    for name, dimension in (dimensions.get("Demographic") or {}).items():
        _set(dimension, f"{where}.Demographic.{name}")
        count += 1
    location = dimensions.get("Location") or {}
    if "Country" in location:
        _set(location["Country"], f"{where}.Location.Country")
        count += 1
    if "GPSPoint" in location:
        _gps_point(location["GPSPoint"], f"{where}.Location.GPSPoint")
        count += 1
    for index, item in enumerate(dimensions.get(BEHAVIOR_MEMBER) or []):
        _behavior(item, f"{where}.{BEHAVIOR_MEMBER}[{index}]")
        count += 1
    engagement = dimensions.get(ENGAGEMENT_MEMBER)
    if engagement is not None:
        count += _engagement(engagement, f"{where}.{ENGAGEMENT_MEMBER}")
    return count


def _name(name: str, where: str) -> str:
    if not name.strip():
        raise BadRequest(f"{where} has an empty attribute name")
    return f"{where}.{name}"


def _values(values: list[str], where: str, check: Callable[[str, str], None] | None = None) -> None:
    if not values:
        raise BadRequest(f"{where}.Values must not be empty")
    for index, value in enumerate(values):
        if len(value) > MAX_VALUE_LENGTH:
            raise BadRequest(f"{where}.Values[{index}] is longer than {MAX_VALUE_LENGTH} characters")
        if check is not None:
            check(value, f"{where}.Values[{index}]")


def _instant(value: str, where: str) -> None:
    if parse_instant(value) is None:
        raise BadRequest(f"{where} must be an ISO-8601 date or date-time, not {value!r}")


def _attribute(dimension: dict[str, Any], where: str) -> None:
    kind = dimension.get("AttributeType", "INCLUSIVE")
    if kind not in ATTRIBUTE_TYPES:  # msgspec checks the enum; kept so the rule stands on its own
        raise BadRequest(f"{where}.AttributeType must be one of {', '.join(ATTRIBUTE_TYPES)}, not {kind!r}")
    values = dimension.get("Values") or []
    _values(values, where, _instant if kind in DATE_TYPES else None)
    if kind == "BETWEEN":
        if len(values) != 2:
            raise BadRequest(f"{where}.Values must hold exactly two instants for BETWEEN, not {len(values)}")
        start, end = parse_instant(values[0]), parse_instant(values[1])
        if start and end and start > end:
            raise BadRequest(f"{where}.Values must be in order for BETWEEN: {values[0]!r} is after {values[1]!r}")


def _set(dimension: dict[str, Any], where: str) -> None:
    _values(dimension.get("Values") or [], where)


def _gps_point(point: dict[str, Any], where: str) -> None:
    coordinates = point.get("Coordinates") or {}
    latitude, longitude = coordinates.get("Latitude"), coordinates.get("Longitude")
    if latitude is None or not -90 <= latitude <= 90:
        raise BadRequest(f"{where}.Coordinates.Latitude must be between -90 and 90, not {latitude}")
    if longitude is None or not -180 <= longitude <= 180:
        raise BadRequest(f"{where}.Coordinates.Longitude must be between -180 and 180, not {longitude}")
    if "RangeInKilometers" in point and not point["RangeInKilometers"] > 0:
        raise BadRequest(f"{where}.RangeInKilometers must be greater than 0, not {point['RangeInKilometers']}")


def _behavior(item: dict[str, Any], where: str) -> None:
    """One ClarionBehavior item: EventType plus exactly one of the window forms (or none: ever performed)."""
    if not str(item.get("EventType", "")).strip():
        raise BadRequest(f"{where}.EventType must not be empty")
    windows = [key for key in ("WithinDays", "Since", "NotSince") if item.get(key) is not None]
    if len(windows) > 1:
        raise BadRequest(f"{where} may have only one of WithinDays, Since and NotSince, not {' and '.join(windows)}")
    if "NotSince" in windows and item.get("Minimum") is not None:
        raise BadRequest(f"{where}.Minimum cannot be combined with NotSince (it means: not performed once since)")
    minimum = item.get("Minimum")
    if minimum is not None and minimum < 1:
        raise BadRequest(f"{where}.Minimum must be at least 1, not {minimum}")
    days = item.get("WithinDays")
    if days is not None and not 1 <= days <= MAX_WITHIN_DAYS:
        raise BadRequest(f"{where}.WithinDays must be between 1 and {MAX_WITHIN_DAYS}, not {days}")
    for key in ("Since", "NotSince"):
        if item.get(key) is not None:
            _instant(item[key], f"{where}.{key}")
    for name, values in (item.get("Attributes") or {}).items():
        _values(values, _name(name, f"{where}.Attributes"))


def _engagement(measures: dict[str, Any], where: str) -> int:
    """ClarionEngagement: at least one measure, each with bounds inside the measure's range."""
    measures = {name: bounds for name, bounds in measures.items() if name != "Of"}
    if not measures:
        raise BadRequest(f"{where} must name at least one of {', '.join(ENGAGEMENT_RANGES)}")
    for measure, bounds in measures.items():
        low, high = ENGAGEMENT_RANGES[measure]
        minimum, maximum = bounds.get("Minimum", low), bounds.get("Maximum", high)
        for name, value in (("Minimum", minimum), ("Maximum", maximum)):
            if not low <= value <= high:
                raise BadRequest(f"{where}.{measure}.{name} must be between {low} and {high}, not {value}")
        if minimum > maximum:
            raise BadRequest(f"{where}.{measure}.Minimum ({minimum}) must not exceed its Maximum ({maximum})")
    return len(measures)
