"""The worker loop: lease due items, run the handler registered for each kind, ack or retry.

Delivery is at least once (a worker killed mid-item leaves it to be redelivered when its lease runs out), so
handlers must be idempotent: commit progress with `StoreQueue.hold_in` in the same transaction, and a second
delivery resumes instead of repeating. A handler whose last commit must remove the item with its effects acks it
there (`StoreQueue.ack_in`); the worker acks every other item whose handler returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from clarion.logs import get_logger
from clarion.queue.config import QueueSettings
from clarion.queue.work_queue import Lease, LeaseLost, StoreQueue

Handler = Callable[[Lease], Awaitable[None]]

log = get_logger("clarion.queue")


def retry_delay(settings: QueueSettings, attempts: int) -> float:
    """Exponential backoff: the first retry after retry_delay_seconds, doubling, capped."""
    return min(settings.retry_delay_seconds * 2 ** (attempts - 1), settings.max_retry_delay_seconds)


class Worker:
    """Runs the handlers of the kinds it was given; several workers (in one or many processes) may share a queue."""

    def __init__(self, queue: StoreQueue, handlers: dict[str, Handler], settings: QueueSettings) -> None:
        self.queue = queue
        self.handlers = handlers
        self.settings = settings

    async def run(self) -> None:
        """Forever (until cancelled): the loop `Services.background` runs."""
        while True:
            if not await self.run_once():
                await self.queue.wait(self.settings.poll_seconds)

    async def run_once(self) -> int:
        """Lease one batch and run it to the end; the number of items run."""
        if not self.handlers:
            return 0
        leases = await self.queue.lease(
            list(self.handlers), self.settings.lease_batch, self.settings.visibility_seconds
        )
        await asyncio.gather(*(self._run(lease) for lease in leases))
        return len(leases)

    async def _run(self, lease: Lease) -> None:
        try:
            await self.handlers[lease.kind](lease)
        except asyncio.CancelledError:
            # Shutting down: hand the item straight back rather than making it wait out its lease.
            await self.queue.nack(lease)
            raise
        except LeaseLost as lost:
            log.warning("queue lease lost", item=lease.id, kind=lease.kind, reason=str(lost))
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if lease.attempts >= self.settings.max_attempts:
                log.error("queue item given up", item=lease.id, kind=lease.kind, attempts=lease.attempts, error=reason)
                await self.queue.bury(lease, reason)
            else:
                delay = retry_delay(self.settings, lease.attempts)
                log.warning("queue item failed", item=lease.id, kind=lease.kind, retry_in=delay, error=reason)
                await self.queue.nack(lease, delay, reason)
        else:
            if not lease.acked:
                await self.queue.ack(lease)
