"""Pinpoint's endpoint rules that need no storage: field checks, quotas and the partial-update merge.

Sources: API Reference, "Endpoint" and "Endpoints" (write semantics) and "Amazon Pinpoint quotas". Where Pinpoint left
behaviour undocumented, the choice made here is written next to the code and in docs/endpoints-and-events.md.
"""

from __future__ import annotations

import math
import re
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from clarion.errors import BadRequest
from clarion.instants import instant_ms

MAX_BATCH_ITEMS = 100
MAX_ENDPOINT_BYTES = 15 * 1024
MAX_ATTRIBUTE_NAMES_PER_APP = 250  # across Attributes, Metrics and UserAttributes
MAX_ATTRIBUTE_NAME = 50
MAX_ATTRIBUTE_VALUE = 100
MAX_ATTRIBUTE_VALUES = 50
MAX_ENDPOINTS_PER_USER = 15
# Pinpoint documents no length for endpoint and user ids; an endpoint is at most 15 KB, so Clarion bounds each id
# well below that (docs/endpoints-and-events.md), and ids stay cheap to index and to log.
MAX_ID_LENGTH = 1024

# A user at the endpoint cap may still gain one of these: the oldest push endpoint makes room ("Amazon Pinpoint
# quotas", endpoints per user).
PUSH_CHANNELS = frozenset({"ADM", "GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "BAIDU"})

# Kinds in the project name registry; RemoveAttributes uses the same words for its attribute-type.
CUSTOM_ATTRIBUTES = "endpoint-custom-attributes"
METRIC_ATTRIBUTES = "endpoint-metric-attributes"
USER_ATTRIBUTES = "endpoint-user-attributes"
ATTRIBUTE_KINDS = (CUSTOM_ATTRIBUTES, METRIC_ATTRIBUTES, USER_ATTRIBUTES)

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_endpoint_id(endpoint_id: str, where: str) -> None:
    if not endpoint_id:
        raise BadRequest(f"{where}: the endpoint id must not be empty")
    if len(endpoint_id) > MAX_ID_LENGTH:
        raise BadRequest(f"{where}: an endpoint id is at most {MAX_ID_LENGTH} characters, not {len(endpoint_id)}")
    if any(c in endpoint_id for c in "${}"):
        raise BadRequest(f"{where}: the endpoint id {endpoint_id!r} must not contain '$', '{{' or '}}'")


def _check_attribute_map(values: dict[str, list[str]], where: str) -> None:
    for name, items in values.items():
        if not name or len(name) > MAX_ATTRIBUTE_NAME:
            raise BadRequest(f"{where}: attribute name {name[:60]!r} must be 1 to {MAX_ATTRIBUTE_NAME} characters")
        if len(items) > MAX_ATTRIBUTE_VALUES:
            raise BadRequest(
                f"{where}.{name}: an attribute holds at most {MAX_ATTRIBUTE_VALUES} values, not {len(items)}"
            )
        for item in items:
            if len(item) > MAX_ATTRIBUTE_VALUE:
                raise BadRequest(
                    f"{where}.{name}: value {item[:30]!r}... is longer than {MAX_ATTRIBUTE_VALUE} characters"
                )


def check_address(channel: str | None, address: str | None, where: str) -> None:
    if address is not None and channel in ("SMS", "VOICE") and not _E164.fullmatch(address):
        raise BadRequest(f"{where}.Address: {address!r} is not an E.164 phone number (+12065550100) for {channel}")
    if address is not None and channel == "EMAIL" and not _EMAIL.fullmatch(address):
        raise BadRequest(f"{where}.Address: {address!r} is not an email address")


def check_endpoint_request(request: dict[str, Any], where: str) -> None:
    """Reject what Pinpoint rejects, naming the field; `where` is the path of the item in the request."""
    check_address(request.get("ChannelType"), request.get("Address"), where)
    effective = request.get("EffectiveDate")
    if effective is not None and instant_ms(effective) is None:
        # The server sets EffectiveDate itself; a value it cannot read is a mistake worth saying, not replacing.
        raise BadRequest(f"{where}.EffectiveDate: {effective[:40]!r} is not an ISO-8601 date (2026-11-22T10:15:00Z)")
    user_id = (request.get("User") or {}).get("UserId")
    if user_id is not None and len(user_id) > MAX_ID_LENGTH:
        raise BadRequest(f"{where}.User.UserId is at most {MAX_ID_LENGTH} characters, not {len(user_id)}")
    opt_out = request.get("OptOut")
    if opt_out is not None and opt_out not in ("ALL", "NONE"):
        raise BadRequest(f"{where}.OptOut must be ALL or NONE, not {opt_out!r}")
    status = request.get("EndpointStatus")
    if status is not None and status not in ("ACTIVE", "INACTIVE"):
        raise BadRequest(f"{where}.EndpointStatus must be ACTIVE or INACTIVE, not {status!r}")
    _check_attribute_map(request.get("Attributes") or {}, f"{where}.Attributes")
    _check_attribute_map((request.get("User") or {}).get("UserAttributes") or {}, f"{where}.User.UserAttributes")
    for name, value in (request.get("Metrics") or {}).items():
        if not name or len(name) > MAX_ATTRIBUTE_NAME:
            raise BadRequest(f"{where}.Metrics: metric name {name[:60]!r} must be 1 to {MAX_ATTRIBUTE_NAME} characters")
        if not math.isfinite(value):
            raise BadRequest(f"{where}.Metrics.{name} must be a finite number")
    timezone = (request.get("Demographic") or {}).get("Timezone")
    if timezone and timezone not in _time_zones():
        raise BadRequest(f"{where}.Demographic.Timezone: {timezone!r} is not an IANA time zone (America/Los_Angeles)")
    location = request.get("Location") or {}
    latitude, longitude = location.get("Latitude"), location.get("Longitude")
    if latitude is not None and not -90 <= latitude <= 90:
        raise BadRequest(f"{where}.Location.Latitude must be between -90 and 90, not {latitude}")
    if longitude is not None and not -180 <= longitude <= 180:
        raise BadRequest(f"{where}.Location.Longitude must be between -180 and 180, not {longitude}")


def _replace_per_key(stored: dict[str, Any] | None, given: dict[str, Any]) -> dict[str, Any]:
    """Each key given replaces that key's whole value; an empty list removes the key (Clarion's way to clear it)."""
    merged = dict(stored or {})
    for key, value in given.items():
        if value == []:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def merge_endpoint(stored: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Pinpoint's partial update: fields left out keep their values.

    Scalars are replaced; Attributes/Metrics are replaced per key (a list is never appended to);
    Demographic/Location are merged per member. User attributes are merged by the caller, per user.
    """
    doc = dict(stored)
    for member in ("ChannelType", "Address", "OptOut"):
        if member in request:
            doc[member] = request[member]
    for member in ("Attributes", "Metrics"):
        if member in request:
            doc[member] = _replace_per_key(doc.get(member), request[member])
    for member in ("Demographic", "Location"):
        if member in request:
            doc[member] = {**doc.get(member, {}), **request[member]}
    user = request.get("User")
    if user is not None and "UserId" in user:
        doc["User"] = {"UserId": user["UserId"]} if user["UserId"] else {}
    return {key: value for key, value in doc.items() if value not in ({}, None)}


def merge_user_attributes(stored: dict[str, list[str]], given: dict[str, list[str]]) -> dict[str, list[str]]:
    return _replace_per_key(stored, given)


def filter_blocked(request: dict[str, Any], blocked: dict[str, list[str]]) -> dict[str, Any]:
    """Drop attributes that RemoveAttributes excluded from capture (names or glob patterns)."""
    if not blocked:
        return request

    def keep(values: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
        patterns = blocked.get(kind)
        if values is None or not patterns:
            return values
        return {k: v for k, v in values.items() if not any(fnmatchcase(k, p) for p in patterns)}

    request = dict(request)
    if "Attributes" in request:
        request["Attributes"] = keep(request["Attributes"], CUSTOM_ATTRIBUTES)
    if "Metrics" in request:
        request["Metrics"] = keep(request["Metrics"], METRIC_ATTRIBUTES)
    user = request.get("User")
    if user and "UserAttributes" in user:
        request["User"] = {**user, "UserAttributes": keep(user["UserAttributes"], USER_ATTRIBUTES)}
    return request
