"""Event-triggered (EVENT) campaigns: the events a PutEvents accepted are matched against the project's EVENT
campaigns once they are committed (a subscriber of EventsIngested), and each match by a sendable segment member
queues a one-endpoint batch on the campaign's running `:events` run, keyed by the event (docs/campaigns.md).

The project's EVENT campaigns are cached for a second per process; a campaign written in this process, or in
another one sharing a PostgreSQL store, drops the cache at once (a subscriber of CampaignChanged, everywhere).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime

from clarion.campaigns.definition import CampaignDefinition, CampaignState, Frequency, parse_definition
from clarion.campaigns.events import event_matches
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.runs import BATCH, events_run_key, start_run
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.domain_events import CampaignChanged, EventsIngested
from clarion.queue.work_queue import StoreQueue
from clarion.store import campaigns as store
from clarion.store.database import Database, Transaction

CACHE_SECONDS = 1.0

EventCampaigns = list[tuple[str, CampaignDefinition]]  # (campaign id, definition)


class EventTriggers:
    def __init__(self, db: Database, clock: Clock, queue: StoreQueue, members: SegmentMembers) -> None:
        self.db = db
        self.clock = clock
        self.queue = queue
        self.members = members
        self._cached: dict[str, tuple[float, EventCampaigns]] = {}  # app id -> (monotonic time read, campaigns)

    def campaign_changed(self, event: CampaignChanged) -> None:
        self._cached.pop(event.app_id, None)

    def clear(self) -> None:
        self._cached.clear()

    async def events_ingested(self, ingested: EventsIngested) -> None:
        """Queue a send per event that matches one of the project's EVENT campaigns."""
        app_id = ingested.app_id
        campaigns = await self._event_campaigns_of(app_id)
        if not campaigns:
            return
        now = self.clock.now()
        matches: dict[str, list[tuple[str, str]]] = defaultdict(list)  # campaign id -> (endpoint id, event id)
        for campaign_id, definition in campaigns:
            for item in ingested.events:
                if event_matches(definition.schedule, item.event, now):
                    matches[campaign_id].append((item.endpoint_id, item.event_id))
        definitions = dict(campaigns)
        queued = 0
        for campaign_id, found in matches.items():
            definition = definitions[campaign_id]
            members = await self.members.holds(
                app_id, definition.segment_id, definition.segment_version, [e for e, _ in found]
            )
            chosen = [(endpoint_id, event_id) for endpoint_id, event_id in found if endpoint_id in members]
            if chosen:
                await self.db.write(lambda tx, c=campaign_id, ch=chosen: self._queue_sends(tx, app_id, c, ch, now))
                queued += len(chosen)
        if queued:
            self.queue.wake()

    def _queue_sends(
        self, tx: Transaction, app_id: str, campaign_id: str, chosen: list[tuple[str, str]], now: datetime
    ) -> None:
        campaign = store.get(tx, app_id, campaign_id)
        if campaign is None:
            return
        run_key = events_run_key(campaign_id)
        definition = parse_definition(campaign.definition)
        start_run(tx, app_id, campaign_id, run_key, campaign.version, 0, definition, iso_millis(now))
        store.set_run_version(tx, run_key, campaign.version)
        for endpoint_id, event_id in chosen:
            payload = {"run": run_key, "endpoints": [endpoint_id], "event_id": event_id, "event_at": epoch_millis(now)}
            self.queue.enqueue_in(tx, BATCH, payload, project=app_id)
        store.record_planning(tx, run_key, None, len(chosen), False)

    async def _event_campaigns_of(self, app_id: str) -> EventCampaigns:
        cached = self._cached.get(app_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        rows = await self.db.read(lambda tx: store.event_campaigns(tx, app_id, CampaignState.SCHEDULED))
        found = [(row.id, parse_definition(row.definition)) for row in rows]
        found = [(campaign_id, d) for campaign_id, d in found if d.schedule.frequency == Frequency.EVENT]
        self._cached[app_id] = (time.monotonic(), found)
        return found
