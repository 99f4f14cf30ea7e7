"""Planning a campaign run: the segment's members, read in endpoint-key order, become delivery batches on the queue.

Each chunk of `campaigns.plan_chunk` members is cut into batches of `campaigns.batch_size`, queued with their send
time (local-time campaigns: one send time per time zone), in the same transaction that advances the run's cursor,
so a crash resumes after the last committed chunk. The last commit marks the run planned and acks the item.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from clarion.campaigns import schedule as timing
from clarion.campaigns.completion import complete_if_finished, fail_for_lost_segment
from clarion.campaigns.config import CampaignSettings
from clarion.campaigns.definition import CampaignDefinition
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.runs import BATCH, read_run
from clarion.clock import Clock, epoch_millis
from clarion.endpoints.service import endpoint_key, endpoint_timezone
from clarion.errors import NotFound
from clarion.queue.work_queue import Lease, StoreQueue
from clarion.store import campaigns as store
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database, Transaction

Batches = list[tuple[datetime, list[str]]]  # (send time, endpoint ids)


class CampaignPlanner:
    def __init__(
        self, db: Database, clock: Clock, queue: StoreQueue, members: SegmentMembers, settings: CampaignSettings
    ) -> None:
        self.db = db
        self.clock = clock
        self.queue = queue
        self.members = members
        self.settings = settings

    async def plan(self, lease: Lease) -> None:
        """Stream the segment's members and queue them in batches, committing a cursor with every chunk."""
        run_key = lease.payload["run"]
        found = await self.db.read(lambda tx: read_run(tx, run_key))
        if found is None or found[0].planned:
            return
        run, definition = found
        cursor = run.planned_after  # the key of the last member already planned (a resumed plan skips up to it)
        # With a channel order, a member that cannot be messaged itself may still stand for a user who can be.
        pages = self.members.pages(
            run.app_id,
            definition.segment_id,
            definition.segment_version,
            self.settings.plan_chunk,
            sendable_only=not definition.clarion_channel_order,
        )
        zones: set[datetime] = set()
        try:
            async for page in pages:
                ids = [e for e in page if cursor is None or endpoint_key(e) > cursor]
                if not ids:
                    continue
                batches = await self._batches(run, definition, ids)
                zones.update(due_at for due_at, _ in batches)
                cursor = endpoint_key(ids[-1])
                await self.db.write(lambda tx, b=batches, c=cursor: self._commit(tx, lease, run_key, b, c))
                self.queue.wake()
        except NotFound:  # the segment was deleted: the campaign cannot run
            await self.db.write(lambda tx: self._segment_gone(tx, lease, run))
            return
        await self.db.write(lambda tx: self._commit(tx, lease, run_key, [], cursor, zones=len(zones)))

    def _segment_gone(self, tx: Transaction, lease: Lease, run: store.RunRow) -> None:
        self.queue.ack_in(tx, lease)
        fail_for_lost_segment(tx, run, self.clock.now())

    def _commit(
        self,
        tx: Transaction,
        lease: Lease,
        run_key: str,
        batches: Batches,
        cursor: str | None,
        zones: int | None = None,  # given with the last commit: the run is planned
    ) -> None:
        done = zones is not None
        if done:
            self.queue.ack_in(tx, lease)
        else:
            self.queue.hold_in(tx, lease)
        for due_at, endpoint_ids in batches:
            payload = {"run": run_key, "endpoints": endpoint_ids, "due": epoch_millis(due_at)}
            self.queue.enqueue_in(tx, BATCH, payload, due_at=due_at, project=lease.project)
        store.record_planning(tx, run_key, cursor, len(batches), done)
        if zones is not None:
            store.set_timezones(tx, run_key, zones, 0)
            complete_if_finished(tx, run_key, self.clock.now())

    async def _batches(self, run: store.RunRow, definition: CampaignDefinition, endpoint_ids: list[str]) -> Batches:
        """Members grouped by send time (one group unless local time), cut into batches."""
        schedule = definition.schedule
        run_at = datetime.fromtimestamp(run.run_at / 1000, tz=self.clock.now().tzinfo)
        groups: dict[datetime, list[str]] = defaultdict(list)
        if schedule.is_local_time:
            zones = await self.db.read(lambda tx: _time_zones(tx, run.app_id, endpoint_ids))
            for endpoint_id in endpoint_ids:
                send_at = timing.endpoint_send_time(run_at, True, schedule.timezone, zones.get(endpoint_id))
                groups[send_at].append(endpoint_id)
        else:
            groups[run_at] = endpoint_ids
        size = self.settings.batch_size
        return [
            (due_at, ids[start : start + size])
            for due_at, ids in sorted(groups.items())
            for start in range(0, len(ids), size)
        ]


def _time_zones(tx: Transaction, app_id: str, endpoint_ids: list[str]) -> dict[str, str | None]:
    rows = endpoint_store.fetch(tx, app_id, [endpoint_key(e) for e in endpoint_ids])
    return {row.id: endpoint_timezone(row) for row in rows.values()}
