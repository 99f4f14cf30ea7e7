"""Route raw request paths to Pinpoint operations.

Routing works on the raw (still percent-encoded) path split at `/`, decoding each segment afterwards, because
ids may themselves contain an encoded `/` (`%2F`): tag ARNs always do, endpoint and user ids may.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from clarion.api.operations import OPERATIONS, Operation
from clarion.endpoints.rules import MAX_ID_LENGTH as MAX_PATH_VALUE
from clarion.errors import BadRequest, MethodNotAllowed, NotFound


@dataclass(frozen=True, slots=True)
class _Route:
    operation: Operation
    segments: tuple[str | None, ...]  # a literal segment, or None where a parameter goes
    labels: tuple[str, ...]  # member names of the parameters, in order
    literals: int


def _compile(operation: Operation) -> _Route:
    label_to_member = {label: member for member, label in operation.path_params}
    segments: list[str | None] = []
    labels: list[str] = []
    for part in operation.uri.strip("/").split("/"):
        if part.startswith("{") and part.endswith("}"):
            segments.append(None)
            labels.append(label_to_member[part[1:-1]])
        else:
            segments.append(part)
    return _Route(operation, tuple(segments), tuple(labels), sum(s is not None for s in segments))


class Router:
    """Routes by segment count, then by the literal segments of each route shape: a request is tested against the
    routes whose literals it carries, not against every route of its length (59 of them for five segments)."""

    def __init__(self, operations: dict[str, Operation] = OPERATIONS) -> None:
        # length -> literal count -> literal positions -> the literals there -> routes, in declaration order
        self._index: dict[int, dict[int, dict[tuple[int, ...], dict[tuple[str, ...], list[_Route]]]]] = {}
        for operation in operations.values():
            route = _compile(operation)
            positions = tuple(i for i, s in enumerate(route.segments) if s is not None)
            shapes = self._index.setdefault(len(route.segments), {}).setdefault(route.literals, {})
            literals = tuple(route.segments[i] or "" for i in positions)
            shapes.setdefault(positions, {}).setdefault(literals, []).append(route)
        for length, levels in self._index.items():  # a literal segment beats a parameter
            self._index[length] = dict(sorted(levels.items(), reverse=True))

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]]:
        parts = raw_path.strip("/").split("/")
        allowed: list[str] = []
        for shapes in self._index.get(len(parts), {}).values():
            found = [
                route
                for positions, by_literals in shapes.items()
                for route in by_literals.get(tuple(parts[i] for i in positions), ())
            ]
            for route in found:
                if route.operation.method == method:
                    raw = [p for s, p in zip(route.segments, parts, strict=True) if s is None]
                    values = [_path_value(label, p) for label, p in zip(route.labels, raw, strict=True)]
                    if any(not v for v in values):  # an empty id is no id, whatever other verbs the path has
                        raise NotFound(f"No Pinpoint operation is found at {method} {_shown(raw_path)}: an id is empty")
                    return route.operation, dict(zip(route.labels, values, strict=True))
                allowed.append(route.operation.method)
            if found:  # the most specific routes that fit the path decide, whatever their methods
                break
        if allowed:
            raise MethodNotAllowed(f"{method} is not allowed on {_shown(raw_path)}; use {', '.join(sorted(allowed))}")
        raise NotFound(f"No Pinpoint operation is found at {method} {_shown(raw_path)}")


def _path_value(member: str, raw: str) -> str:
    """A path parameter decoded strictly: ids that are not UTF-8 would otherwise all fold into U+FFFD and name one
    another's data; an id longer than any Clarion keeps is refused before it reaches a query."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"{member} in the path is not valid UTF-8 once percent-decoded") from None
    if len(value) > MAX_PATH_VALUE:
        raise BadRequest(f"{member} in the path is at most {MAX_PATH_VALUE} characters, not {len(value)}")
    return value


def _shown(raw_path: str) -> str:
    """The path as an error message quotes it: decoded where it can be, cut short."""
    shown = unquote(raw_path)
    return shown if len(shown) <= 200 else shown[:200] + "..."
