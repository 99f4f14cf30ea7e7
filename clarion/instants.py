"""Instants written as strings inside endpoint data, read the same way by every store.

Segment date criteria (BEFORE/AFTER/ON/BETWEEN, API Reference, "Segments") compare endpoint attribute values as
instants. The accepted syntax is deliberately narrower than ISO-8601 so that Python, SQLite (which calls `instant_ms` as
the SQL function `clarion_instant_ms`) and PostgreSQL (which mirrors `INSTANT_PATTERN` in SQL) agree on every string:
`YYYY-MM-DD`, optionally `T` or a space and `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` (1–6 fraction digits), optionally `Z` or
`±HH:MM` (hours up to 14). No offset means UTC; impossible dates (`2024-02-30`) and year 0000 are not instants.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Optional parts are written `(x|)`, not `(x)?`: the pattern goes into SQL text, where `?` marks a parameter.
INSTANT_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6}|)|)(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9]|)|)$"
)
_INSTANT = re.compile(INSTANT_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Exact epoch milliseconds (floor), without float rounding."""
    return (moment - _EPOCH) // _MS


def instant_ms(value: str | None) -> int | None:
    """A string in the syntax above as epoch milliseconds (fraction truncated), else None."""
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
