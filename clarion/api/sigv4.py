"""AWS Signature Version 4: verification for incoming requests, and signing for the AWS APIs Clarion calls.

Clients are unmodified AWS SDKs, so "correct" means "byte-for-byte what
botocore's ``SigV4Auth`` / ``SigV4QueryAuth`` compute" (see ``botocore/auth.py``).
Everything is rebuilt from the raw wire bytes (ASGI ``raw_path``,
``query_string`` and ``headers``): a decoded path loses the difference between
``/`` and ``%2F``, which the signature covers. Signing (``sign_request``) uses the
same canonical form, so what Clarion sends is what it would itself accept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes, urlsplit

__all__ = ["SignatureError", "VerifiedRequest", "sign_request", "verify_request"]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600  # AWS's limit for X-Amz-Expires

MISSING_MESSAGE = "Missing Authentication Token"
UNKNOWN_KEY_MESSAGE = "The security token included in the request is invalid."
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details."
)

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# Region ends up inside ARNs we hand back, so keep it to a safe alphabet.
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    access_key_id: str
    region: str  # from the credential scope; used to build ARNs
    signed_at: datetime  # aware UTC


class SignatureError(Exception):
    """Why a request's signature was refused.

    `reason` is a short machine word for logs.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        # missing | malformed | unknown-key | mismatch | expired | wrong-scope
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class _AuthParams:
    """The signer's claims, from either the Authorization header or a presigned URL."""

    access_key_id: str
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: str
    signature: str
    amz_date: str | None  # None for header auth: taken from X-Amz-Date/Date
    expires: int | None  # presigned only


