"""The queue interface and its embedded implementation on the store of record.

Items are a kind (which handler runs them), a JSON payload and the project they work for. The interface — enqueue,
lease, extend, ack, nack, bury — is the one a broker (Redis Streams) can implement later; `StoreQueue` keeps items
in the `queue_items` table, so on one machine no other service is needed, and an item enqueued in a caller's
transaction exists exactly when that transaction's other writes do (a broker would need an outbox table for the
same guarantee).

Fairness: items are leased in `fair_at` order, and each project's items are placed one step after that project's
last queued one. A project that queues ten thousand items at once therefore takes turns with a project that queues
one a minute later instead of going first with all of them (docs/queue.md#fairness).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.store import queue as queue_store
from clarion.store.database import Database, Transaction

# A project's next item goes one second after its last queued one in the fair order: a project with N items
# queued waits behind at most about N seconds' worth of another project's newer items. Items placed more than an
# hour ahead (work due later, a huge backlog) are not looked at, so they cannot push the project's new work back
# without end.
FAIR_STEP_MS = 1000
FAIR_HORIZON_MS = 3_600_000

log = get_logger("clarion.queue")


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
    project: str = ""  # the project the item works for ("" for none)
    acked: bool = False


@dataclass(frozen=True, slots=True)
class BuriedItem:
    """An item given up on, kept with the reason it was set aside."""

    id: int
    kind: str
    project: str
    payload: dict[str, Any]
    attempts: int
    reason: str
    buried_at: datetime


# Called in the transaction that buries an item of its kind, so that what the item was doing reports the failure
# (a job ends FAILED, a campaign run counts the batch) together with the burial or not at all.
BuriedHook = Callable[[Transaction, BuriedItem], None]


class LeaseLost(Exception):
    """The lease ran out and the item may be running elsewhere: this holder must stop without committing."""


def _millis(clock: Clock, delay: float = 0.0) -> int:
    return epoch_millis(clock.now() + timedelta(seconds=delay))


class StoreQueue:
    """The durable queue in the store of record (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, clock: Clock, metrics: Metrics | None = None) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._wakeup = asyncio.Event()
        self._buried_hooks: dict[str, BuriedHook] = {}

    def enqueue_in(
        self,
        tx: Transaction,
        kind: str,
        payload: dict[str, Any],
        due_at: datetime | None = None,
        key: str | None = None,
        project: str | None = None,
    ) -> bool:
        """Enqueue inside the caller's transaction; False if `key` names an item still queued (nothing added).
        `project`: the project the work is for, which takes its turn with the others."""
        now = _millis(self.clock)
        available_at = epoch_millis(due_at) if due_at is not None else now
        lane = project or ""
        last = queue_store.lane_end(tx, lane, max(available_at, now) + FAIR_HORIZON_MS)
        fair_at = available_at if last is None else max(available_at, last + FAIR_STEP_MS)
        body = msgspec.json.encode(payload).decode()
        return queue_store.insert(tx, kind, body, lane, available_at, fair_at, key, now)

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        due_at: datetime | None = None,
        key: str | None = None,
        project: str | None = None,
    ) -> bool:
        added = await self.db.write(lambda tx: self.enqueue_in(tx, kind, payload, due_at, key, project))
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

    async def lease(
        self, kinds: Sequence[str], n: int, visibility: float, skip_projects: Sequence[str] = ()
    ) -> list[Lease]:
        """Up to `n` ready items of these kinds (none of `skip_projects`), invisible to other leases for
        `visibility` seconds."""
        token = uuid.uuid4().hex
        rows = await self.db.write(
            lambda tx: queue_store.lease(
                tx, kinds, n, _millis(self.clock), _millis(self.clock, visibility), token, skip_projects
            )
        )
        return [
            Lease(row.id, row.kind, msgspec.json.decode(row.payload), row.attempts, token, visibility, row.app_id)
            for row in rows
        ]

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

    async def renew(self, leases: Sequence[Lease]) -> list[Lease]:
        """The heartbeat: extend each lease by its visibility, in one write; the leases that had run out."""

        def work(tx: Transaction) -> list[Lease]:
            lost = []
            for lease in leases:
                until = _millis(self.clock, lease.visibility)
                if lease.acked or not queue_store.extend(tx, lease.id, lease.token, until):
                    lost.append(lease)
            return lost

        return await self.db.write(work) if leases else []

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

    def on_buried(self, kind: str, hook: BuriedHook) -> None:
        """Register what reports the failure when an item of `kind` is buried (one hook per kind)."""
        self._buried_hooks[kind] = hook

    async def bury(self, lease: Lease, reason: str) -> bool:
        """Give up on the item: it stays in the table with its reason but is never leased again, and its kind's
        hook reports the failure in the same transaction. False if the lease had run out."""
        now = self.clock.now()
        item = BuriedItem(lease.id, lease.kind, lease.project, lease.payload, lease.attempts, reason, now)
        hook = self._buried_hooks.get(lease.kind)

        def work(tx: Transaction, report: bool) -> bool:
            if not queue_store.bury(tx, lease.id, lease.token, reason, epoch_millis(now)):
                return False
            if report and hook is not None:
                hook(tx, item)
            return True

        try:
            buried = await self.db.write(lambda tx: work(tx, True))
        except Exception:  # a failing report must not keep the item alive: bury it without the report
            log.exception("queue_buried_hook_failed", item=lease.id, kind=lease.kind)
            buried = await self.db.write(lambda tx: work(tx, False))
        if buried:
            self.metrics.queue_buried.labels(lease.kind).inc()
            log.error(
                "queue_item_buried",
                item=lease.id,
                kind=lease.kind,
                project=lease.project or None,
                attempts=lease.attempts,
                reason=reason,
            )
        return buried

    async def buried(self, project: str | None = None, limit: int = 1000) -> list[BuriedItem]:
        """Items given up on, the latest first: one project's, or all of them."""
        rows = await self.db.read(lambda tx: queue_store.buried(tx, project, limit))
        return [
            BuriedItem(
                row.id,
                row.kind,
                row.app_id,
                msgspec.json.decode(row.payload),
                row.attempts,
                row.error,
                datetime.fromtimestamp(row.buried_at / 1000, tz=self.clock.now().tzinfo),
            )
            for row in rows
        ]

    async def measure(self) -> None:
        """Set the queue gauges from the store (at each scrape of /metrics): depth, oldest due item, buried."""
        now = epoch_millis(self.clock.now())
        kinds = await self.db.read(lambda tx: queue_store.state(tx, now))
        gauges = (self.metrics.queue_depth, self.metrics.queue_oldest_seconds, self.metrics.queue_buried_now)
        for gauge in gauges:
            gauge.clear()
        for kind in kinds:
            self.metrics.queue_depth.labels(kind.kind).set(kind.waiting)
            waited = 0 if kind.oldest_due is None else (now - kind.oldest_due) / 1000
            self.metrics.queue_oldest_seconds.labels(kind.kind).set(waited)
            self.metrics.queue_buried_now.labels(kind.kind).set(kind.buried)

    async def counts(self) -> dict[str, int]:
        return await self.db.read(queue_store.counts)


async def buried_work(queue: StoreQueue, project: str | None) -> dict[str, Any]:
    """ClarionGetBuriedWork: the items given up on, the latest first (at most 1,000), as the API lists them."""
    items = await queue.buried(project)
    return {
        "Item": [
            {
                "Id": item.id,
                "Kind": item.kind,
                **({"ApplicationId": item.project} if item.project else {}),
                "Attempts": item.attempts,
                "Reason": item.reason,
                "BuriedDate": iso_millis(item.buried_at),
                "Payload": item.payload,
            }
            for item in items
        ]
    }
