"""The one HTTP client for requests the server makes: URLs a tenant supplied (import files, export destinations,
campaign hooks, custom-channel webhooks, recommenders, event-stream webhooks) and the providers that carry messages
(APNs, FCM and its token endpoint, SMS and voice gateways).

It runs on libcurl's multi interface (curl.py): HTTP/2 streams multiplexed on one connection per origin, where a
request costs about a sixth of the CPU of a pure-Python HTTP/2 client. What it guarantees, whatever the URL or the
answers say:

- it connects only to addresses `AddressPolicy` allows: libcurl asks this client for every socket it opens, with
  the address it is about to connect to, so a name that resolves differently the second time (DNS rebinding) or an
  IP literal in any spelling cannot slip through; proxies from the environment are ignored;
- redirects are followed by hand, each hop checked again (http and https only), at most `max_redirects`; requests
  that do not ask for redirects get the redirect answer itself;
- one deadline covers every hop and the reading of the body, and a body is read with a cap, never whole;
- each project has at most `max_requests_per_project` requests in flight, so one project's slow receiver cannot
  hold what the others need;
- errors name the host and the reason, never anything the far side answered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import pycurl

from clarion import __version__
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.outbound.addresses import AddressPolicy, Refusal
from clarion.outbound.config import OutboundSettings
from clarion.outbound.curl import Batch, CurlLoop, Headers, Posted, Transfer, Turns

REDIRECTS = frozenset({301, 302, 303, 307, 308})
SCHEMES = frozenset({"http", "https"})
POOLED_HANDLES = 1024  # easy handles kept for reuse (a handle keeps its buffers between requests)
POSTING_SHAPES = 8  # shapes of batch posts whose handles are kept configured (a provider's origin, token, limits)
SYSTEM_TRUST = ssl.get_default_verify_paths()

# Resolves a host name to addresses (text) instead of libcurl's resolver: tests make names point where they say.
Resolver = Callable[[str], Awaitable[list[str]]]
HeaderItems = Mapping[str, str] | Sequence[tuple[str, str]]

log = get_logger("clarion.outbound")


class OutboundError(Exception):
    """A request failed; `permanent` when trying again cannot help."""

    permanent = False


class OutboundRefused(OutboundError):
    """The URL leads somewhere the server may not go (a refused address, another scheme, too many redirects)."""

    permanent = True


class ResponseTooLarge(OutboundError):
    permanent = True


class OutboundTimeout(OutboundError):
    """The whole request (every hop and the body) did not finish within its time."""


class OutboundUnreachable(OutboundError):
    """The host could not be resolved or connected to, or the connection broke."""


@dataclass(frozen=True, slots=True)
class Tls:
    """A provider's TLS beyond the system's trust: CA certificates to trust as well (a private gateway, a test
    server) and a client certificate (an APNs certificate channel)."""

    ca_file: str | None = None
    certificate_pem: bytes | None = None
    key_pem: bytes | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status, headers and body (at most the request's `max_bytes`)."""

    status: int
    headers: Headers
    body: bytes


