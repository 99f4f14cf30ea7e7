"""Retention: events, the message log and change-feed tombstones older than their settings are removed by a
background prune, in batches of `batch_rows` rows, one short write each, pausing between them: a writer waits for one
batch at most, never for a whole prune.

What stays however old: events the project's event stream has not shipped yet (they go once shipped), and messages
of live campaigns and journeys (their message limits count them). The DuckDB replica drops the same events; a
replica positioned before a pruned tombstone rebuilds from the store (clarion/analytics/sync.py).

The same pass keeps PostgreSQL's KPI rollups small: each ended hour's appended rows are merged into one row per key
(clarion/store/kpi_rollup.py), an hour per write, pausing between them like the prune's batches.

The store's rows are shared, so one process of a group prunes them and merges the rollups (`run`, under the
"retention" lease in clarion/services.py); each process prunes the replica it keeps itself (`run_replica`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from clarion.analytics.config import RetentionSettings
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.store import kpi_rollup
from clarion.store import retention as retention_store
from clarion.store.database import Database, Transaction

log = get_logger("clarion.analytics.retention")

Batch = Callable[[Transaction], int]


class RetentionPruner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: RetentionSettings,
        metrics: Metrics,
        prune_replica: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.prune_replica = prune_replica  # drops the replica's events before an epoch-ms time

    async def prune_once(self) -> dict[str, int]:
        """One pass over the store's rows and this process's replica; rows removed from the store by kind."""
        removed = await self.prune_store()
        await self.prune_local_replica()
        return removed

    async def prune_store(self) -> dict[str, int]:
        """One pass over every kind and project in the store; rows removed by kind."""
        now, settings, limit = self.clock.now(), self.settings, self.settings.batch_rows
        removed = {"events": 0, "messages": 0, "tombstones": 0}
        app_ids = await self.db.read(retention_store.app_ids)
        for app_id in app_ids:
            if settings.events_days:
                before = epoch_millis(now - timedelta(days=settings.events_days))
                removed["events"] += await self._batches(
                    lambda tx, a=app_id, b=before: retention_store.prune_events(tx, a, b, limit)
                )
            if settings.messages_days:
                since = iso_millis(now - timedelta(days=settings.messages_days))
                removed["messages"] += await self._batches(
                    lambda tx, a=app_id, s=since: retention_store.prune_messages(tx, a, s, limit)
                )
        if settings.changes_days:
            before = epoch_millis(now - timedelta(days=settings.changes_days))
            removed["tombstones"] += await self._batches(lambda tx: retention_store.prune_tombstones(tx, before, limit))
        for kind, count in removed.items():
            if count:
                self.metrics.retention_pruned.labels(kind).inc(count)
        if any(removed.values()):
            log.info("retention_pruned", **removed)
        return removed

    async def prune_local_replica(self) -> None:
        """Drop the events past retention from the replica this process keeps, if it keeps one."""
        if self.settings.events_days and self.prune_replica is not None:
            before = self.clock.now() - timedelta(days=self.settings.events_days)
            await self.prune_replica(epoch_millis(before))

    async def merge_rollups(self) -> int:
        """Merge every ended hour's appended KPI rollup rows; rows folded away."""
        before = epoch_millis(self.clock.now())
        folded = 0
        while (count := await self.db.write(lambda tx: kpi_rollup.merge_next(tx, before))) is not None:
            folded += count
            await asyncio.sleep(self.settings.pause_seconds)
        if folded:
            self.metrics.rollup_rows_merged.inc(folded)
            log.info("kpi_rollups_merged", rows=folded)
        return folded

    async def _batches(self, batch: Batch) -> int:
        total = 0
        while True:
            count = await self.db.write(batch)
            total += count
            if count < self.settings.batch_rows:
                return total
            await asyncio.sleep(self.settings.pause_seconds)

    async def run(self) -> None:
        """The store's background loop, a pass every interval from when this process takes the lease (not at once: a
        group starting or changing hands does not prune at that moment); a failed pass is logged, counted and tried
        again at the next interval."""
        while True:
            await asyncio.sleep(self.settings.interval_seconds)
            try:
                await self.prune_store()
            except Exception:  # the store may be briefly unavailable; the next pass starts over
                self.metrics.retention_failures.inc()
                log.exception("retention_prune_failed")
            try:
                await self.merge_rollups()
            except Exception:  # likewise: the rows stay appended, and KPIs add them up, until the next pass
                self.metrics.rollup_merge_failures.inc()
                log.exception("kpi_rollup_merge_failed")

    async def run_replica(self) -> None:
        """This process's replica's background loop, on the same interval; a failure is handled like the store's."""
        while True:
            await asyncio.sleep(self.settings.interval_seconds)
            try:
                await self.prune_local_replica()
            except Exception:  # the replica may be rebuilding; the next pass starts over
                self.metrics.retention_failures.inc()
                log.exception("retention_prune_failed", part="replica")
