"""Opaque page tokens and page sizes, as Pinpoint's list calls take them (PageSize is a string on the wire)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from clarion.errors import BadRequest

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest(f"PageSize must be a whole number, not {raw!r}") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"PageSize must be between 1 and {MAX_PAGE_SIZE}, not {size}")
    return size


def encode_token(position: int | str) -> str:
    return base64.urlsafe_b64encode(f"v1:{position}".encode()).decode().rstrip("=")


def decode_text_token(token: str) -> str:
    """The position an `encode_token` token holds, as text (for keyset positions that are not numbers)."""
    try:
        prefix, position = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":", 1)
        if prefix != "v1":
            raise ValueError(prefix)
        return position
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"The page token {token!r} is not one Clarion issued") from None


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(decode_text_token(token))
    except ValueError:
        raise BadRequest(f"The page token {token!r} is not one Clarion issued") from None


def page_response(
    rows: Sequence[T], size: int, item: Callable[[T], Any], position: Callable[[T], int]
) -> dict[str, Any]:
    """`{"Item": [...], "NextToken"?}` from up to size + 1 rows: the extra row only says that more remain."""
    response: dict[str, Any] = {"Item": [item(row) for row in rows[:size]]}
    if len(rows) > size:
        response["NextToken"] = encode_token(position(rows[size - 1]))
    return response
