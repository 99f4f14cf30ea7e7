"""Import file formats (Pinpoint's "Importing segments" guide): CSV with dotted header paths, and newline-delimited
JSON.

Each line becomes one `ImportRow`: an endpoint to upsert, a user whose endpoints join the segment (a file of
user ids only), or the reason the line is refused. A bad line never stops the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from clarion.endpoints import rules
from clarion.errors import BadRequest
from clarion.shapes import EndpointBatchItem, EndpointDemographic, EndpointLocation

# Not importable (Pinpoint sets them itself); an export's response-only fields are dropped by the decoder.
NOT_IMPORTED = ("EndpointStatus", "RequestId")


class HeaderError(Exception):
    """The CSV header cannot be read: every row of the file would be wrong, so the file (piece) fails."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    endpoint_id: str | None = None
    request: dict[str, Any] | None = None  # EndpointRequest members, wire names
    user_id: str | None = None  # a user-id-only row: the user's existing endpoints join the segment
    error: str | None = None

    @property
    def is_new_ready(self) -> bool:
        """Carries what a new endpoint needs (Address and ChannelType)."""
        request = self.request or {}
        return bool(request.get("Address")) and bool(request.get("ChannelType"))


def _wire_names(struct: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(struct))


_LOCATION = _wire_names(EndpointLocation)
_DEMOGRAPHIC = _wire_names(EndpointDemographic)
_SCALARS = frozenset({"Id", "ChannelType", "Address", "OptOut", "EffectiveDate"})
_FLOATS = frozenset({("Location", "Latitude"), ("Location", "Longitude")})


def _row(line: int, item: dict[str, Any]) -> ImportRow:
    """Validate one decoded item as UpdateEndpointsBatch would, and classify it."""
    try:
        typed = msgspec.convert(item, EndpointBatchItem)
    except msgspec.ValidationError as error:
        return ImportRow(line, error=str(error))
    request = msgspec.to_builtins(typed)
    for member in NOT_IMPORTED:
        request.pop(member, None)
    endpoint_id = request.pop("Id", None)
    user = request.get("User") or {}
    if endpoint_id is None and set(request) == {"User"} and set(user) == {"UserId"}:
        return ImportRow(line, user_id=user["UserId"])
    try:
        if endpoint_id is not None:
            rules.check_endpoint_id(endpoint_id, "Id")
        rules.check_endpoint_request(request, "endpoint")
    except BadRequest as error:
        return ImportRow(line, error=error.message)
    return ImportRow(line, endpoint_id=endpoint_id, request=request)


def parse_json_lines(first_line: int, lines: list[bytes]) -> Iterator[ImportRow]:
    """Newline-delimited EndpointRequest objects (with Id); blank lines are skipped."""
    decoder = msgspec.json.Decoder()
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        line = first_line + offset
        try:
            item = decoder.decode(raw)
        except msgspec.DecodeError as error:
            yield ImportRow(line, error=f"not JSON: {error}")
            continue
        if not isinstance(item, dict):
            yield ImportRow(line, error="each line must hold one JSON object")
            continue
        yield _row(line, item)


class CsvFormat:
    """A CSV file's header, read once: each column's path into the endpoint request."""

    def __init__(self, header: bytes) -> None:
        try:
            names = next(csv.reader([header.decode("utf-8-sig")]))
        except (UnicodeDecodeError, StopIteration, csv.Error) as error:
            raise HeaderError(f"header: cannot read it ({type(error).__name__})") from None
        self.columns = [self._path(number, name.strip()) for number, name in enumerate(names, start=1)]

    @staticmethod
    def _path(number: int, name: str) -> tuple[str, ...]:
        parts = tuple(name.split("."))
        head = parts[0]
        if len(parts) == 1 and head in _SCALARS:
            return parts
        if len(parts) == 2 and (
            (head == "Location" and parts[1] in _LOCATION)
            or (head == "Demographic" and parts[1] in _DEMOGRAPHIC)
            or head in ("Attributes", "Metrics")
            or parts == ("User", "UserId")
        ):
            return parts
        if len(parts) == 3 and parts[:2] == ("User", "UserAttributes"):
            return parts
        # The column is named by position: the file may come from anywhere, and its text is not repeated back.
        raise HeaderError(f"header: column {number} is not an endpoint field (docs/segments.md lists the paths)")

    def parse(self, first_line: int, lines: list[bytes]) -> Iterator[ImportRow]:
        for offset, raw in enumerate(lines):
            if not raw.strip():
                continue
            line = first_line + offset
            try:
                text = raw.decode("utf-8")
                # Without quotes a comma always separates: split is 5x cheaper than a csv reader.
                values = text.split(",") if '"' not in text else next(csv.reader([text]))
            except UnicodeDecodeError:
                yield ImportRow(line, error="not UTF-8")
                continue
            except csv.Error as error:
                yield ImportRow(line, error=f"not CSV: {error}")
                continue
            if len(values) != len(self.columns):
                yield ImportRow(line, error=f"{len(values)} columns where the header has {len(self.columns)}")
                continue
            try:
                item = self._item(values)
            except ValueError as error:
                yield ImportRow(line, error=str(error))
                continue
            yield _row(line, item)

    def _item(self, values: list[str]) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for number, (path, value) in enumerate(zip(self.columns, values, strict=True), start=1):
            if value == "":
                continue
            head = path[0]
            if len(path) == 1:
                item[head] = value
            elif head == "Attributes" or path[:2] == ("User", "UserAttributes"):
                values = item.setdefault(head, {})
                if head == "User":
                    values = values.setdefault("UserAttributes", {})
                values.setdefault(path[-1], []).append(value)  # a repeated column adds a value
            elif head == "Metrics" or path in _FLOATS:
                item.setdefault(head, {})[path[1]] = _number(number, value)
            else:
                item.setdefault(head, {})[path[1]] = value
        return item


def _number(column: int, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"column {column} is not a number") from None
