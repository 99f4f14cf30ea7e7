"""The one HTTP client for URLs a tenant supplied: import files, export destinations, campaign hooks, custom-channel
webhooks (and whatever tenant URL comes next).

What it guarantees, whatever the URL or the answers say:

- it connects only to addresses `AddressPolicy` allows. Names are filtered when they resolve, and the socket factory
  checks the address each connection is actually opened to, so a name that resolves differently the second time
  (DNS rebinding) or an IP literal in any spelling cannot slip through;
- redirects are followed by hand, each hop checked again (http and https only), at most `max_redirects`;
- one deadline covers every hop and the reading of the body, and a body is read with a cap, never whole;
- errors name the host and the reason, never anything the far side answered.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDictProxy
from yarl import URL

from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.outbound.addresses import AddressPolicy, Refusal
from clarion.outbound.config import OutboundSettings

CHUNK = 1 << 16
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SCHEMES = frozenset({"http", "https"})

log = get_logger("clarion.outbound")


class OutboundError(Exception):
    """A request to a tenant URL failed; `permanent` when trying again cannot help."""

    permanent = False


class OutboundRefused(OutboundError):
    """The URL leads somewhere tenant URLs may not go (a refused address, another scheme, too many redirects)."""

    permanent = True


class ResponseTooLarge(OutboundError):
    permanent = True


class OutboundTimeout(OutboundError):
    """The whole request (every hop and the body) did not finish within its time."""


class OutboundUnreachable(OutboundError):
    """The host could not be resolved or connected to, or the connection broke."""


class _AddressRefused(OSError):
    """Raised inside aiohttp (resolver, socket factory), which wraps OSErrors; carries the refusal out."""

    def __init__(self, address: str, refusal: Refusal) -> None:
        super().__init__(f"{address} is {refusal.reason}")
        self.address = address
        self.refusal = refusal


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` and keeps only the addresses the policy allows."""

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        allowed = [result for result in found if self.policy.refusal(result["host"]) is None]
        if not allowed and found:
            first = found[0]["host"]
            refusal = self.policy.refusal(first)
            assert refusal is not None
            raise _AddressRefused(first, refusal)
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def _refused_in(error: BaseException) -> _AddressRefused | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _refused_reason(host: str, hop: int, refused: _AddressRefused) -> str:
    """What a tenant is told; a redirect's target is not repeated (it came from the far side)."""
    if hop:
        return f"a redirect from {host} leads to {refused.refusal.reason}"
    if refused.address == host.strip("[]"):
        return f"{host} is {refused.refusal.reason}"
    return f"{host} resolves to {refused.address}, {refused.refusal.reason}"


class OutboundResponse:
    """An answer whose body is read on demand, at most `max_bytes` of it."""

    def __init__(self, response: aiohttp.ClientResponse, host: str, max_bytes: int, timeout: float) -> None:
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers
        self._response = response
        self._host = host
        self._max_bytes = max_bytes
        self._timeout = timeout

    def _too_large(self) -> ResponseTooLarge:
        return ResponseTooLarge(f"{self._host} answered more than {self._max_bytes:,} bytes")

    async def chunks(self) -> AsyncIterator[bytes]:
        if (self._response.content_length or 0) > self._max_bytes:
            raise self._too_large()
        received = 0
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > self._max_bytes:
                    raise self._too_large()
                yield chunk
        except TimeoutError:
            raise OutboundTimeout(f"{self._host} did not finish answering within {self._timeout:g}s") from None
        except aiohttp.ClientError as error:
            raise OutboundUnreachable(f"the connection to {self._host} broke ({type(error).__name__})") from None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class OutboundClient:
    def __init__(
        self, settings: OutboundSettings, metrics: Metrics | None = None, resolver: AbstractResolver | None = None
    ) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_networks)
        self.metrics = metrics or Metrics()
        self._resolver = resolver  # what names resolve with; the system's resolver when None
        self._session: aiohttp.ClientSession | None = None

    def _socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """aiohttp's socket factory: the last word on the address a connection is opened to."""
        family, kind, proto, _name, address = addr_info
        refusal = self.policy.refusal(address[0])
        if refusal is not None:
            raise _AddressRefused(address[0], refusal)
        return socket.socket(family, kind, proto)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._resolver or DefaultResolver(), self.policy),
                socket_factory=self._socket,
                use_dns_cache=False,
            )
            # No cookies: one tenant's URL must not hand cookies to requests made for another.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _refuse(self, url: URL, kind: str, reason: str) -> OutboundRefused:
        self.metrics.outbound_refused.labels(kind).inc()
        log.warning("outbound_refused", host=url.host, kind=kind, reason=reason)
        return OutboundRefused(reason)

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> AsyncIterator[OutboundResponse]:
        """Send the request; the answer (a redirect, unless `follow_redirects`) is yours until the block ends."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = URL(url)
        host = target.host or url
        for hop in range(self.settings.max_redirects + 1):
            if target.scheme not in SCHEMES or not target.host:
                where = f"a redirect from {host}" if hop else url
                raise self._refuse(target, "scheme", f"{where} leads to a URL that is not http(s)")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OutboundTimeout(f"{host} did not answer within {timeout:g}s")
            limits = aiohttp.ClientTimeout(
                total=remaining, sock_connect=min(remaining, self.settings.connect_timeout_seconds)
            )
            try:
                response = await self.session.request(
                    method, target, data=body, headers=headers, allow_redirects=False, timeout=limits
                )
            except (aiohttp.ClientError, OSError) as error:
                refused = _refused_in(error)
                if refused is not None:
                    raise self._refuse(target, refused.refusal.kind, _refused_reason(host, hop, refused)) from None
                if isinstance(error, TimeoutError):
                    raise OutboundTimeout(f"{host} did not answer within {timeout:g}s") from None
                where = f"a redirect from {host}" if hop else host
                raise OutboundUnreachable(f"{where} could not be reached ({type(error).__name__})") from None
            location = response.headers.get("Location")
            if follow_redirects and response.status in REDIRECTS and location:
                response.release()
                target = target.join(URL(location))
                if response.status == 303:
                    method, body = "GET", None
                continue
            try:
                yield OutboundResponse(response, host, max_bytes, timeout)
            finally:
                response.release()
            return
        raise self._refuse(target, "redirects", f"{host} redirected more than {self.settings.max_redirects} times")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
