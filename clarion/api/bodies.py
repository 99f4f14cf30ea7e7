"""Request bodies read with a bound: the one way every route of Clarion's reads what a client sends.

Without it a client decides how much memory a request takes: one unauthenticated 400 MB POST held 800 MB while a
webhook route read it whole before looking at its signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from clarion.errors import PayloadTooLarge

MAX_LENGTH_DIGITS = 12
BodyHandler = Callable[[Request, bytes], Awaitable[Response]]


async def read_bounded_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    """Read an ASGI request body of at most `limit` bytes: a larger Content-Length is refused before any byte is
    read, and a body that grows past it (chunked, or lying about its length) is refused as soon as it does."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and (len(value) > MAX_LENGTH_DIGITS or int(value) > limit):
            shown = value.decode() if len(value) <= MAX_LENGTH_DIGITS else "more than 10^12"
            raise PayloadTooLarge(f"The request body is {shown} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes, the most accepted")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def with_bounded_body(limit: int, handler: BodyHandler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that hands `handler` the body, read with the bound, or answers 413 without calling it."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_bounded_body(request.scope, request.receive, limit)
        except PayloadTooLarge as error:
            return PlainTextResponse(error.message, status_code=error.status)
        return await handler(request, body)

    return endpoint
