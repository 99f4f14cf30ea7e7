"""Who is calling, from where, and what their key lets them do.

A request is accepted only when its SigV4 signature verifies against a configured key, it comes from a network
that key allows, and the operation and project are within the key's scope. The seed process asked for exactly
this: a send API that only specific servers may call (docs/security.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clarion.api.sigv4 import SignatureError, verify_request
from clarion.config import AccessKey
from clarion.errors import Forbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Principal:
    access_key_id: str
    region: str
    projects: frozenset[str] | None  # None: every project, and may create projects
    operations: frozenset[str] | None  # None: every operation

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


def _scope(values: list[str]) -> frozenset[str] | None:
    return None if "*" in values else frozenset(values)


class AuthError(Forbidden):
    """Refused before any work: `reason` says why, for the log (the client gets the message only)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Authenticator:
    def __init__(
        self,
        keys: list[AccessKey],
        *,
        default_region: str,
        max_skew: timedelta,
        accept_any_credentials: bool = False,
    ) -> None:
        self._keys = {
            key.access_key_id: _Key(
                secret=key.secret_access_key,
                networks=tuple(ipaddress.ip_network(n, strict=False) for n in key.allow_networks),
                projects=_scope(key.projects),
                operations=_scope(key.operations),
            )
            for key in keys
        }
        self._default_region = default_region
        self._max_skew = max_skew
        self._accept_any = accept_any_credentials

    def _secret_for(self, access_key_id: str) -> str | None:
        key = self._keys.get(access_key_id)
        return key.secret if key else None

    def authenticate(self, scope: dict[str, Any], body: bytes, now: datetime) -> Principal:
        if self._accept_any:
            return self._anyone(scope)
        try:
            verified = verify_request(
                scope["method"],
                scope.get("raw_path") or scope["path"].encode(),
                scope.get("query_string", b""),
                scope["headers"],
                body,
                self._secret_for,
                now,
                max_skew=self._max_skew,
            )
        except SignatureError as error:
            raise AuthError(error.reason, error.message) from None
        key = self._keys[verified.access_key_id]
        client = (scope.get("client") or ("",))[0]
        if not _allowed_from(client, key.networks):
            raise AuthError(
                "network", f"Access key {verified.access_key_id} is not allowed from {client or 'this address'}"
            )
        return Principal(verified.access_key_id, verified.region, key.projects, key.operations)

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
