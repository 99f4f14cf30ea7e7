"""A transport for a channel whose settings cannot work: every send fails permanently with the reason, so the
operator reads what to fix in each MessageResult instead of the whole send pipeline failing."""

from __future__ import annotations

from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound


class UnusableChannel:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def send(self, message: Outbound) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, self.reason)

    async def close(self) -> None:
        return None
