"""Following the row store's change feed into the DuckDB replica.

A sync reads the feed's committed stamp H first, then takes in every change stamped in (position, H] in rounds: each
round applies the changes up to a stamp chosen so that it holds about ROUND_ROWS rows of each feed
(`changes.round_end`), in batches of BATCH_ROWS, and commits them to the replica together with its stamp as the new
position. Stamps follow commit order, so every round leaves the replica equal to the store as it was at one moment,
and a sync interrupted between rounds goes on from the last one. Rounds are cheap when nothing changed (one indexed
read), so the engine syncs before each evaluation and a background loop keeps the replica warm between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from clarion.analytics.replica import NOTHING_SYNCED, Replica, Round
from clarion.analytics.staging import JsonLines
from clarion.store import changes
from clarion.store.database import Database, Transaction

T = TypeVar("T")
log = logging.getLogger("clarion.analytics")

# A batch is staged in DuckDB whole, and each costs a pass over the tables it joins (endpoints, activity,
# engagement): at 100,000 rows a batch was about 60 MB in DuckDB (docs/benchmarks.md, "Server memory"); at 5,000 the
# CPU per row doubled.
BATCH_ROWS = 25_000
# What one round takes in, at most, per feed (plus the rest of its last stamp's rows): what a DuckDB transaction
# holds uncommitted, and how long a round keeps evaluations waiting.
ROUND_ROWS = 100_000


class ReplicaMoved(RuntimeError):
    """A round found the replica at another position than the one its sync started from."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    position: int
    batches: int


class ReplicaSync:
    """Brings one replica up to date with one row store; one sync at a time."""

    def __init__(
        self, db: Database, replica: Replica, batch_rows: int = BATCH_ROWS, round_rows: int = ROUND_ROWS
    ) -> None:
        self.db = db
        self.replica = replica
        self.batch_rows = batch_rows
        self.round_rows = round_rows
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
            batches = 0
            while start < upto:
                end = await self.db.read_long(
                    lambda tx, since=start: changes.round_end(tx, since, upto, self.round_rows)
                )
                batches += await self._round(start, end)
                start = end
            return SyncResult(upto, batches)

    async def _round(self, start: int, end: int) -> int:
        """Apply the changes stamped in (start, end] and move the position to `end`, in one DuckDB transaction.

        Every DuckDB call of the round runs on a worker thread, its BEGIN (which waits for the replica's write lock
        while retention prunes) and COMMIT (the round written out: 2-3 % of a campaign's server time) as well as its
        batches, and each is waited for to its end even when the sync is cancelled meanwhile: the ROLLBACK then
        follows the statement in flight on the round's connection, and no round is left holding the lock."""
        replica = self.replica
        round_ = await _to_the_end(replica.open_round, undo=lambda opened: replica.close_round(opened, commit=False))
        try:
            # A build from scratch starts from empty tables (an interrupted build leaves rows behind). Its first
            # round takes every row written before the feed existed (all stamped 0), however many: it commits batch
            # by batch, so its memory stays that of one batch; no query sees the partial state, because every query
            # in this process waits for the sync first.
            building = start == NOTHING_SYNCED
            if building:
                await _to_the_end(round_.reset)
            elif await _to_the_end(round_.position) != start:
                # Written behind this sync's back since it read the position: start again from what is there.
                raise ReplicaMoved(f"the replica moved from {start} during a sync")
            batches = await self._follow(round_, start, end, building)
            await _to_the_end(round_.set_position, end)
        except BaseException:
            await _to_the_end(lambda: replica.close_round(round_, commit=False))
            raise
        await _to_the_end(lambda: replica.close_round(round_, commit=True))
        return batches

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
                with JsonLines() as rows:
                    cursor = await self.db.read_long(_reader(feed, start, cursor, upto, self.batch_rows, rows.write))
                    if rows.rows:
                        await _to_the_end(apply, rows)
                        batches += 1
                        if building:
                            await _to_the_end(round_.commit)
                if cursor is None:
                    break
        with JsonLines() as rows:
            await self.db.read_long(lambda tx: changes.tombstones(tx, start, upto, rows.write))
            if rows.rows:
                await _to_the_end(round_.tombstones, rows)
                batches += 1
        return batches

    async def run_forever(self, interval_seconds: float) -> None:
        """The background loop: keep the replica close behind the store between evaluations."""
        while True:
            try:
                await self.sync()
            except Exception:  # a failed round is retried on the next tick; the store is unaffected
                log.exception("analytics replica sync failed")
            await asyncio.sleep(interval_seconds)


async def _to_the_end(call: Callable[..., T], *args: object, undo: Callable[[T], None] | None = None) -> T:
    """`call(*args)` on a worker thread, awaited to its end even when this task is cancelled meanwhile; the
    cancellation is raised after it, once `undo`, on a worker thread too, has put back what it did."""
    running = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await _finished(running)
        if undo is not None and running.exception() is None:
            await _finished(asyncio.ensure_future(asyncio.to_thread(undo, running.result())))
        raise


async def _finished(running: asyncio.Future[Any]) -> None:
    """Waits for `running` to end, however often this task is cancelled meanwhile."""
    while not running.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([running])


Feed = Callable[[Transaction, int, changes.Cursor, int, int, changes.Write], changes.Cursor]


def _reader(
    feed: Feed, since: int, cursor: changes.Cursor, upto: int, limit: int, write: changes.Write
) -> Callable[[Transaction], changes.Cursor]:
    return lambda tx: feed(tx, since, cursor, upto, limit, write)
