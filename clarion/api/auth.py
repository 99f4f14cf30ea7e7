"""Who is calling, from where, and what their key lets them do.

A request is accepted only when its SigV4 signature verifies against a known key, it comes from a network that key
allows, and the operation and project are within the key's scope (docs/security.md). The client address is the TCP
peer's; the server takes it from X-Forwarded-For only when the peer is one of `trusted_proxies`
(clarion/app.py:server_options), so a header alone never changes which network a request comes from.

`authenticate` is the one step the request pipeline calls: it returns a Principal or raises AuthError, and reads
the body itself only once the checks that need no body have passed, so a request that cannot verify is refused
before its body is read. Another way to authenticate (a console session) is another such step.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clarion.access_keys.service import KeyRing
from clarion.api.rate_limits import RateLimit
from clarion.api.sigv4 import UNKNOWN_KEY_MESSAGE, SignatureError, check_signature, read_claims
from clarion.config import AccessKey, RateLimitSettings
from clarion.errors import Forbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
BodyReader = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Principal:
    access_key_id: str
    region: str
    projects: frozenset[str] | None  # None: every project, and may create projects
    operations: frozenset[str] | None  # None: every operation
    rate_limit: RateLimit | None = None  # None: unlimited

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
    ) -> None:
        self._ring = keys
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

    def _anyone(self, scope: dict[str, Any]) -> Principal:
        """Development mode: take the region and key id from the header, check nothing."""
        region, key_id = self._default_region, "anonymous"
        for name, value in scope["headers"]:
            if name == b"authorization" and b"Credential=" in value:
                credential = value.split(b"Credential=", 1)[1].split(b",", 1)[0].decode("latin-1").split("/")
                if len(credential) >= 3:
                    key_id, region = credential[0], credential[2]
        return Principal(key_id, region, None, None)


def _allowed_from(client: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
