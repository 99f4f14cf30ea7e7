"""One HTTP request to a phone provider and its answer, kept apart from what the request means.

Providers (generic HTTP, Twilio, AWS) build a ProviderRequest and read a ProviderResponse; `ProviderHttp` owns the
aiohttp session that carries them, so provider modules are plain functions of data and easy to check.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from clarion import __version__
from clarion.channels.delivery import DeliveryStatus


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class UnsendableMessage(Exception):
    """The message cannot be put into the provider's request at all (malformed SSML, say): a permanent failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderUnreachable(Exception):
    """No HTTP answer at all: connection refused, TLS failure, timeout."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code  # 502 for connection trouble, 504 for a timeout, as a gateway would say
        self.message = message


class ProviderHttp:
    """An aiohttp session opened on first use (it must belong to the running loop) and reused for every send."""

    def __init__(self, timeout_seconds: float, ca_file: str = "") -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._ca_file = ca_file
        self._session: aiohttp.ClientSession | None = None

    async def exchange(self, request: ProviderRequest) -> ProviderResponse:
        session = self._session_for_loop()
        try:
            async with session.request(
                request.method, request.url, headers=dict(request.headers), data=request.body
            ) as response:
                body = await response.read()
                headers = {name.lower(): value for name, value in response.headers.items()}
                return ProviderResponse(response.status, headers, body)
        except TimeoutError:
            raise ProviderUnreachable(504, f"No answer from {_origin(request.url)} in time") from None
        except aiohttp.ClientError as error:
            raise ProviderUnreachable(502, f"Could not reach {_origin(request.url)}: {error}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=self._ca_file or None)
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=context),
                headers={"User-Agent": f"Clarion/{__version__}"},
                cookie_jar=aiohttp.DummyCookieJar(),  # provider APIs are stateless; keep no cookies between sends
            )
        return self._session


def status_for_http(status: int) -> DeliveryStatus:
    """The delivery status an HTTP answer means when the provider says nothing more specific."""
    if 200 <= status < 300:
        return DeliveryStatus.SUCCESSFUL
    if status == 429:
        return DeliveryStatus.THROTTLED
    if status == 408 or status >= 500:
        return DeliveryStatus.TEMPORARY_FAILURE
    if 400 <= status < 500:
        return DeliveryStatus.PERMANENT_FAILURE
    return DeliveryStatus.UNKNOWN_FAILURE


def json_document(body: bytes) -> Any:
    """A JSON answer decoded, or None when the body is not JSON (an HTML error page from a proxy, say)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def json_object(body: bytes) -> dict[str, Any]:
    document = json_document(body)
    return document if isinstance(document, dict) else {}


def json_path(document: Any, path: str) -> Any:
    """Follow a dotted path ("messages.0.id") through JSON objects and arrays; None where it leads nowhere."""
    for step in path.split("."):
        if isinstance(document, dict):
            document = document.get(step)
        elif isinstance(document, list) and step.isdigit() and int(step) < len(document):
            document = document[int(step)]
        else:
            return None
    return document


def _origin(url: str) -> str:
    return url.split("?", 1)[0]
