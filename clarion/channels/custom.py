"""The CUSTOM channel: a signed JSON POST to the campaign's webhook URL (CustomDeliveryConfiguration.DeliveryUri).

The body is the event Pinpoint hands a custom channel (ApplicationId, CampaignId, TreatmentId, ActivityId,
ScheduledTime, Endpoints keyed by endpoint id, Data). Receivers check `X-Clarion-Signature: t=<unix>,v1=<hex>`,
an HMAC-SHA256 under the operator's signing secret of `<t>.<raw body>` (docs/channels.md shows how), and use
`X-Clarion-Message-Id` to drop the duplicates that retries can cause. Pinpoint batches up to 50 endpoints per
call; Clarion sends one endpoint per call, since each message has its own result. The address comes from the
tenant, so calls go through the guarded client (clarion/outbound/), which refuses the server's own network unless
the operator allows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from clarion.channels.config import DeliverySettings, WebhookSettings
from clarion.channels.delivery import (
    CustomContent,
    DeliveryResult,
    DeliveryStatus,
    Outbound,
    Transport,
)
from clarion.channels.retry_after import retry_after_seconds
from clarion.clock import Clock, SystemClock
from clarion.outbound.client import OutboundClient, OutboundError, OutboundTimeout

SIGNATURE_HEADER = "X-Clarion-Signature"
MESSAGE_ID_HEADER = "X-Clarion-Message-Id"
CAMPAIGN_KEYS = ("CampaignId", "TreatmentId", "ActivityId", "ScheduledTime", "JourneyId")
ANSWER_BYTES = 1 << 16  # a receiver's answer is not read beyond its status and Retry-After

Sleep = Callable[[float], Awaitable[None]]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`; receivers recompute it the same way."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_body(message: Outbound, content: CustomContent) -> bytes:
    endpoint_id = message.endpoint_id or message.address
    event: dict[str, Any] = {"Message": {}, "Data": content.data, "ApplicationId": message.app_id}
    event.update({key: message.context[key] for key in CAMPAIGN_KEYS if key in message.context})
    event["Endpoints"] = {endpoint_id: dict(content.endpoint or {"ChannelType": "CUSTOM"})}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookTransport:
    """POSTs with bounded retries: 5xx, 429, timeouts and connection errors back off exponentially with full
    jitter (a Retry-After within the backoff cap is honoured); other answers are final."""

    def __init__(
        self, settings: WebhookSettings, outbound: OutboundClient, clock: Clock, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.settings = settings
        self.outbound = outbound
        self.clock = clock
        self.sleep = sleep

    async def send(self, message: Outbound) -> DeliveryResult:
        content = message.content
        if not isinstance(content, CustomContent):
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, "a custom channel sends custom content only")
        url = urlsplit(message.address)
        if url.scheme not in ("http", "https") or not url.hostname:
            return DeliveryResult(
                DeliveryStatus.PERMANENT_FAILURE,
                400,
                f"DeliveryUri {message.address!r} is not an http(s) URL (Lambda functions are not supported)",
            )
        body = webhook_body(message, content)
        result = DeliveryResult(DeliveryStatus.UNKNOWN_FAILURE, 0, "not attempted")
        for attempt in range(self.settings.max_attempts):
            result = await self._attempt(message, body)
            if not result.status.retryable or attempt + 1 == self.settings.max_attempts:
                break
            ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
            if result.retry_after is not None:
                if result.retry_after > self.settings.backoff_max:
                    break  # the receiver wants longer than this send may wait; report when to come back
                delay = result.retry_after
            else:
                delay = random.uniform(0, ceiling)
            await self.sleep(delay)
        return result

    async def _attempt(self, message: Outbound, body: bytes) -> DeliveryResult:
        headers = {"Content-Type": "application/json", MESSAGE_ID_HEADER: message.message_id}
        if self.settings.signing_secret is not None:
            timestamp = int(self.clock.now().timestamp())
            headers[SIGNATURE_HEADER] = sign(self.settings.signing_secret.get_secret_value(), timestamp, body)
        try:
            async with self.outbound.open(
                "POST",
                message.address,
                body=body,
                headers=headers,
                timeout=self.settings.timeout,
                max_bytes=ANSWER_BYTES,
                project=message.app_id,
            ) as response:
                code = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.clock.now())
        except OutboundTimeout:
            return DeliveryResult(
                DeliveryStatus.TEMPORARY_FAILURE, 504, f"webhook timed out after {self.settings.timeout:g}s"
            )
        except OutboundError as error:
            if error.permanent:
                return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, f"DeliveryUri refused: {error}")
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 503, f"webhook unreachable: {error}")
        if 200 <= code < 300:
            return DeliveryResult(DeliveryStatus.SUCCESSFUL, code)
        if code == 429:
            status = DeliveryStatus.THROTTLED
        elif code >= 500:
            status = DeliveryStatus.TEMPORARY_FAILURE
        else:
            status = DeliveryStatus.PERMANENT_FAILURE  # 3xx (redirects are not followed) and 4xx
        # Only the status: what the receiver wrote back is not repeated to whoever reads the result.
        return DeliveryResult(status, code, f"webhook answered {code}", retry_after=retry_after)

    async def close(self) -> None:
        """The guarded client is shared by the whole process, which closes it."""


def open_transport(settings: DeliverySettings, channel: Mapping[str, Any], outbound: OutboundClient) -> Transport:
    """Webhooks need no per-project credentials: the URL comes with each message, the secret from the operator."""
    return WebhookTransport(settings.webhook, outbound, SystemClock())