def verify_request(
    method: str,
    raw_path: bytes,
    query_string: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    *,
    service: str = "mobiletargeting",
    max_skew: timedelta = timedelta(minutes=5),
) -> VerifiedRequest:
    """Check a request's SigV4 signature; return who signed it or raise SignatureError.

    Cheap structural checks (scope, clock) run before the key lookup and the
    HMACs so junk traffic costs little.
    """
    header_map = _header_map(headers)
    query = _parse_query(query_string)
    auth = _auth_params(header_map, query)

    timestamp = auth.amz_date if auth.amz_date is not None else _header_timestamp(header_map)
    signed_at = _parse_amz_date(timestamp)

    _check_scope(auth, timestamp, service)
    _check_clock(signed_at, auth.expires, now, max_skew)

    names = auth.signed_headers.split(";")
    if "host" not in names:
        raise SignatureError("malformed", "'Host' must be a signed header.")
    canonical_headers = []
    for name in names:
        if not name or name != name.lower():
            raise SignatureError("malformed", f"Invalid SignedHeaders: {auth.signed_headers!r}.")
        values = header_map.get(name)
        if values is None:  # the signer saw a header we did not receive
            raise SignatureError("mismatch", MISMATCH_MESSAGE)
        canonical_headers.append(_canonical_header(name, values))

    canonical_request = "\n".join(
        [
            method.upper(),
            _canonical_uri(raw_path),
            _canonical_query(query, presigned=auth.expires is not None),
            "".join(canonical_headers),
            auth.signed_headers,
            _payload_hash(header_map, names, body),
        ]
    )

    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise SignatureError("unknown-key", UNKNOWN_KEY_MESSAGE)
    expected = _signature(canonical_request, timestamp, secret, auth.scope_date, auth.region, auth.service)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise SignatureError("mismatch", MISMATCH_MESSAGE)
    return VerifiedRequest(auth.access_key_id, auth.region, signed_at)


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
            _canonical_uri(parts.path.encode("utf-8")),
            _canonical_query(_parse_query(parts.query.encode("utf-8")), presigned=False),
            "".join(_canonical_header(name, [signed[name]]) for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope_date = timestamp[:8]
    signature = _signature(canonical_request, timestamp, secret_access_key, scope_date, region, service)
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


def _canonical_header(name: str, values: Sequence[str]) -> str:
    """Like botocore: trim each value and collapse inner whitespace, join with ','."""
    return f"{name}:{','.join(' '.join(v.split()) for v in values)}\n"


def _signature(canonical_request: str, timestamp: str, secret: str, scope_date: str, region: str, service: str) -> str:
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


def _header_map(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Group repeated headers; surrogateescape keeps non-UTF-8 bytes round-trippable."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        result.setdefault(key, []).append(value.decode("utf-8", "surrogateescape"))
    return result


def _parse_query(query_string: bytes) -> list[tuple[bytes, bytes]]:
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


def _query_value(query: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = [v for k, v in query if k == name]
    if len(values) > 1:
        raise SignatureError("malformed", f"Duplicate query parameter {name.decode()}.")
    return values[0].decode("utf-8", "surrogateescape") if values else None


def _canonical_query(query: list[tuple[bytes, bytes]], *, presigned: bool) -> str:
    """Re-encode RFC 3986 style; sort by encoded key, then value (as botocore)."""
    encoded = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query if not (presigned and k == b"X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_uri(raw_path: bytes) -> str:
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


def _auth_params(header_map: dict[str, list[str]], query: list[tuple[bytes, bytes]]) -> _AuthParams:
    authorization = header_map.get("authorization")
    presigned = any(k == b"X-Amz-Algorithm" for k, _ in query)
    if authorization is None and not presigned:
        raise SignatureError("missing", MISSING_MESSAGE)
    if authorization is not None and presigned:
        raise SignatureError(
            "malformed",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
            "parameter or the Authorization header should be specified.",
        )
    if authorization is not None:
        return _header_auth(authorization)
    return _query_auth(query)


def _header_auth(values: list[str]) -> _AuthParams:
    """Parse ``AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..``."""
    if len(values) != 1:
        raise SignatureError("malformed", "Multiple Authorization headers.")
    algorithm, _, rest = values[0].strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError("malformed", f"Unsupported authorization type; expected {ALGORITHM}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if not eq or name in fields:
            raise SignatureError(
                "malformed",
                f"Invalid key=value pair in Authorization header: {item.strip()!r}.",
            )
        fields[name] = value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise SignatureError("malformed", f"Authorization header requires '{required}' parameter.")
    return _build_params(fields["Credential"], fields["SignedHeaders"], fields["Signature"], None, None)


def _query_auth(query: list[tuple[bytes, bytes]]) -> _AuthParams:
    """Presigned URL: the same claims, carried in X-Amz-* query parameters."""
    params = {
        name: _query_value(query, name.encode())
        for name in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
    }
    for name, value in params.items():
        if value is None:
            raise SignatureError("malformed", f"AWS query-string parameters must include '{name}'.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureError("malformed", f"X-Amz-Algorithm only supports '{ALGORITHM}'.")
    expires_text = params["X-Amz-Expires"] or ""
    if not expires_text.isascii() or not expires_text.isdigit():
        raise SignatureError("malformed", "X-Amz-Expires should be a number.")
    expires = int(expires_text)
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise SignatureError("malformed", "X-Amz-Expires must be between 1 and 604800 seconds.")
    return _build_params(
        params["X-Amz-Credential"] or "",
        params["X-Amz-SignedHeaders"] or "",
        params["X-Amz-Signature"] or "",
        params["X-Amz-Date"],
        expires,
    )


def _build_params(
    credential: str,
    signed_headers: str,
    signature: str,
    amz_date: str | None,
    expires: int | None,
) -> _AuthParams:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise SignatureError(
            "malformed",
            "Credential should have the form <access key>/<date>/<region>/<service>/aws4_request.",
        )
    if not _HEX_SHA256.fullmatch(signature):
        raise SignatureError("malformed", "Signature should be 64 lowercase hex characters.")
    return _AuthParams(*parts, signed_headers, signature, amz_date, expires)


def _header_timestamp(header_map: dict[str, list[str]]) -> str:
    """X-Amz-Date wins; otherwise botocore signs with an RFC 1123 ``Date`` header."""
    if "x-amz-date" in header_map:
        return header_map["x-amz-date"][0].strip()
    if "date" in header_map:
        try:
            parsed = parsedate_to_datetime(header_map["date"][0])
        except (TypeError, ValueError):
            raise SignatureError("malformed", "Date header is not a valid RFC 1123 date.") from None
        if parsed.tzinfo is None:  # "-0000" parses as naive; it means UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    raise SignatureError(
        "malformed",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def _parse_amz_date(timestamp: str) -> datetime:
    try:
        parsed = datetime.strptime(timestamp, AMZ_DATE_FORMAT)
    except ValueError:
        raise SignatureError(
            "malformed",
            f"X-Amz-Date must be in ISO-8601 'basic format'. Got {timestamp!r}.",
        ) from None
    # strptime tolerates e.g. single-digit fields; the signed string must be canonical.
    if parsed.strftime(AMZ_DATE_FORMAT) != timestamp:
        raise SignatureError(
            "malformed",
            f"X-Amz-Date must be in ISO-8601 'basic format'. Got {timestamp!r}.",
        )
    return parsed.replace(tzinfo=UTC)


def _check_scope(auth: _AuthParams, timestamp: str, service: str) -> None:
    if auth.scope_date != timestamp[:8]:
        raise SignatureError(
            "wrong-scope",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{auth.scope_date}' != '{timestamp[:8]}', "
            f"from '{timestamp}'.",
        )
    if not _REGION.fullmatch(auth.region):
        raise SignatureError("wrong-scope", "Credential should be scoped to a valid region.")
    if auth.service != service:
        raise SignatureError(
            "wrong-scope",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if auth.terminator != TERMINATOR:
        raise SignatureError(
            "wrong-scope",
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{auth.terminator}'.",
        )


def _check_clock(signed_at: datetime, expires: int | None, now: datetime, max_skew: timedelta) -> None:
    """Bound replay: header auth within ±max_skew, presigned within X-Amz-Expires."""
    now = (now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)).replace(microsecond=0)
    stamp = signed_at.strftime(AMZ_DATE_FORMAT)
    if signed_at > now + max_skew:
        raise SignatureError(
            "expired",
            f"Signature not yet current: {stamp} is still later than "
            f"{_fmt(now + max_skew)} ({_fmt(now)} + {_fmt_skew(max_skew)})",
        )
    if expires is not None:
        if signed_at < now - timedelta(seconds=expires):
            raise SignatureError(
                "expired",
                f"Request has expired: {stamp} + {expires} sec. is earlier than {_fmt(now)}",
            )
    elif signed_at < now - max_skew:
        raise SignatureError(
            "expired",
            f"Signature expired: {stamp} is now earlier than "
            f"{_fmt(now - max_skew)} ({_fmt(now)} - {_fmt_skew(max_skew)})",
        )


def _fmt(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


def _fmt_skew(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def _payload_hash(header_map: dict[str, list[str]], signed: list[str], body: bytes) -> str:
    """Body hash that went into the canonical request.

    botocore does not send X-Amz-Content-SHA256 for this service, so normally we
    hash the body. If a client does send (and sign) it, it is what the client
    signed -- but a hex value must then also match the body, or a captured
    signature could be replayed with a different body.
    """
    actual = hashlib.sha256(body).hexdigest()
    if "x-amz-content-sha256" not in signed:
        return actual
    declared = header_map["x-amz-content-sha256"][0].strip()
    if declared == UNSIGNED_PAYLOAD:
        return declared
    if not _HEX_SHA256.fullmatch(declared):
        raise SignatureError("malformed", f"Unsupported x-amz-content-sha256 value {declared!r}.")
    if not hmac.compare_digest(declared, actual):
        raise SignatureError(
            "mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return declared
