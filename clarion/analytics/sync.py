"""Following the row store's change feed into the DuckDB replica.

A round reads the feed's committed stamp H first, then every change stamped in (position, H] in batches, and
commits them to the replica together with position = H (a build from scratch commits batch by batch, see
`sync`). Rounds are cheap when nothing changed (one indexed read),
so the engine runs one before each evaluation and a background loop keeps the replica warm between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from clarion.analytics.replica import NOTHING_SYNCED, Replica, Round
from clarion.store import changes
from clarion.store.database import Database, Transaction

log = logging.getLogger("clarion.analytics")

# A batch is one JSON text held by the row store, then by Python, then staged in DuckDB: at 100,000 endpoints that
# was about 60 MB in each, the largest part of the server's peak while a million endpoints were loaded
# (docs/benchmarks.md, "Server memory"); a quarter of it costs little more per row to apply.
BATCH_ROWS = 25_000


@dataclass(frozen=True, slots=True)
class SyncResult:
    position: int
    batches: int


class ReplicaSync:
    """Brings one replica up to date with one row store; one round at a time."""

    def __init__(self, db: Database, replica: Replica, batch_rows: int = BATCH_ROWS) -> None:
        self.db = db
        self.replica = replica
        self.batch_rows = batch_rows
        self._lock = asyncio.Lock()

    async def sync(self) -> SyncResult:
        """Apply every change committed before the call; return the new position."""
        async with self._lock:
            upto, pruned = await self.db.read(lambda tx: (changes.committed_seq(tx), changes.pruned_seq(tx)))
            start = await asyncio.to_thread(self.replica.position)
            if upto == start:
                return SyncResult(start, 0)
            # The store is younger than the replica, or retention removed deletions the replica has not seen yet
            # (a replica left behind for longer than the tombstones are kept): follow it from scratch.
            if upto < start or start < pruned:
                start = NOTHING_SYNCED
            with self.replica.round() as round_:
                # A build from scratch starts from empty tables (an interrupted build leaves rows behind) and
                # commits batch by batch, so its memory stays that of one batch; no query sees the partial
                # state, because every query in this process waits for this round first.
                building = start == NOTHING_SYNCED
                if building:
                    await asyncio.to_thread(round_.reset)
                batches = await self._follow(round_, start, upto, building)
                await asyncio.to_thread(round_.set_position, upto)
            return SyncResult(upto, batches)

    async def _follow(self, round_: Round, start: int, upto: int, building: bool) -> int:
        batches = 0
        # Events first: endpoints inserted afterwards pick up their last event time from `activity`.
        feeds = (
            (changes.events_batch, round_.events),
            (changes.endpoints_batch, round_.endpoints),
            (changes.users_batch, round_.users),
            (changes.segment_members_batch, round_.segment_members),
        )
        for feed, apply in feeds:
            cursor: changes.Cursor = None
            while True:
                text, cursor = await self.db.read_long(_reader(feed, start, cursor, upto, self.batch_rows))
                if text is not None:
                    await asyncio.to_thread(apply, text)
                    batches += 1
                    if building:
                        await asyncio.to_thread(round_.commit)
                if cursor is None:
                    break
        text = await self.db.read_long(lambda tx: changes.tombstones(tx, start, upto))
        if text is not None:
            await asyncio.to_thread(round_.tombstones, text)
            batches += 1
        return batches

    async def run_forever(self, interval_seconds: float) -> None:
        """The background loop: keep the replica close behind the store between evaluations."""
        while True:
            try:
                await self.sync()
            except Exception:  # a failed round is retried whole on the next tick; the store is unaffected
                log.exception("analytics replica sync failed")
            await asyncio.sleep(interval_seconds)


Feed = Callable[[Transaction, int, changes.Cursor, int, int], tuple[str | None, changes.Cursor]]


def _reader(
    feed: Feed, since: int, cursor: changes.Cursor, upto: int, limit: int
) -> Callable[[Transaction], tuple[str | None, changes.Cursor]]:
    return lambda tx: feed(tx, since, cursor, upto, limit)
