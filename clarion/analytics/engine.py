"""The segment engine on the columnar replica: SegmentEngine with its membership reads answered by DuckDB.

Plans, validation and previews are SegmentEngine's; only the reads move, every plan included (imported segments'
members are replicated too). Each read first syncs the replica with the row store (one indexed read when nothing
changed), so an endpoint update, an event or an import committed before the call is counted, as with the row-store
engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from clarion.analytics import kpi_duckdb, segment_duckdb
from clarion.analytics.kpis import KpiRunner
from clarion.analytics.replica import ASCII_FOLD, Replica
from clarion.analytics.sync import ReplicaSync
from clarion.clock import Clock
from clarion.config import Settings
from clarion.coordination.leader import Leadership, process_name
from clarion.metrics import Metrics
from clarion.segments.engine import DEFAULT_PAGE_SIZE, SegmentEngine
from clarion.segments.plan import Activity, Node
from clarion.store import kpi_rollup
from clarion.store.database import Database
from clarion.store.kpi_sql import KpiQuery

T = TypeVar("T")
log = logging.getLogger("clarion.analytics")


class ColumnarSegmentEngine(SegmentEngine):
    """The replica is opened on first use, so a CLI command that never evaluates a segment never opens it."""

    def __init__(self, db: Database, clock: Clock, open_replica: Callable[[], Replica]) -> None:
        super().__init__(db, clock)
        self._open_replica = open_replica
        self._sync: ReplicaSync | None = None

    @property
    def sync(self) -> ReplicaSync:
        if self._sync is None:
            self._sync = ReplicaSync(self.db, self._open_replica())
        return self._sync

    async def keep_synced(self, interval_seconds: float) -> None:
        await self.sync.run_forever(interval_seconds)

    async def aclose(self) -> None:
        if self._sync is not None:
            self._sync.replica.close()

    async def _query(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        await self.sync.sync()

        def run() -> T:
            con = self.sync.replica.cursor()
            try:
                return query(con)
            finally:
                con.close()

        return await asyncio.to_thread(run)

    async def kpi_rows(self, query: KpiQuery) -> list[tuple[Any, ...]]:
        """A KPI's counters (clarion/analytics/kpis.py) from the replica, synced first like a segment read."""
        return await self._query(lambda con: kpi_duckdb.run(con, query))

    async def prune_events(self, before_ms: int) -> int:
        """Retention's pass over the replica (clarion/analytics/retention.py)."""

        def prune() -> int:
            with self.sync.replica.round() as round_:
                return round_.prune_events(before_ms)

        return await asyncio.to_thread(prune)

    async def count(self, app_id: str, node: Node, *, sendable_only: bool = False) -> int:
        return await self._query(lambda con: segment_duckdb.count(con, app_id, node, sendable_only=sendable_only))

    async def channel_counts(self, app_id: str, node: Node, *, sendable_only: bool = False) -> dict[str, int]:
        return await self._query(
            lambda con: segment_duckdb.channel_counts(con, app_id, node, sendable_only=sendable_only)
        )

    async def sample(self, app_id: str, node: Node, size: int, *, sendable_only: bool = False) -> list[str]:
        return await self._query(
            lambda con: segment_duckdb.sample(con, app_id, node, size, sendable_only=sendable_only)
        )

    async def activity(self, app_id: str, endpoint_ids: list[str]) -> Activity:
        """From the replica's running totals, which each sync moves forward by the events it brings."""
        folded = ", ".join(ASCII_FOLD.format("?") for _ in endpoint_ids)
        row = await self._query(
            lambda con: con.execute(
                "SELECT max(last_ms), coalesce(sum(events), 0), coalesce(sum(revenue), 0) FROM engagement "
                f"WHERE app_id = ? AND event_key IN ({folded})",
                [app_id, *endpoint_ids],
            ).fetchone()
        )
        last, events, revenue = row if row is not None else (None, 0, 0.0)
        return Activity(last, int(events), float(revenue))

    async def member_pages(
        self, app_id: str, node: Node, *, page_size: int = DEFAULT_PAGE_SIZE, sendable_only: bool = False
    ) -> AsyncIterator[list[str]]:
        """Member ids in pages, in endpoint-key order, streamed from one query over one snapshot of the replica.

        A columnar scan per page would cost a full scan each time; one streamed result costs one.
        """
        await self.sync.sync()
        con = self.sync.replica.cursor()
        try:
            await asyncio.to_thread(segment_duckdb.execute_members, con, app_id, node, sendable_only)
            while rows := await asyncio.to_thread(con.fetchmany, page_size):
                yield [row[0] for row in rows]
        finally:
            con.close()


