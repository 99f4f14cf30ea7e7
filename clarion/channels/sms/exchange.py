"""One HTTP request to a phone provider and its answer, kept apart from what the request means.

Providers (generic HTTP, Twilio, AWS) build a ProviderRequest and read a ProviderResponse; `ProviderHttp` carries
them over the process's guarded client, so provider modules are plain functions of data and easy to check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.channels.delivery import DeliveryStatus
from clarion.outbound.client import OutboundClient, OutboundError, OutboundTimeout, Tls

ANSWER_BYTES = 1 << 20  # a provider's answer is a small JSON document; anything larger is not one


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    status: int
    headers: Mapping[str, str]  # looked up in any case
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
    """One provider's requests through the guarded client: its time limit, its CA, answers read up to a cap."""

    def __init__(self, outbound: OutboundClient, timeout_seconds: float, ca_file: str = "") -> None:
        self.outbound = outbound
        self._timeout = timeout_seconds
        self._tls = Tls(ca_file=ca_file or None)

    async def exchange(self, request: ProviderRequest, project: str) -> ProviderResponse:
        try:
            answer = await self.outbound.request(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=self._timeout,
                max_bytes=ANSWER_BYTES,
                tls=self._tls,
                project=project,
            )
        except OutboundTimeout:
            raise ProviderUnreachable(504, f"No answer from {_origin(request.url)} in time") from None
        except OutboundError as error:
            raise ProviderUnreachable(502, f"Could not reach {_origin(request.url)}: {error}") from None
        return ProviderResponse(answer.status, answer.headers, answer.body)

    async def close(self) -> None:
        """The guarded client is the process's, which closes it."""


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
