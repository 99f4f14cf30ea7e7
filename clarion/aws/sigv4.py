"""AWS Signature Version 4 as a client computes it: the canonical request and the signature botocore's
``SigV4Auth`` produces, byte for byte (see ``botocore/auth.py``).

Clarion signs its own calls to AWS APIs with it (``sign_request``), and the Pinpoint API verifies incoming requests
against the same canonical form (clarion/api/sigv4.py), so what Clarion sends is what it would itself accept.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    now: datetime,
    session_token: str = "",
) -> dict[str, str]:
    """The headers that sign an outgoing request as botocore's SigV4Auth would: `headers` plus Host,
    X-Amz-Date, X-Amz-Security-Token (temporary credentials only) and Authorization.

    Every header given is signed, so send exactly the headers returned.
    """
    parts = urlsplit(url)
    timestamp = now.astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    added = {"Host": _host_header(parts.scheme, parts.hostname or "", parts.port), "X-Amz-Date": timestamp}
    if session_token:
        added["X-Amz-Security-Token"] = session_token
    signed = {name.lower(): value for name, value in {**headers, **added}.items()}
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(parts.path.encode("utf-8")),
            canonical_query(parse_query(parts.query.encode("utf-8")), presigned=False),
            "".join(canonical_header(name, [signed[name]]) for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope_date = timestamp[:8]
    signature = signature_of(canonical_request, timestamp, secret_access_key, scope_date, region, service)
    authorization = (
        f"{ALGORITHM} Credential={access_key_id}/{scope_date}/{region}/{service}/{TERMINATOR}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {**headers, **added, "Authorization": authorization}


def _host_header(scheme: str, hostname: str, port: int | None) -> str:
    """Host as HTTP clients send it: the default port left out, IPv6 literals in brackets."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return host
    return f"{host}:{port}"


def canonical_header(name: str, values: Sequence[str]) -> str:
    """Like botocore: trim each value and collapse inner whitespace, join with ','."""
    return f"{name}:{','.join(' '.join(v.split()) for v in values)}\n"


def signature_of(
    canonical_request: str, timestamp: str, secret: str, scope_date: str, region: str, service: str
) -> str:
    scope = f"{scope_date}/{region}/{service}/{TERMINATOR}"
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest(),
        ]
    )
    key = _signing_key(secret, scope_date, region, service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive kSigning; cached because it is 4 HMACs and changes once a day per key."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def parse_query(query_string: bytes) -> list[tuple[bytes, bytes]]:
    """Split and percent-decode the query exactly once; '+' means space.

    botocore puts ``request.params`` on the wire with ``urlencode`` (space as
    '+') but signs them with ``quote`` (space as '%20'), so '+' must decode to
    a space for those requests to verify. Its own serializer never emits a
    bare '+'. Like botocore, empty pieces ('a&&b') are kept as ('', '').
    """
    if not query_string:
        return []
    pairs = []
    for piece in query_string.split(b"&"):
        key, _, value = piece.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(key.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return pairs


def canonical_query(query: list[tuple[bytes, bytes]], *, presigned: bool) -> str:
    """Re-encode RFC 3986 style; sort by encoded key, then value (as botocore)."""
    encoded = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query if not (presigned and k == b"X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_uri(raw_path: bytes) -> str:
    """Non-S3 rule: drop dot segments and empty segments, then percent-encode *again*.

    So ``/endpoints/ep%201`` is signed as ``/endpoints/ep%25201``. Mirrors
    botocore's ``normalize_url_path`` + ``quote(path, safe='/~')``, which means
    ``/a/b/..`` and ``//a`` share a signature with ``/a``.
    """
    if not raw_path:
        return "/"
    segments: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment == b"..":
            if segments:
                segments.pop()
        elif segment and segment != b".":
            segments.append(segment)
    path = b"/".join(segments)
    if raw_path.startswith(b"/"):
        path = b"/" + path
    if raw_path.endswith(b"/") and segments:
        path += b"/"
    return quote(path, safe="/~")