@dataclass
class SegmentEngineSetup:
    """The engine Settings ask for, with the loops and closers it brings."""

    engine: SegmentEngine
    kpis: KpiRunner  # where KPIs are computed: the same engine as segments
    prune_replica: Callable[[int], Awaitable[int]] | None = None  # retention's pass over the replica, if one is kept
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def open_segment_engine(settings: Settings, db: Database, clock: Clock, metrics: Metrics) -> SegmentEngineSetup:
    analytics = settings.analytics
    if analytics.segment_engine == "store":
        return SegmentEngineSetup(SegmentEngine(db, clock), lambda query: db.read(lambda tx: kpi_rollup.run(tx, query)))
    path: Path | None
    if analytics.replica_path == "memory" or (not analytics.replica_path and settings.uses_postgres):
        path = None
    else:
        path = Path(analytics.replica_path) if analytics.replica_path else settings.data_dir / "analytics.duckdb"

    spill = settings.data_dir / "analytics.tmp"

    def open_replica() -> Replica:
        try:
            return Replica(path, analytics.threads, analytics.memory_limit, spill)
        except duckdb.Error as error:
            if path is None or "lock" in str(error):  # another process holds the file: a second server on this dir
                log.warning("analytics replica %s unavailable (%s); keeping one in memory", path, error)
                return Replica(None, analytics.threads, analytics.memory_limit, spill)
            # Unreadable (a damaged file): the replica is derived data, so start it over from the store.
            log.warning("analytics replica %s unreadable (%s); rebuilding it", path, error)
            for stale in (path, path.with_name(path.name + ".wal")):
                stale.unlink(missing_ok=True)
            return Replica(path, analytics.threads, analytics.memory_limit, spill)

    if settings.uses_postgres and analytics.replica_holders == "one":
        shared = SharedReplicaEngine(db, clock, open_replica)
        leadership = Leadership(
            db, clock, metrics, "analytics", settings.coordination.leader_lease_seconds, process_name()
        )
        return SegmentEngineSetup(
            shared,
            shared.kpi_rows,
            shared.prune_events,
            [lambda: leadership.run(lambda: shared.hold(analytics.sync_seconds))],
            [shared.aclose],
        )
    engine = ColumnarSegmentEngine(db, clock, open_replica)
    return SegmentEngineSetup(
        engine,
        engine.kpi_rows,
        engine.prune_events,
        [lambda: engine.keep_synced(analytics.sync_seconds)],
        [engine.aclose],
    )


class SharedReplicaEngine(ColumnarSegmentEngine):
    """Several processes on PostgreSQL keep one replica between them, not one each: the process holding the
    analytics lease builds and follows it (`hold`) and answers segment and KPI reads from it once it has caught up;
    until then, and in every other process, the same reads are answered on the row store (the base engine's SQL,
    the same answers). A process that loses the lease closes its replica and frees its memory."""

    def __init__(self, db: Database, clock: Clock, open_replica: Callable[[], Replica]) -> None:
        super().__init__(db, clock, open_replica)
        self.ready = False  # this process holds the lease and its replica has caught up with the store

    async def hold(self, interval_seconds: float) -> None:
        """While holding the analytics lease (clarion/coordination/leader.py): build, then follow the replica."""
        try:
            await self.sync.sync()
            self.ready = True
            await self.keep_synced(interval_seconds)
        finally:
            self.ready = False
            await self.aclose()
            self._sync = None

    async def count(self, app_id: str, node: Node, *, sendable_only: bool = False) -> int:
        if self.ready:
            return await super().count(app_id, node, sendable_only=sendable_only)
        return await SegmentEngine.count(self, app_id, node, sendable_only=sendable_only)

    async def channel_counts(self, app_id: str, node: Node, *, sendable_only: bool = False) -> dict[str, int]:
        if self.ready:
            return await super().channel_counts(app_id, node, sendable_only=sendable_only)
        return await SegmentEngine.channel_counts(self, app_id, node, sendable_only=sendable_only)

    async def sample(self, app_id: str, node: Node, size: int, *, sendable_only: bool = False) -> list[str]:
        if self.ready:
            return await super().sample(app_id, node, size, sendable_only=sendable_only)
        return await SegmentEngine.sample(self, app_id, node, size, sendable_only=sendable_only)

    async def activity(self, app_id: str, endpoint_ids: list[str]) -> Activity:
        if self.ready:
            return await super().activity(app_id, endpoint_ids)
        return await SegmentEngine.activity(self, app_id, endpoint_ids)

    async def member_pages(
        self, app_id: str, node: Node, *, page_size: int = DEFAULT_PAGE_SIZE, sendable_only: bool = False
    ) -> AsyncIterator[list[str]]:
        pages = (
            super().member_pages(app_id, node, page_size=page_size, sendable_only=sendable_only)
            if self.ready
            else SegmentEngine.member_pages(self, app_id, node, page_size=page_size, sendable_only=sendable_only)
        )
        async for page in pages:
            yield page

    async def kpi_rows(self, query: KpiQuery) -> list[tuple[Any, ...]]:
        if self.ready:
            return await super().kpi_rows(query)
        return await self.db.read(lambda tx: kpi_rollup.run(tx, query))

    async def prune_events(self, before_ms: int) -> int:
        """Only the holder's replica has events to prune."""
        return await super().prune_events(before_ms) if self.ready else 0
