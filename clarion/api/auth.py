"""Who is calling, from where, and what their key lets them do.

A request is accepted only when its SigV4 signature verifies against a known key, it comes from a network that key
allows, and the operation and project are within the key's scope (docs/security.md). The client address is the TCP
peer's; the server takes it from X-Forwarded-For only when the peer is one of `trusted_proxies`
(clarion/app.py:server_options), so a header alone never changes which network a request comes from.

`authenticate` is the one step the request pipeline calls: it returns a Principal or raises AuthError, and reads
the body itself only once the checks that need no body have passed, so a request that cannot verify is refused
before its body is read. A web console session is the other way in: an HttpOnly cookie naming a session in the
store, with the session's CSRF token in a header on every change; its principal may call what the user's role
allows (clarion/console/roles.py). Signing in is the one call taken without credentials, rate limited per address.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from starlette.requests import cookie_parser

from clarion.access_keys.service import KeyRing
from clarion.api.extended_console import SESSION_PATH
from clarion.api.rate_limits import RateLimit
from clarion.api.sigv4 import UNKNOWN_KEY_MESSAGE, SignatureError, check_signature, read_claims
from clarion.config import AccessKey, RateLimitSettings
from clarion.console.accounts import ConsoleAccounts, Session
from clarion.console.roles import Role, allowed_operations
from clarion.errors import Forbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
BodyReader = Callable[[], Awaitable[bytes]]

SESSION_COOKIE = "clarion_session"
CSRF_HEADER = b"x-clarion-csrf"
SIGN_IN_OPERATION = "ClarionSignIn"
# Sign-in attempts per client address, in each process (each user's failures are also throttled in the store).
SIGN_IN_RATE = RateLimit(requests_per_second=1.0, burst=10)
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_SESSION_CHECK = frozenset({"ClarionGetSession"})


@dataclass(frozen=True, slots=True)
class ConsoleIdentity:
    """The console session a request carries: its cookie value (to end it) and the session."""

    token: str
    session: Session


@dataclass(frozen=True, slots=True)
class Principal:
    access_key_id: str
    region: str
    projects: frozenset[str] | None  # None: every project, and may create projects
    operations: frozenset[str] | None  # None: every operation
    rate_limit: RateLimit | None = None  # None: unlimited
    console: ConsoleIdentity | None = None  # set when the caller is a signed-in console user

    def may_call(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations

    def may_use(self, app_id: str) -> bool:
        return self.projects is None or app_id in self.projects


@dataclass(frozen=True, slots=True)
class _Key:
    secret: str
    networks: tuple[Network, ...]
    projects: frozenset[str] | None
    operations: frozenset[str] | None
    rate_limit: RateLimit | None


def _scope(values: list[str]) -> frozenset[str] | None:
    return None if "*" in values else frozenset(values)


def _rate_limit(key: AccessKey, defaults: RateLimitSettings) -> RateLimit | None:
    per_second = key.requests_per_second if key.requests_per_second is not None else defaults.requests_per_second
    burst = key.burst if key.burst is not None else defaults.burst
    return RateLimit(per_second, burst) if per_second > 0 else None


class AuthError(Forbidden):
    """Refused before any work: `reason` says why, for the log (the client gets the message only)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Authenticator:
    def __init__(
        self,
        keys: KeyRing,
        *,
        default_region: str,
        max_skew: timedelta,
        rate_limit: RateLimitSettings | None = None,
        accept_any_credentials: bool = False,
        console: ConsoleAccounts | None = None,
        operation_names: Collection[str] = (),
    ) -> None:
        self._ring = keys
        self._console = console
        self._role_operations = {role: allowed_operations(role, operation_names) for role in Role}
        self._rate_limit = rate_limit or RateLimitSettings()
        self._keys: dict[str, _Key] = {}
        self._keys_version = -1
        self._default_region = default_region
        self._max_skew = max_skew
        self._accept_any = accept_any_credentials

    def _current_keys(self) -> dict[str, _Key]:
        """The ring's keys, parsed once per change of the ring (keys come and go while the server runs)."""
        if self._keys_version != self._ring.version:
            self._keys = {
                key_id: _Key(
                    secret=key.secret_access_key,
                    networks=tuple(ipaddress.ip_network(n, strict=False) for n in key.allow_networks),
                    projects=_scope(key.projects),
                    operations=_scope(key.operations),
                    rate_limit=_rate_limit(key, self._rate_limit),
                )
                for key_id, key in self._ring.keys.items()
            }
            self._keys_version = self._ring.version
        return self._keys

    async def authenticate(self, scope: dict[str, Any], body: BodyReader, now: datetime) -> Principal:
        if self._console is not None:
            client = (scope.get("client") or ("",))[0]
            if scope["method"] == "POST" and scope["path"] == SESSION_PATH:
                return Principal(
                    f"sign-in@{client}", self._default_region, None, frozenset({SIGN_IN_OPERATION}), SIGN_IN_RATE
                )
            token = _session_cookie(scope)
            if _header(scope, b"authorization") is None:
                session = await self._console.session(token) if token is not None else None
                if session is not None:
                    return self._session_principal(scope, token or "", session)
                if scope["method"] == "GET" and scope["path"] == SESSION_PATH:
                    # Asking whether one is signed in is not an error: the answer says SignedIn false.
                    return Principal(f"visitor@{client}", self._default_region, None, _SESSION_CHECK, SIGN_IN_RATE)
                if token is not None:
                    raise AuthError("session", "The console session has ended or is unknown; sign in again")
        if self._accept_any:
            return self._anyone(scope)
        try:
            claims = read_claims(
                scope["method"],
                scope.get("raw_path") or scope["path"].encode(),
                scope.get("query_string", b""),
                scope["headers"],
                now,
                max_skew=self._max_skew,
            )
            key = self._current_keys().get(claims.access_key_id)
            if key is None:
                raise SignatureError("unknown-key", UNKNOWN_KEY_MESSAGE)
            check_signature(claims, await body(), key.secret)
        except SignatureError as error:
            raise AuthError(error.reason, error.message) from None
        client = (scope.get("client") or ("",))[0]
        if not _allowed_from(client, key.networks):
            raise AuthError(
                "network", f"Access key {claims.access_key_id} is not allowed from {client or 'this address'}"
            )
        return Principal(claims.access_key_id, claims.region, key.projects, key.operations, key.rate_limit)

    def _session_principal(self, scope: dict[str, Any], token: str, session: Session) -> Principal:
        if scope["method"] not in _SAFE_METHODS:
            sent = _header(scope, CSRF_HEADER) or b""
            if not hmac.compare_digest(sent, session.csrf_token.encode()):
                raise AuthError("csrf", "The X-Clarion-CSRF header is missing or does not match this session")
        defaults = self._rate_limit
        return Principal(
            f"console:{session.username}",
            self._default_region,
            None,
            self._role_operations[session.role],
            RateLimit(defaults.requests_per_second, defaults.burst) if defaults.requests_per_second > 0 else None,
            ConsoleIdentity(token, session),
        )

    def _anyone(self, scope: dict[str, Any]) -> Principal:
        """Development mode: take the region and key id from the header, check nothing."""
        region, key_id = self._default_region, "anonymous"
        for name, value in scope["headers"]:
            if name == b"authorization" and b"Credential=" in value:
                credential = value.split(b"Credential=", 1)[1].split(b",", 1)[0].decode("latin-1").split("/")
                if len(credential) >= 3:
                    key_id, region = credential[0], credential[2]
        return Principal(key_id, region, None, None)


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _session_cookie(scope: dict[str, Any]) -> str | None:
    cookie = _header(scope, b"cookie")
    if cookie is None:
        return None
    return cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE) or None


@lru_cache(maxsize=4096)
def _allowed_from(client: str, networks: tuple[Network, ...]) -> bool:
    """Cached: a key's clients are few and come back with every request; the answer depends on nothing else."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
