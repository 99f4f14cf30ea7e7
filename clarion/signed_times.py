"""The times signed requests carry in headers, parsed one way for every signature Clarion checks.

SigV4's `X-Amz-Date` / `Date`, SendGrid's event-webhook timestamp and the `t=` of `X-Clarion-Signature` all name the
moment of signing, which bounds how long a captured request can be replayed. Anyone can send these headers before
any secret is checked, so the parsers accept only the exact syntax, refuse long input before converting it, and
raise ValueError (never anything else) for the rest: a 5,000-digit timestamp is a refusal, not a server error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_UNIX_DIGITS = 11  # seconds up to the year 5138
MAX_HTTP_DATE = 64  # "Wednesday, 09-Nov-1994 08:49:37 GMT" and friends are well under this


def unix_seconds(text: str) -> datetime:
    """`1764000000` (seconds since the epoch, ASCII digits only) as an aware UTC time."""
    if not (0 < len(text) <= MAX_UNIX_DIGITS and text.isascii() and text.isdigit()):
        raise ValueError("a timestamp is 1 to 11 digits of seconds since 1970-01-01")
    return datetime.fromtimestamp(int(text), UTC)


def amz_date(text: str) -> datetime:
    """ISO-8601 basic format as SigV4 signs it, `20261122T101500Z`, exactly."""
    if len(text) != 16 or not text.isascii():
        raise ValueError("X-Amz-Date is 16 characters, YYYYMMDD'T'HHMMSS'Z'")
    # Sliced by hand: every signed request carries one, and strptime (with its strftime round trip to refuse the
    # single-digit fields it tolerates) cost 15 µs of a SendMessages call's own 100-odd µs in the API layer.
    digits = text[:8] + text[9:15]
    if text[8] != "T" or text[15] != "Z" or not digits.isdigit():
        raise ValueError("X-Amz-Date is not in canonical form YYYYMMDD'T'HHMMSS'Z'")
    return datetime(
        int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]), int(text[13:15]), tzinfo=UTC
    )


def http_date(text: str) -> datetime:
    """An RFC 1123 `Date` header (`Sun, 22 Nov 2026 10:15:00 GMT`) as an aware UTC time."""
    if len(text) > MAX_HTTP_DATE:
        raise ValueError(f"a Date header is at most {MAX_HTTP_DATE} characters")
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, IndexError, OverflowError) as error:
        raise ValueError(str(error)) from None
    if parsed.tzinfo is None:  # "-0000" parses as naive; it means UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
