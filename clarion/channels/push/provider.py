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
        return (await self.post_many([(url, body)], headers, project))[0]

    async def post_many(
        self,
        posts: Sequence[tuple[str, bytes]],
        headers: Sequence[tuple[str, str]],
        project: str,
        each: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> list[Answer | DeliveryResult]:
        """`post` for a batch, all at once: each answer, or what a post without one is, in the order given; `each`
        holds every post's own headers, if they have some."""
        answers = await self.client.post_many(
            posts,
            headers=headers,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_bytes=ANSWER_BYTES,
            tls=self.tls,
            project=project,
            each=each,
        )
        return [self.unanswered(answer) if isinstance(answer, OutboundError) else answer for answer in answers]

    def unanswered(self, error: OutboundError) -> DeliveryResult:
        code = 504 if isinstance(error, OutboundTimeout) else 503
        return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, code, f"{self.name}: {error}")
