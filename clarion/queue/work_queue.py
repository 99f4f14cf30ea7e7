"""The queue interface and its embedded implementation on the store of record.

Items are a kind (which handler runs them) and a JSON payload. The interface — enqueue, lease, extend, ack,
nack — is the one a broker (Redis Streams) can implement later; `StoreQueue` keeps items in the `queue_items`
table, so on one machine no other service is needed, and an item enqueued in a caller's transaction exists
exactly when that transaction's other writes do (a broker would need an outbox table for the same guarantee).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from clarion.clock import Clock, epoch_millis
from clarion.store import queue as queue_store
from clarion.store.database import Database, Transaction


@dataclass(slots=True)
class Lease:
    """One leased item. Its handler either returns (the worker acks it) or acks it itself inside the transaction
    that commits its effects (`ack_in`), which marks the lease `acked` so the worker does not ack it again."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # deliveries so far, this one included
    token: str
    visibility: float  # seconds the item was leased for; `hold_in` extends by as much unless told otherwise
    acked: bool = False


class LeaseLost(Exception):
    """The lease ran out and the item may be running elsewhere: this holder must stop without committing."""


def _millis(clock: Clock, delay: float = 0.0) -> int:
    return epoch_millis(clock.now() + timedelta(seconds=delay))


class StoreQueue:
    """The durable queue in the store of record (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._wakeup = asyncio.Event()

    def enqueue_in(
        self,
        tx: Transaction,
        kind: str,
        payload: dict[str, Any],
        due_at: datetime | None = None,
        key: str | None = None,
    ) -> bool:
        """Enqueue inside the caller's transaction; False if `key` names an item still queued (nothing added)."""
        now = _millis(self.clock)
        available_at = epoch_millis(due_at) if due_at is not None else now
        return queue_store.insert(tx, kind, orjson.dumps(payload).decode(), available_at, key, now)

    async def enqueue(
        self, kind: str, payload: dict[str, Any], due_at: datetime | None = None, key: str | None = None
    ) -> bool:
        added = await self.db.write(lambda tx: self.enqueue_in(tx, kind, payload, due_at, key))
        self.wake()
        return added

    def wake(self) -> None:
        """Tell this process's workers that work is waiting (other processes find it by polling)."""
        self._wakeup.set()

    async def wait(self, timeout: float) -> None:
        """Until woken or `timeout` seconds pass, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()

    async def lease(self, kinds: Sequence[str], n: int, visibility: float) -> list[Lease]:
        """Up to `n` ready items of these kinds, invisible to other leases for `visibility` seconds."""
        token = uuid.uuid4().hex
        rows = await self.db.write(
            lambda tx: queue_store.lease(tx, kinds, n, _millis(self.clock), _millis(self.clock, visibility), token)
        )
        return [Lease(row.id, row.kind, orjson.loads(row.payload), row.attempts, token, visibility) for row in rows]

    def hold_in(self, tx: Transaction, lease: Lease, visibility: float | None = None) -> None:
        """Extend the lease (by its own visibility unless told otherwise) inside the transaction that commits the
        holder's progress; raise LeaseLost (so nothing commits) if it ran out and another worker may have it."""
        until = _millis(self.clock, lease.visibility if visibility is None else visibility)
        if not queue_store.extend(tx, lease.id, lease.token, until):
            raise LeaseLost(f"lease on queue item {lease.id} ({lease.kind}) ran out")

    def ack_in(self, tx: Transaction, lease: Lease) -> None:
        """Finish the item inside the transaction that commits its effects, so both happen or neither does; raise
        LeaseLost (so nothing commits) if the lease ran out and the item may be running elsewhere."""
        if not queue_store.delete(tx, lease.id, lease.token):
            raise LeaseLost(f"lease on queue item {lease.id} ({lease.kind}) ran out before it was acked")
        lease.acked = True  # a transaction that fails after this raises to the handler, and so to the worker

    async def extend(self, lease: Lease, visibility: float | None = None) -> None:
        await self.db.write(lambda tx: self.hold_in(tx, lease, visibility))

    async def ack(self, lease: Lease) -> bool:
        """Done: remove the item. False if the lease had run out (the item may have been redelivered)."""
        try:
            await self.db.write(lambda tx: self.ack_in(tx, lease))
        except LeaseLost:
            return False
        return True

    async def nack(self, lease: Lease, delay: float = 0.0, error: str | None = None) -> bool:
        """Give the item back, ready again after `delay` seconds."""
        return await self.db.write(
            lambda tx: queue_store.release(tx, lease.id, lease.token, _millis(self.clock, delay), error)
        )

    async def bury(self, lease: Lease, error: str) -> bool:
        """Give up on the item: it stays in the table with its error but is never leased again."""
        return await self.db.write(lambda tx: queue_store.release(tx, lease.id, lease.token, None, error))

    async def counts(self) -> dict[str, int]:
        return await self.db.read(queue_store.counts)
