"""The worker loop: keep up to `concurrency` items running, each under its kind's time limit; ack, retry or bury.

A slot that frees is filled at once, so one slow item never holds back the rest, and no project fills more than
`project_concurrency` slots, so one project's slow or numerous items leave room for the others'. An item that keeps
failing or timing out — or that was handed out `max_attempts` times without ever finishing, because the process
died or froze each time — is buried with its reason instead of coming back forever.

While an item runs, the worker renews its lease (a heartbeat every third of `visibility_seconds`). Delivery is at
least once (a worker killed mid-item leaves it to be redelivered when its lease runs out, within
`visibility_seconds`), so
handlers must be idempotent: commit progress with `StoreQueue.hold_in` in the same transaction, and a second
delivery resumes instead of repeating. A handler whose last commit must remove the item with its effects acks it
there (`StoreQueue.ack_in`); the worker acks every other item whose handler returned.
"""

from __future__ import annotations

import asyncio
from collections import Counter
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
        self._running: dict[asyncio.Task[None], Lease] = {}

    async def run(self) -> None:
        """Forever (until cancelled): the loop `Services.background` runs."""
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while True:
                await self._fill()
                waits: set[asyncio.Future[None]] = set(self._running)
                idle: asyncio.Future[None] | None = None
                if len(self._running) < self.settings.concurrency:  # room: also wake for newly queued work
                    idle = asyncio.ensure_future(self.queue.wait(self.settings.poll_seconds))
                    waits.add(idle)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if idle is not None:
                    idle.cancel()
        finally:
            heartbeat.cancel()
            running = list(self._running)
            if running:
                kinds = sorted({lease.kind for lease in self._running.values()})
                log.info("queue_worker_stopping", handed_back=len(running), kinds=kinds)
            for task in running:
                task.cancel()  # each hands its item straight back (`_run`)
            await asyncio.gather(*running, return_exceptions=True)

    async def _heartbeat(self) -> None:
        """Renew the leases of the running items every third of their visibility, so that only a worker that
        stopped (killed, frozen) lets its items go, and they are ready again soon after."""
        while True:
            await asyncio.sleep(self.settings.visibility_seconds / 3)
            try:
                lost = await self.queue.renew([lease for lease in self._running.values() if not lease.acked])
            except Exception:  # the store is unreachable now; the next beat tries again
                log.exception("queue_heartbeat_failed")
                continue
            for lease in lost:
                if not lease.acked:
                    log.warning("queue_lease_lost", item=lease.id, kind=lease.kind, reason="heartbeat found it gone")

    async def _fill(self) -> None:
        """Lease items one at a time into the free slots, skipping projects that hold their share of slots."""
        share = min(self.settings.project_concurrency, self.settings.concurrency)
        while self.handlers and len(self._running) < self.settings.concurrency:
            in_flight = Counter(lease.project for lease in self._running.values())
            full = [project for project, count in in_flight.items() if count >= share]
            leases = await self.queue.lease(list(self.handlers), 1, self.settings.visibility_seconds, full)
            if not leases:
                return
            [lease] = leases
            if await self._bury_if_never_finished(lease):
                continue
            task = asyncio.create_task(self._run(lease))
            self._running[task] = lease
            task.add_done_callback(lambda done: self._running.pop(done, None))

    async def run_once(self) -> int:
        """Lease up to `concurrency` items and run them to the end; the number leased. Tests and benchmarks drive
        the queue with this instead of the endless `run`."""
        if not self.handlers:
            return 0
        leases = await self.queue.lease(
            list(self.handlers), self.settings.concurrency, self.settings.visibility_seconds
        )
        runnable = [lease for lease in leases if not await self._bury_if_never_finished(lease)]
        tasks = [asyncio.create_task(self._run(lease)) for lease in runnable]
        self._running.update(zip(tasks, runnable, strict=True))
        heartbeat = asyncio.create_task(self._heartbeat())  # long items keep their leases here too
        try:
            await asyncio.gather(*tasks)
        finally:
            heartbeat.cancel()
            for task in tasks:
                self._running.pop(task, None)
        return len(leases)

    async def _bury_if_never_finished(self, lease: Lease) -> bool:
        """An item handed out more than max_attempts times was never finished (a crash or a freeze each time, which
        no handler could report): bury it rather than run it again."""
        if lease.attempts <= self.settings.max_attempts:
            return False
        finished = lease.attempts - 1
        await self.queue.bury(lease, f"handed out {finished} times without finishing (the process stopped each time)")
        return True

    async def _run(self, lease: Lease) -> None:
        limit = self.settings.timeout_for(lease.kind)
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                await self.handlers[lease.kind](lease)
        except asyncio.CancelledError:
            # Shutting down: hand the item straight back rather than making it wait out its lease.
            await self.queue.nack(lease)
            raise
        except LeaseLost as lost:
            log.warning("queue_lease_lost", item=lease.id, kind=lease.kind, reason=str(lost))
        except Exception as error:
            if isinstance(error, TimeoutError) and deadline.expired():
                await self._failed(lease, f"timed out after {limit:g}s", "timeout")
            else:
                await self._failed(lease, f"{type(error).__name__}: {error}", "error")
        else:
            if not lease.acked:
                await self.queue.ack(lease)

    async def _failed(self, lease: Lease, reason: str, cause: str) -> None:
        self.queue.metrics.queue_failures.labels(lease.kind, cause).inc()
        if lease.attempts >= self.settings.max_attempts:
            await self.queue.bury(lease, reason)
            return
        delay = retry_delay(self.settings, lease.attempts)
        log.warning(
            "queue_item_failed", item=lease.id, kind=lease.kind, attempts=lease.attempts, retry_in=delay, error=reason
        )
        await self.queue.nack(lease, delay, reason)
