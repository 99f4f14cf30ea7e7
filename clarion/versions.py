"""Version ids as Pinpoint's paths and queries carry them: strings that must hold a whole number from 1 up."""

from __future__ import annotations

from clarion.errors import BadRequest


def parse_version(raw: str) -> int:
    try:
        version = int(raw)
    except ValueError:
        raise BadRequest(f"Version must be a whole number, not {raw!r}") from None
    if version < 1:
        raise BadRequest(f"Version must be at least 1, not {version}")
    return version