class OutboundResponse:
    """An answer whose body is read on demand, at most `max_bytes` of it."""

    def __init__(self, client: OutboundClient, transfer: Transfer, host: str, timeout: float) -> None:
        self.status = transfer.status
        self.headers = Headers(transfer.header_values)
        self._client = client
        self._transfer = transfer
        self._host = host
        self._timeout = timeout

    async def chunks(self) -> AsyncIterator[bytes]:
        transfer = self._transfer
        while True:
            for chunk in transfer.take():
                yield chunk
            if transfer.done.done() and not transfer.chunks:
                if transfer.error is not None:
                    raise self._client.failure(transfer, self._host, 0, self._timeout, answering=True)
                return
            self._client.curl.resume(transfer)
            await transfer.readable.wait()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class OutboundClient:
    def __init__(
        self, settings: OutboundSettings, metrics: Metrics | None = None, resolver: Resolver | None = None
    ) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_networks)
        self.metrics = metrics or Metrics()
        self._resolver = resolver
        self._curl: CurlLoop | None = None
        self._handles: list[pycurl.Curl] = []
        # Easy handles left configured for one shape of batch post (origin, headers, limits, TLS): a post on one
        # then sets only its URL, body and callbacks, where configuring a handle from scratch costs ~10 µs.
        self._posting: dict[tuple[Any, ...], list[pycurl.Curl]] = {}

    @property
    def curl(self) -> CurlLoop:
        """The multi handle on the running loop (made on first use: it belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._curl is None or self._curl.loop is not loop:
            if self._curl is not None:  # the loop it ran on is gone (one asyncio.run after another)
                self._curl.close()
            self._curl = CurlLoop(loop)
        return self._curl

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        body: bytes | None = None,
        headers: HeaderItems | None = None,
        tls: Tls | None = None,
        project: str | None = None,
        connect_timeout: float | None = None,
    ) -> Answer:
        """Send the request and read the whole answer (redirects are not followed: their answer is returned).
        `connect_timeout` replaces `outbound.connect_timeout_seconds` (a provider's own setting)."""
        host = urlsplit(url).hostname or url
        async with self._turn(project):
            transfer = await self._start(
                method, url, host, 0, timeout, max_bytes, body, headers, tls, False, connect_timeout=connect_timeout
            )
            try:
                await transfer.done
            finally:
                self._release(transfer)
            if transfer.error is not None:
                raise self.failure(transfer, host, 0, timeout)
            return Answer(transfer.status, Headers(transfer.header_values), b"".join(transfer.chunks))

    async def post_many(
        self,
        posts: Sequence[tuple[str, bytes]],
        *,
        headers: HeaderItems,
        timeout: float,
        max_bytes: int,
        tls: Tls | None = None,
        project: str | None = None,
        connect_timeout: float | None = None,
        each: Sequence[HeaderItems] | None = None,
    ) -> list[Answer | OutboundError]:
        """POST each (url, body) of a batch with the same headers, all at once (streams of one connection per origin
        on HTTP/2), and read each whole answer, or the error that post met, in the order given. The guards are
        `request`'s (checked addresses, no redirects, a deadline, a capped body, the project's turns); what it
        saves is the Python around libcurl: no future per post, handles kept configured, headers parsed only when
        read (docs/benchmarks.md, "Delivery client candidates"). `each`, when given, holds every post's own headers,
        sent after the common ones (APNs: a message's id and expiry)."""
        outcomes: list[Answer | OutboundError] = []
        lines = _header_lines(headers, True)
        own = [_header_lines(items, False) for items in each] if each is not None else None
        while len(outcomes) < len(posts):
            async with self._turns(project, len(posts) - len(outcomes)) as taken:
                start, end = len(outcomes), len(outcomes) + taken
                part_own = own[start:end] if own is not None else None
                outcomes.extend(
                    await self._post_part(posts[start:end], lines, timeout, max_bytes, tls, connect_timeout, part_own)
                )
        return outcomes

    async def _post_part(
        self,
        posts: Sequence[tuple[str, bytes]],
        lines: list[str],
        timeout: float,
        max_bytes: int,
        tls: Tls | None,
        connect_timeout: float | None,
        own: list[list[str]] | None,
    ) -> list[Answer | OutboundError]:
        curl = self.curl
        batch = Batch(len(posts), curl.loop)
        outcomes: list[Answer | OutboundError | None] = [None] * len(posts)
        started: list[tuple[int, str, tuple[Any, ...], Posted]] = []  # (index, host, shape, post)
        connecting = min(timeout, connect_timeout or self.settings.connect_timeout_seconds)
        # Handles whose headers are set per post are kept apart: a post of the other kind never inherits one's.
        common = (tuple(lines), timeout, connecting, max_bytes, tls, own is not None)
        shapes: dict[str, tuple[SplitResult, str, tuple[Any, ...]]] = {}  # url -> its parts, host and shape
        shape: tuple[Any, ...] = ()
        free: list[pycurl.Curl] = []
        try:
            for index, (url, body) in enumerate(posts):
                known = shapes.get(url)
                if known is None:
                    parts = urlsplit(url)
                    host = parts.hostname or url
                    if parts.scheme not in SCHEMES or not parts.hostname:
                        outcomes[index] = self._refuse(host, "scheme", f"{url} leads to a URL that is not http(s)")
                        batch.left -= 1
                        continue
                    known = shapes[url] = (parts, host, (parts.scheme, host, parts.port, *common))
                parts, host, wanted = known
                if wanted != shape:
                    shape, free = wanted, self._posting.get(wanted, [])
                if free:
                    handle = free.pop()
                else:
                    handle = self._handles.pop() if self._handles else pycurl.Curl()
                    await self._configure_post(handle, parts, lines, timeout, connecting, max_bytes, tls)
                posted = Posted(batch, handle, max_bytes)
                handle.setopt(pycurl.URL, url)
                handle.setopt(pycurl.POSTFIELDS, body)
                if own is not None:
                    handle.setopt(pycurl.HTTPHEADER, lines + own[index])
                handle.setopt(pycurl.HEADERFUNCTION, posted.head.append)
                handle.setopt(pycurl.WRITEFUNCTION, posted.on_body)
                handle.setopt(pycurl.OPENSOCKETFUNCTION, lambda purpose, address, p=posted: self._socket(p, address))
                started.append((index, host, shape, posted))
                curl.start(posted)
            if batch.left:
                await batch.done
        finally:
            for _, _, _, posted in started:
                curl.abandon(posted)  # nothing for a finished post; a cancelled batch's transfers stop here
        for index, host, shape, posted in started:
            if posted.error is None:
                status = posted.handle.getinfo(pycurl.RESPONSE_CODE)
                outcomes[index] = Answer(status, Headers(lines=posted.head), b"".join(posted.chunks))
                self._keep_posting(shape, posted.handle)
            else:
                outcomes[index] = self.failure(posted, host, 0, timeout)
                self._release_handle(posted.handle)
        return outcomes  # type: ignore[return-value]

    async def _configure_post(
        self,
        handle: pycurl.Curl,
        parts: SplitResult,
        lines: list[str],
        timeout: float,
        connect_timeout: float,
        max_bytes: int,
        tls: Tls | None,
    ) -> None:
        """What every post of one shape has in common, set once on a handle that keeps it."""
        assert parts.hostname is not None
        await self._configure(handle, parts.hostname, parts.port, parts.scheme, timeout, connect_timeout, max_bytes)
        handle.setopt(pycurl.HTTPHEADER, lines)
        if tls is not None:
            _set_tls(handle, tls)

    def _keep_posting(self, shape: tuple[Any, ...], handle: pycurl.Curl) -> None:
        kept = self._posting.get(shape)
        if kept is None:
            if len(self._posting) >= POSTING_SHAPES:  # the oldest shape goes (a provider token replaced, say)
                for stale in self._posting.pop(next(iter(self._posting))):
                    self._release_handle(stale)
            kept = self._posting[shape] = []
        if len(kept) < POOLED_HANDLES:
            kept.append(handle)
        else:
            handle.close()

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        body: bytes | None = None,
        headers: HeaderItems | None = None,
        follow_redirects: bool = False,
        project: str | None = None,
    ) -> AsyncIterator[OutboundResponse]:
        """Send the request; the answer (a redirect, unless `follow_redirects`) is yours until the block ends, its
        body read as it arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = url
        host = urlsplit(url).hostname or url
        async with self._turn(project):
            for hop in range(self.settings.max_redirects + 1):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise OutboundTimeout(f"{host} did not answer within {timeout:g}s")
                transfer = await self._start(
                    method, target, host, hop, remaining, max_bytes, body, headers, None, True, original=url
                )
                try:
                    await transfer.head
                    if transfer.error is not None and not transfer.chunks:
                        raise self.failure(transfer, host, hop, timeout)
                    location = transfer.header_values.get("location")
                    if follow_redirects and transfer.status in REDIRECTS and location:
                        target = urljoin(target, location)
                        if transfer.status == 303:
                            method, body = "GET", None
                        continue
                    yield OutboundResponse(self, transfer, host, timeout)
                    return
                finally:
                    self._release(transfer)
        raise self._refuse(host, "redirects", f"{host} redirected more than {self.settings.max_redirects} times")

    @asynccontextmanager
    async def _turn(self, project: str | None) -> AsyncIterator[None]:
        async with self._turns(project, 1):
            yield

    @asynccontextmanager
    async def _turns(self, project: str | None, wanted: int) -> AsyncIterator[int]:
        """Up to `wanted` of the project's turns; how many is yielded (at least one)."""
        if project is None:
            yield wanted
            return
        turns = self.curl.turns
        held = turns.get(project)
        if held is None:
            held = turns[project] = Turns(self.settings.max_requests_per_project)
        taken = await held.take(wanted)
        try:
            yield taken
        finally:
            held.give(taken)

    async def _start(
        self,
        method: str,
        url: str,
        host: str,
        hop: int,
        timeout: float,
        max_bytes: int,
        body: bytes | None,
        headers: HeaderItems | None,
        tls: Tls | None,
        streaming: bool,
        original: str | None = None,
        connect_timeout: float | None = None,
    ) -> Transfer:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            where = f"a redirect from {host}" if hop else (original or url)
            raise self._refuse(host, "scheme", f"{where} leads to a URL that is not http(s)")
        curl = self.curl
        handle = self._handles.pop() if self._handles else pycurl.Curl()
        transfer = Transfer(handle, max_bytes, streaming, curl.loop)
        try:
            connecting = min(timeout, connect_timeout or self.settings.connect_timeout_seconds)
            await self._configure(handle, parts.hostname, parts.port, parts.scheme, timeout, connecting, max_bytes)
        except BaseException:
            self._release(transfer)
            raise
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        handle.setopt(pycurl.WRITEFUNCTION, transfer.on_body)
        handle.setopt(pycurl.OPENSOCKETFUNCTION, lambda purpose, address: self._socket(transfer, address))
        handle.setopt(pycurl.HTTPHEADER, _header_lines(headers, body is not None))
        if body is not None:
            handle.setopt(pycurl.POSTFIELDS, body)
        if method != ("POST" if body is not None else "GET"):
            handle.setopt(pycurl.CUSTOMREQUEST, method)
        if tls is not None:
            _set_tls(handle, tls)
        curl.start(transfer)
        return transfer

    async def _configure(
        self,
        handle: pycurl.Curl,
        hostname: str,
        port: int | None,
        scheme: str,
        timeout: float,
        connect_timeout: float,
        max_bytes: int,
    ) -> None:
        """The options every request to this origin has, whatever it sends."""
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROXY, "")  # never the environment's proxy: the address checked is the one reached
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        if scheme == "https":
            # A new stream waits for the origin's connection to say whether it multiplexes (HTTP/2 by ALPN) rather
            # than open another; plain http is HTTP/1.1, where waiting would queue requests behind each other.
            handle.setopt(pycurl.PIPEWAIT, 1)
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect_timeout * 1000)))
        handle.setopt(pycurl.MAXFILESIZE_LARGE, max_bytes)
        handle.setopt(pycurl.USERAGENT, f"Clarion/{__version__}")
        handle.setopt(pycurl.CAINFO, SYSTEM_TRUST.cafile or "")
        handle.setopt(pycurl.CAPATH, SYSTEM_TRUST.capath or "")
        if self._resolver is not None and not _is_address(hostname):
            try:
                addresses = await self._resolver(hostname)
            except OSError as error:
                raise OutboundUnreachable(f"{hostname} could not be resolved ({error})") from None
            listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            handle.setopt(pycurl.RESOLVE, [f"{hostname}:{port or (443 if scheme == 'https' else 80)}:{listed}"])
            handle.setopt(pycurl.DNS_CACHE_TIMEOUT, 0)

    def _socket(self, transfer: Transfer | Posted, address: Any) -> Any:
        """libcurl's socket factory: the last word on the address a connection is opened to."""
        where = address.addr[0]
        refusal = self.policy.refusal(where)
        if refusal is not None:
            if transfer.refused is None:
                transfer.refused = (where, refusal)
            return pycurl.SOCKET_BAD
        return socket.socket(address.family, address.socktype, address.protocol)  # libcurl keeps a duplicate

    def _release(self, transfer: Transfer) -> None:
        self.curl.abandon(transfer)
        self._release_handle(transfer.handle)

    def _release_handle(self, handle: pycurl.Curl) -> None:
        handle.reset()
        if len(self._handles) < POOLED_HANDLES:
            self._handles.append(handle)
        else:
            handle.close()

    def failure(
        self, transfer: Transfer | Posted, host: str, hop: int, timeout: float, answering: bool = False
    ) -> OutboundError:
        """The error a failed transfer is reported as."""
        assert transfer.error is not None
        code, message = transfer.error
        if transfer.refused is not None:
            address, refusal = transfer.refused
            return self._refuse(host, refusal.kind, _refused_reason(host, hop, address, refusal))
        if transfer.too_large or code == pycurl.E_FILESIZE_EXCEEDED:
            return ResponseTooLarge(f"{host} answered more than {transfer.body_limit:,} bytes")
        if code == pycurl.E_OPERATION_TIMEDOUT:
            if answering:
                return OutboundTimeout(f"{host} did not finish answering within {timeout:g}s")
            return OutboundTimeout(f"{host} did not answer within {timeout:g}s")
        where = f"a redirect from {host}" if hop else host
        if answering:
            return OutboundUnreachable(f"the connection to {host} broke ({message})")
        return OutboundUnreachable(f"{where} could not be reached ({message})")

    def _refuse(self, host: str, kind: str, reason: str) -> OutboundRefused:
        self.metrics.outbound_refused.labels(kind).inc()
        log.warning("outbound_refused", host=host, kind=kind, reason=reason)
        return OutboundRefused(reason)

    async def close(self) -> None:
        if self._curl is not None:
            self._curl.close()
            self._curl = None
        for handle in [*self._handles, *(handle for kept in self._posting.values() for handle in kept)]:
            handle.close()
        self._handles.clear()
        self._posting.clear()


