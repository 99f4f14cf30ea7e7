"""AWS Signature Version 4 verification for incoming requests.

Clients are unmodified AWS SDKs, so "correct" means "byte-for-byte what
botocore's ``SigV4Auth`` / ``SigV4QueryAuth`` compute" (see ``botocore/auth.py``).
Everything is rebuilt from the raw wire bytes (ASGI ``raw_path``,
``query_string`` and ``headers``): a decoded path loses the difference between
``/`` and ``%2F``, which the signature covers. The canonical form and the signature
itself are the client's (clarion/aws/sigv4.py), so what Clarion accepts is what it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clarion import signed_times
from clarion.aws.sigv4 import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    TERMINATOR,
    canonical_header,
    canonical_query,
    canonical_uri,
    parse_query,
    signature_of,
)

__all__ = [
    "Claims",
    "SignatureError",
    "VerifiedRequest",
    "check_signature",
    "read_claims",
    "verify_request",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
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


@dataclass(frozen=True, slots=True)
class Claims:
    """What a request says about its signature, checked as far as it can be without the body or the secret."""

    access_key_id: str
    region: str
    signed_at: datetime
    _auth: _AuthParams
    _timestamp: str
    _canonical_head: str  # the canonical request up to, not including, the payload hash
    _payload_hash: str | None  # what the signer declared (x-amz-content-sha256, when signed)


def read_claims(
    method: str,
    raw_path: bytes,
    query_string: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    now: datetime,
    *,
    service: str = "mobiletargeting",
    max_skew: timedelta = timedelta(minutes=5),
) -> Claims:
    """Every check that needs neither the body nor a secret: the form, the scope, the clock, the signed headers.

    A caller runs these before reading the body, so a request that cannot verify costs no more than its headers.
    """
    header_map = _header_map(headers)
    query = parse_query(query_string)
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
            raise SignatureError("malformed", f"Invalid SignedHeaders: {_shown(auth.signed_headers)}.")
        values = header_map.get(name)
        if values is None:  # the signer saw a header we did not receive
            raise SignatureError("mismatch", MISMATCH_MESSAGE)
        canonical_headers.append(canonical_header(name, values))

    head = "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query, presigned=auth.expires is not None),
            "".join(canonical_headers),
            auth.signed_headers,
        ]
    )
    declared = _declared_payload_hash(header_map, names)
    return Claims(auth.access_key_id, auth.region, signed_at, auth, timestamp, head, declared)


def check_signature(claims: Claims, body: bytes, secret: str) -> VerifiedRequest:
    """The signature over the canonical request, the body's hash included, made with `secret`."""
    actual = hashlib.sha256(body).hexdigest()
    if claims._payload_hash is not None and not hmac.compare_digest(claims._payload_hash, actual):
        raise SignatureError("mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
    auth = claims._auth
    canonical_request = f"{claims._canonical_head}\n{actual}"
    expected = signature_of(canonical_request, claims._timestamp, secret, auth.scope_date, auth.region, auth.service)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise SignatureError("mismatch", MISMATCH_MESSAGE)
    return VerifiedRequest(auth.access_key_id, auth.region, claims.signed_at)


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

    Cheap structural checks (scope, clock) run before the key lookup and the HMACs so junk traffic costs little.
    """
    claims = read_claims(method, raw_path, query_string, headers, now, service=service, max_skew=max_skew)
    secret = secret_for(claims.access_key_id)
    if secret is None:
        raise SignatureError("unknown-key", UNKNOWN_KEY_MESSAGE)
    return check_signature(claims, body, secret)


def _header_map(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Group repeated headers; surrogateescape keeps non-UTF-8 bytes round-trippable."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        result.setdefault(key, []).append(value.decode("utf-8", "surrogateescape"))
    return result


def _query_value(query: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = [v for k, v in query if k == name]
    if len(values) > 1:
        raise SignatureError("malformed", f"Duplicate query parameter {name.decode()}.")
    return values[0].decode("utf-8", "surrogateescape") if values else None


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
                f"Invalid key=value pair in Authorization header: {_shown(item.strip())}.",
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
    expires = int(expires_text) if len(expires_text) <= len(str(MAX_PRESIGN_EXPIRES)) else MAX_PRESIGN_EXPIRES + 1
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
            parsed = signed_times.http_date(header_map["date"][0])
        except ValueError:
            raise SignatureError("malformed", "Date header is not a valid RFC 1123 date.") from None
        return parsed.strftime(AMZ_DATE_FORMAT)
    raise SignatureError(
        "malformed",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def _parse_amz_date(timestamp: str) -> datetime:
    try:
        return signed_times.amz_date(timestamp)
    except ValueError:
        raise SignatureError(
            "malformed", f"X-Amz-Date must be in ISO-8601 'basic format'. Got {_shown(timestamp)}."
        ) from None


def _check_scope(auth: _AuthParams, timestamp: str, service: str) -> None:
    if auth.scope_date != timestamp[:8]:
        raise SignatureError(
            "wrong-scope",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: {_shown(auth.scope_date)} != '{timestamp[:8]}', "
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
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not {_shown(auth.terminator)}.",
        )


def _check_clock(signed_at: datetime, expires: int | None, now: datetime, max_skew: timedelta) -> None:
    """Bound replay: header auth within ±max_skew, presigned within X-Amz-Expires."""
    now = (now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)).replace(microsecond=0)
    if signed_at > now + max_skew:
        raise SignatureError(
            "expired",
            f"Signature not yet current: {_fmt(signed_at)} is still later than "
            f"{_fmt(now + max_skew)} ({_fmt(now)} + {_fmt_skew(max_skew)})",
        )
    if expires is not None:
        if signed_at < now - timedelta(seconds=expires):
            raise SignatureError(
                "expired",
                f"Request has expired: {_fmt(signed_at)} + {expires} sec. is earlier than {_fmt(now)}",
            )
    elif signed_at < now - max_skew:
        raise SignatureError(
            "expired",
            f"Signature expired: {_fmt(signed_at)} is now earlier than "
            f"{_fmt(now - max_skew)} ({_fmt(now)} - {_fmt_skew(max_skew)})",
        )


def _fmt(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


def _fmt_skew(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def _declared_payload_hash(header_map: dict[str, list[str]], signed: list[str]) -> str | None:
    """The body hash the signer declared, when it signed X-Amz-Content-SHA256; None means "hash the body".

    botocore does not send the header for this service. A client that signs it must declare the body's real hash:
    `UNSIGNED-PAYLOAD` (which S3 allows) would leave the body outside the signature, so anyone who captured a
    request could replay it with another body.
    """
    if "x-amz-content-sha256" not in signed:
        return None
    declared = header_map["x-amz-content-sha256"][0].strip()
    if declared == UNSIGNED_PAYLOAD:
        raise SignatureError("malformed", "UNSIGNED-PAYLOAD is not accepted: the signature must cover the body.")
    if not _HEX_SHA256.fullmatch(declared):
        raise SignatureError("malformed", f"Unsupported x-amz-content-sha256 value {_shown(declared)}.")
    return declared


def _shown(text: str, limit: int = 64) -> str:
    """A client-sent value quoted in a refusal, cut short: error messages do not echo megabytes back."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
