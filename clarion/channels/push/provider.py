"""A push provider's HTTP/2 endpoint on the guarded client: the TLS it needs, the time a send may take, and what a
send that got no answer means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.channels.delivery import DeliveryResult, DeliveryStatus
from clarion.outbound.client import Answer, OutboundClient, OutboundError, OutboundTimeout, Tls

ANSWER_BYTES = 1 << 16  # APNs and FCM answer with headers and a small JSON document


@dataclass(frozen=True, slots=True)
class PushProvider:
    name: str  # "APNs", "FCM": how results name the provider
    client: OutboundClient
    tls: Tls
    timeout: float
    connect_timeout: float

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], body: bytes, project: str
    ) -> Answer | DeliveryResult:
        """The provider's answer, or the TEMPORARY_FAILURE a send without one is (it may have been delivered)."""
        try:
            return await self.client.request(
                "POST",
                url,
                headers=headers,
                body=body,
                timeout=self.timeout,
                connect_timeout=self.connect_timeout,
                max_bytes=ANSWER_BYTES,
                tls=self.tls,
                project=project,
            )
        except OutboundTimeout as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 504, f"{self.name}: {error}")
        except OutboundError as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 503, f"{self.name}: {error}")