def _header_lines(headers: HeaderItems | None, has_body: bool) -> list[str]:
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    lines = [f"{name}: {value}" for name, value in items]
    if has_body:
        named = {line.split(":", 1)[0].lower() for line in lines}
        if "content-type" not in named:
            lines.append("Content-Type:")  # libcurl would otherwise claim a form
        lines.append("Expect:")  # no 100-continue round trip before a large body
    return lines


def _set_tls(handle: pycurl.Curl, tls: Tls) -> None:
    if tls.ca_file:
        handle.setopt(pycurl.CAINFO, tls.ca_file)  # beside the system's CAPATH: trusted as well, not instead
    if tls.certificate_pem is not None:
        handle.setopt(pycurl.SSLCERT_BLOB, tls.certificate_pem)
        handle.setopt(pycurl.SSLCERTTYPE, "PEM")
    if tls.key_pem is not None:
        handle.setopt(pycurl.SSLKEY_BLOB, tls.key_pem)
        handle.setopt(pycurl.SSLKEYTYPE, "PEM")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _refused_reason(host: str, hop: int, address: str, refusal: Refusal) -> str:
    """What a tenant is told; a redirect's target is not repeated (it came from the far side)."""
    if hop:
        return f"a redirect from {host} leads to {refusal.reason}"
    if address == host.strip("[]"):
        return f"{host} is {refusal.reason}"
    return f"{host} resolves to {address}, {refusal.reason}"
