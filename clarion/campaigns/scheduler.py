"""The campaign scheduler: a campaign whose next run is due gets a run, one activity per treatment, its following
run time and a planning item on the queue, all in one transaction (docs/campaigns.md, How a campaign runs).

It looks every `campaigns.poll_seconds`, and at once when a campaign of this process is written (it subscribes to
CampaignChanged). Several processes may run it: runs are keyed, so a due run starts once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from clarion.campaigns import schedule as timing
from clarion.campaigns.config import CampaignSettings
from clarion.campaigns.definition import RUNNABLE, CampaignState, parse_definition
from clarion.campaigns.runs import PLAN, run_key_of, set_state, start_run
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.domain_events import CampaignChanged
from clarion.logs import get_logger
from clarion.queue.passes import run_passes
from clarion.queue.work_queue import StoreQueue
from clarion.store import campaigns as store
from clarion.store.database import Database, Transaction

DUE_PER_PASS = 50

log = get_logger("clarion.campaigns")


class CampaignScheduler:
    def __init__(self, db: Database, clock: Clock, queue: StoreQueue, settings: CampaignSettings) -> None:
        self.db = db
        self.clock = clock
        self.queue = queue
        self.settings = settings
        self._wakeup = asyncio.Event()

    def campaign_changed(self, _: CampaignChanged) -> None:
        """A campaign was written: look at schedules now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Forever (until cancelled): the loop `Services.background` runs."""
        await run_passes(self.tick, self._wakeup, self.settings.poll_seconds, log, "campaign scheduler pass failed")

    async def tick(self) -> int:
        """Start every due run; the number started."""
        now = self.clock.now()
        due = await self.db.read(lambda tx: store.due(tx, epoch_millis(now), DUE_PER_PASS, RUNNABLE))
        started = 0
        for app_id, campaign_id in due:
            started += await self.db.write(lambda tx, a=app_id, c=campaign_id: self._start_run(tx, a, c, now))
        if started:
            self.queue.wake()
        return started

    def _start_run(self, tx: Transaction, app_id: str, campaign_id: str, now: datetime) -> int:
        campaign = store.get(tx, app_id, campaign_id, lock=True)
        next_at = store.next_run_at(tx, app_id, campaign_id)
        if campaign is None or campaign.state not in RUNNABLE or next_at is None or next_at > epoch_millis(now):
            return 0
        definition = parse_definition(campaign.definition)
        nominal = datetime.fromtimestamp(next_at / 1000, tz=now.tzinfo) + timing.lead(definition.schedule)
        run_key = run_key_of(campaign_id, epoch_millis(nominal))
        run_at = epoch_millis(nominal)
        if start_run(tx, app_id, campaign_id, run_key, campaign.version, run_at, definition, iso_millis(nominal)):
            self.queue.enqueue_in(tx, PLAN, {"run": run_key}, project=app_id)
        store.set_next_run(tx, app_id, campaign_id, timing.following_run_ms(definition.schedule, nominal))
        set_state(tx, app_id, campaign_id, CampaignState.EXECUTING)
        return 1
