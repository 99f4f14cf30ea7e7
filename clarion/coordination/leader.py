"""Roles only one process of a group may play at a time (the campaign scheduler), held by a lease in the store.

The holder renews its lease every third of `leader_lease_seconds`; the others try to take it every second. When
the holder dies its lease runs out and another process takes over within a lease and a second. A holder that
cannot renew (the store unreachable) stops the work itself once its lease would have run out, so two holders
never overlap by more than the clocks disagree. A clean shutdown gives the lease up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from clarion.clock import Clock, epoch_millis
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.store import coordination as store
from clarion.store.database import Database

TRY_SECONDS = 1.0  # how often a process that does not hold the lease tries to take it

log = get_logger("clarion.coordination")


def process_name() -> str:
    """Who holds a lease, as operators read it: host, pid and a random part (pids repeat across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leadership:
    """Runs one role's work while this process holds the role's lease, and stops it when it does not."""

    def __init__(
        self, db: Database, clock: Clock, metrics: Metrics, role: str, lease_seconds: float, holder: str
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.role = role
        self.lease_seconds = lease_seconds
        self.holder = holder

    async def _hold(self) -> bool:
        now = self.clock.now()
        until = epoch_millis(now) + int(self.lease_seconds * 1000)
        return await self.db.write(lambda tx: store.hold_lease(tx, self.role, self.holder, epoch_millis(now), until))

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Forever (until cancelled): hold or contend for the lease, running `work` only while holding it."""
        task: asyncio.Task[None] | None = None
        held_until = 0.0  # monotonic time the lease certainly lasts until
        try:
            while True:
                started = time.monotonic()
                try:
                    held = await self._hold()
                except Exception:  # the store is unreachable: the lease lasts as long as it was last renewed
                    log.exception("leader_lease_failed", role=self.role)
                    held = task is not None and time.monotonic() < held_until
                else:
                    if held:
                        held_until = started + self.lease_seconds
                if held and task is None:
                    log.info("leader_acquired", role=self.role, holder=self.holder)
                    self.metrics.leader.labels(self.role).set(1)
                    task = asyncio.create_task(work())
                elif not held and task is not None:
                    log.warning("leader_lost", role=self.role, holder=self.holder)
                    await _stop(task)
                    task = None
                    self.metrics.leader.labels(self.role).set(0)
                await asyncio.sleep(self.lease_seconds / 3 if held else TRY_SECONDS)
        finally:
            if task is not None:
                await _stop(task)
                self.metrics.leader.labels(self.role).set(0)
                with contextlib.suppress(Exception):
                    await self.db.write(lambda tx: store.release_lease(tx, self.role, self.holder))

    async def holder_now(self) -> str | None:
        """Who holds the role now (None: nobody, or a lease run out)."""
        now = epoch_millis(self.clock.now())
        return await self.db.read(lambda tx: store.lease_holder(tx, self.role, now))


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
