"""The campaign engine: from a due schedule to messages handed to providers, exactly once per endpoint and run.

The work is split so that every step is a committed, resumable unit on the durable queue:

1. **Scheduler** (`tick`): a campaign whose `next_run_at` is due gets a run (`campaign_runs`, keyed by campaign and
   scheduled time, so a repeated pass starts nothing twice), one activity per treatment, its following run time,
   and a `campaign.plan` item — all in one transaction.
2. **Planning** (`plan`): the segment's sendable members, read in chunks in endpoint-key order; each chunk becomes
   batches of `batch_size` endpoints, queued with their send time (local-time campaigns: one send time per time
   zone), in the same transaction that advances the run's cursor. A crash resumes after the last committed chunk.
3. **Delivery** (`deliver_batch`): holdout and treatments (by CohortId), Daily/Total limits, quiet time and
   MaximumDuration decide who is targeted; the send pipeline renders and sends, logging each message under a
   request key derived from the run and the endpoint, so a batch delivered again after a crash re-sends only what
   was not logged — the messages that were in flight at the crash, counted as `resent` (possible duplicates). The
   batch's tallies and its removal from the queue commit together.
4. **Completion**: the last batch of a planned run completes its activities and moves the campaign to COMPLETED or
   PENDING_NEXT_RUN.

EVENT campaigns have no schedule runs: `on_events` (called after PutEvents commits) queues a one-endpoint batch per
matching event on the campaign's `:events` run, whose tallies accumulate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from clarion.campaigns import schedule as timing
from clarion.campaigns.config import CampaignSettings
from clarion.campaigns.content import direct_configuration
from clarion.campaigns.events import event_matches
from clarion.campaigns.hooks import CampaignHooks, HookFailed
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.treatments import HOLDOUT, Allocation
from clarion.channels.delivery import DeliveryStatus
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.context import CallContext
from clarion.endpoints.service import endpoint_key, user_attributes_by_id
from clarion.errors import NotFound
from clarion.logs import get_logger
from clarion.messages.delivery import Campaign, Messages, Target, load_templates
from clarion.messages.inapp import store_in_app_message
from clarion.messages.rendering import MessageBuilder
from clarion.projects.service import stored_settings
from clarion.queue.work_queue import Lease, StoreQueue
from clarion.store import campaigns as store
from clarion.store import endpoints as endpoint_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.versions import parse_version

PLAN, BATCH = "campaign.plan", "campaign.batch"
EXECUTING, PENDING_NEXT_RUN, COMPLETED, PAUSED = "EXECUTING", "PENDING_NEXT_RUN", "COMPLETED", "PAUSED"
DELETED = "DELETED"
PAUSE_RECHECK = timedelta(seconds=5)

log = get_logger("clarion.campaigns")


def run_key_of(campaign_id: str, run_at_ms: int) -> str:
    return f"{campaign_id}:{run_at_ms}"


def events_run_key(campaign_id: str) -> str:
    return f"{campaign_id}:events"


class RateLimiter:
    """MessagesPerSecond for one campaign in this process: a token bucket refilled continuously."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.tokens = float(per_second)
        self.updated = time.monotonic()

    async def take(self, count: int) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.per_second, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            if self.tokens >= min(count, self.per_second):
                self.tokens -= count
                return
            await asyncio.sleep((min(count, self.per_second) - self.tokens) / self.per_second)


class CampaignEngine:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        queue: StoreQueue,
        messages: Messages,
        members: SegmentMembers,
        settings: CampaignSettings,
        hooks: CampaignHooks,
    ) -> None:
        self.db = db
        self.clock = clock
        self.queue = queue
        self.messages = messages
        self.members = members
        self.settings = settings
        self.hooks = hooks
        self._wakeup = asyncio.Event()
        self._limiters: dict[str, RateLimiter] = {}
        self._event_campaigns: dict[str, tuple[float, list[tuple[str, dict[str, Any]]]]] = {}

    def handlers(self) -> dict[str, Any]:
        return {PLAN: self.plan, BATCH: self.deliver_batch}

    def changed(self, app_id: str) -> None:
        """A campaign of this project was written: look at schedules now and forget cached event filters."""
        self._event_campaigns.pop(app_id, None)
        self._wakeup.set()

    # 1. Scheduler ----------------------------------------------------------------------------------------------

    async def run_scheduler(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a failing pass must not stop scheduling; the next pass retries
                log.exception("campaign scheduler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.settings.poll_seconds)
            self._wakeup.clear()

    async def tick(self) -> int:
        """Start every due run; the number started."""
        now = self.clock.now()
        due = await self.db.read(lambda tx: store.due(tx, epoch_millis(now), 50))
        started = 0
        for app_id, campaign_id in due:
            started += await self.db.write(lambda tx, a=app_id, c=campaign_id: self._start_run(tx, a, c, now))
        if started:
            self.queue.wake()
        return started

    def _start_run(self, tx: Transaction, app_id: str, campaign_id: str, now: datetime) -> int:
        campaign = store.get(tx, app_id, campaign_id, lock=True)
        next_at = store.next_run_at(tx, app_id, campaign_id)
        if campaign is None or campaign.state not in ("SCHEDULED", PENDING_NEXT_RUN) or next_at is None:
            return 0
        if next_at > epoch_millis(now):
            return 0
        definition = orjson.loads(campaign.definition)
        schedule = definition["Schedule"]
        lead = timing.lead(schedule)
        nominal = datetime.fromtimestamp(next_at / 1000, tz=now.tzinfo) + lead
        run_key = run_key_of(campaign_id, epoch_millis(nominal))
        if store.insert_run(tx, run_key, app_id, campaign_id, campaign.version, epoch_millis(nominal)):
            self._add_activities(tx, app_id, campaign_id, run_key, definition, iso_millis(nominal))
            self.queue.enqueue_in(tx, PLAN, {"run": run_key})
        store.set_next_run(tx, app_id, campaign_id, timing.following_run_ms(schedule, nominal))
        store.set_state(tx, app_id, campaign_id, EXECUTING)
        return 1

    @staticmethod
    def _add_activities(
        tx: Transaction, app_id: str, campaign_id: str, run_key: str, definition: Mapping[str, Any], scheduled: str
    ) -> None:
        treatments = ["0"] + [str(i) for i in range(1, len(definition.get("AdditionalTreatments") or []) + 1)]
        for treatment in treatments:
            store.insert_activity(tx, app_id, campaign_id, run_key, uuid.uuid4().hex, treatment, scheduled, "PENDING")

    # 2. Planning -----------------------------------------------------------------------------------------------

    async def plan(self, lease: Lease) -> None:
        """Stream the segment's members and queue them in batches, committing a cursor with every chunk."""
        run_key = lease.payload["run"]
        run, campaign = await self.db.read(lambda tx: self._run_and_campaign(tx, run_key))
        if run is None or campaign is None or run.planned:
            return
        definition = orjson.loads(campaign.definition)
        cursor = run.planned_after  # the key of the last member already planned (a resumed plan skips up to it)
        # With a channel order, a member that cannot be messaged itself may still stand for a user who can be.
        pages = self.members.pages(
            run.app_id,
            definition["SegmentId"],
            definition.get("SegmentVersion"),
            self.settings.plan_chunk,
            sendable_only="ClarionChannelOrder" not in definition,
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
                await self.db.write(
                    lambda tx, b=batches, c=cursor: self._commit_plan(tx, lease, run_key, b, c, False, 0)
                )
                self.queue.wake()
        except NotFound:  # the segment was deleted: the campaign cannot run (Pinpoint: DELETED)
            await self.db.write(lambda tx: self._segment_gone(tx, lease, run))
            return
        await self.db.write(lambda tx: self._commit_plan(tx, lease, run_key, [], cursor, True, len(zones)))

    def _segment_gone(self, tx: Transaction, lease: Lease, run: store.RunRow) -> None:
        self.queue.hold_in(tx, lease)
        store.record_planning(tx, run.run_key, run.planned_after, 0, True)
        store.finish_activities(tx, run.run_key, COMPLETED, "FAIL", iso_millis(self.clock.now()))
        store.set_next_run(tx, run.app_id, run.campaign_id, None)
        store.set_state(tx, run.app_id, run.campaign_id, DELETED)

    def _commit_plan(
        self,
        tx: Transaction,
        lease: Lease,
        run_key: str,
        batches: list[tuple[datetime, list[str]]],
        cursor: str | None,
        done: bool,
        zones: int,
    ) -> None:
        self.queue.hold_in(tx, lease)
        for due_at, endpoint_ids in batches:
            payload = {"run": run_key, "endpoints": endpoint_ids, "due": epoch_millis(due_at)}
            self.queue.enqueue_in(tx, BATCH, payload, due_at=due_at)
        store.record_planning(tx, run_key, cursor, len(batches), done)
        if done:
            store.set_timezones(tx, run_key, zones, 0)
            self._complete_if_finished(tx, run_key)

    @staticmethod
    def _run_and_campaign(tx: Transaction, run_key: str) -> tuple[store.RunRow | None, store.CampaignRow | None]:
        run = store.get_run(tx, run_key)
        if run is None:
            return None, None
        return run, store.get_version(tx, run.app_id, run.campaign_id, run.campaign_version)

    async def _batches(
        self, run: store.RunRow, definition: Mapping[str, Any], endpoint_ids: list[str]
    ) -> list[tuple[datetime, list[str]]]:
        """Members grouped by send time (one group unless local time), cut into batches."""
        schedule = definition["Schedule"]
        run_at = datetime.fromtimestamp(run.run_at / 1000, tz=self.clock.now().tzinfo)
        groups: dict[datetime, list[str]] = defaultdict(list)
        if schedule.get("IsLocalTime"):
            zones = await self.db.read(lambda tx: _time_zones(tx, run.app_id, endpoint_ids))
            for endpoint_id in endpoint_ids:
                send_at = timing.endpoint_send_time(run_at, True, schedule.get("Timezone"), zones.get(endpoint_id))
                groups[send_at].append(endpoint_id)
        else:
            groups[run_at] = endpoint_ids
        size = self.settings.batch_size
        return [
            (due_at, ids[start : start + size])
            for due_at, ids in sorted(groups.items())
            for start in range(0, len(ids), size)
        ]

    # 3. Delivery -----------------------------------------------------------------------------------------------

    async def deliver_batch(self, lease: Lease) -> None:
        run_key: str = lease.payload["run"]
        endpoint_ids: list[str] = lease.payload["endpoints"]
        now = self.clock.now()
        run, campaign = await self.db.read(lambda tx: self._run_and_campaign(tx, run_key))
        current = await self.db.read(lambda tx: store.get(tx, run.app_id, run.campaign_id)) if run else None
        if run is None or campaign is None or current is None:
            return  # the campaign was deleted: nothing left to send for it
        if current.state == PAUSED:
            await self.db.write(lambda tx: self._postpone(tx, lease, now + PAUSE_RECHECK))
            return
        definition = orjson.loads(campaign.definition)
        event_at = lease.payload.get("event_at")
        expired = event_at is not None and epoch_millis(now) - event_at > self.settings.event_expiry_seconds * 1000
        tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        retries: list[tuple[str, list[str], int]] = []
        if expired:
            tally["0"]["ExpiredEndpoints"] += len(endpoint_ids)
        else:
            retries = await self._send(lease, run, definition, endpoint_ids, now, tally)

        def commit(tx: Transaction) -> None:
            self.queue.ack_in(tx, lease)
            for slot, ids, number in retries:  # backoff 2, 4, 8... seconds, the batch's other facts kept
                payload = {**lease.payload, "endpoints": ids, "slot": slot, "retry": number}
                self.queue.enqueue_in(tx, BATCH, payload, due_at=now + timedelta(seconds=2**number))
                tally[slot]["RetriedEndpoints"] += len(ids)
            store.add_pending(tx, run_key, len(retries))
            store.finish_batch(tx, run_key, sum(t.pop("Resent", 0) for t in tally.values()))
            activities = {treatment: metrics for _, treatment, metrics in store.activities_of_run(tx, run_key)}
            for treatment, counts in tally.items():
                if treatment not in activities:
                    continue
                metrics = orjson.loads(activities[treatment])
                for name, value in counts.items():
                    if name not in ("Targeted", "Successful"):
                        metrics[name] = str(int(metrics.get(name, "0")) + value)
                store.add_to_activity(
                    tx,
                    run_key,
                    treatment,
                    counts.get("Targeted", 0),
                    counts.get("Successful", 0),
                    orjson.dumps(metrics).decode(),
                    iso_millis(now),
                )
            self._complete_if_finished(tx, run_key)

        await self.db.write(commit)

    def _postpone(self, tx: Transaction, lease: Lease, until: datetime) -> None:
        """A paused campaign's batch waits: the same work, queued again for later, replacing this item."""
        self.queue.ack_in(tx, lease)
        self.queue.enqueue_in(tx, BATCH, lease.payload, due_at=until)

    async def _send(
        self,
        lease: Lease,
        run: store.RunRow,
        definition: Mapping[str, Any],
        endpoint_ids: list[str],
        now: datetime,
        tally: dict[str, dict[str, int]],
    ) -> list[tuple[str, list[str], int]]:
        """Send one batch; the (treatment, endpoint ids, retry number) to try again (THROTTLED, TEMPORARY_FAILURE)."""
        app_id, campaign_id = run.app_id, run.campaign_id
        retries: list[tuple[str, list[str], int]] = []
        defaults = await self.db.read(lambda tx: stored_settings(tx, app_id))
        schedule = definition["Schedule"]
        # The project's ApplicationSettings fill what the campaign leaves unset (read when each batch is sent).
        limits = {**(defaults.get("Limits") or {}), **(definition.get("Limits") or {})}
        quiet = schedule.get("QuietTime") or defaults.get("QuietTime") or {}
        hook = definition.get("Hook") or defaults.get("CampaignHook") or {}
        treatments = definition.get("AdditionalTreatments") or []
        allocation = Allocation.of(
            campaign_id, definition.get("HoldoutPercent", 0), [t["SizePercent"] for t in treatments]
        )
        maximum = limits.get("MaximumDuration")
        started = lease.payload.get("due") or lease.payload.get("event_at") or run.run_at
        if maximum and epoch_millis(now) > started + maximum * 1000:
            tally["0"]["ExpiredEndpoints"] += len(endpoint_ids)
            return retries
        rows = await self.db.read(lambda tx: endpoint_store.fetch(tx, app_id, [endpoint_key(e) for e in endpoint_ids]))
        if definition.get("ClarionChannelOrder"):
            rows = await self._people(app_id, definition, rows)

        def read(tx: Transaction) -> tuple[Any, Any, Any, Any, Any]:
            users = user_attributes_by_id(tx, app_id, list(rows.values()))
            ids = [row.id for row in rows.values()]
            daily = store.messages_per_endpoint(tx, app_id, campaign_id, ids, iso_millis(now - timedelta(days=1)))
            total = store.messages_per_endpoint(tx, app_id, campaign_id, ids, None)
            templates = {
                treatment: _templates(tx, config.get("TemplateConfiguration") or {})
                for treatment, config in _treatment_configs(definition).items()
            }
            return users, daily, total, templates, store.activity_ids(tx, run.run_key)

        users, daily, total, templates, activity_ids = await self.db.read(read)
        # Quiet time judges the time the message was scheduled for, so a late batch is judged like a timely one.
        send_at = datetime.fromtimestamp(started / 1000, tz=now.tzinfo) if lease.payload.get("due") else now
        groups: dict[str, list[Any]] = defaultdict(list)
        if "slot" in lease.payload:  # a retry: these endpoints passed holdout, limits, quiet time and hooks already
            groups[lease.payload["slot"]] = list(rows.values())
            rows = {}
        for row in rows.values():
            slot = allocation.slot(row.cohort_id)
            if slot == HOLDOUT:
                tally["0"]["HoldoutEndpoints"] += 1
                continue
            if (limits.get("Daily") and daily.get(row.id, 0) >= limits["Daily"]) or (
                limits.get("Total") and total.get(row.id, 0) >= limits["Total"]
            ):
                tally[slot]["LimitSkippedEndpoints"] += 1
                continue
            zone = orjson.loads(row.doc).get("Demographic", {}).get("Timezone")
            if quiet.get("Start") and timing.in_quiet_time(send_at, quiet["Start"], quiet["End"], zone):
                tally[slot]["QuietTimeSkippedEndpoints"] += 1
                continue
            groups[slot].append(row)
        ctx = CallContext(request_id=run.run_key, region="", account_id="", now=now)
        trace = run.run_key if "event_id" not in lease.payload else f"{run.run_key}:{lease.payload['event_id']}"
        for slot, slot_rows in groups.items():
            config = _treatment_configs(definition)[slot]
            event = {
                "MessageConfiguration": config.get("MessageConfiguration") or {},
                "ApplicationId": app_id,
                "CampaignId": campaign_id,
                "TreatmentId": slot,
                "ActivityId": activity_ids.get(slot, ""),
                "ScheduledTime": iso_millis(send_at),
            }
            targets = [self.messages.endpoint_target(app_id, row.id, row, {}, users, ctx) for row in slot_rows]
            if hook.get("Mode") in ("FILTER", "DELIVERY") and "slot" not in lease.payload:
                event["Endpoints"] = {t.endpoint_id: t.variables for t in targets if t.endpoint_id}
                targets = await self._through_hook(hook, event, targets, tally[slot])
                if targets is None:
                    continue
            if _is_in_app(definition, config):
                await self._leave_in_app(app_id, definition, config, templates[slot], event, targets, now)
                tally[slot]["Targeted"] += len(targets)
                tally[slot]["Successful"] += len(targets)
                continue
            custom = definition.get("CustomDeliveryConfiguration") or config.get("CustomDeliveryConfiguration")
            if custom:
                _hand_to_custom_channel(targets, custom)
            if limits.get("MessagesPerSecond"):
                limiter = self._limiters.setdefault(campaign_id, RateLimiter(limits["MessagesPerSecond"]))
                await limiter.take(len(targets))
            builder = MessageBuilder(direct_configuration(config.get("MessageConfiguration") or {}), templates[slot])
            context = {k: str(v) for k, v in event.items() if k != "MessageConfiguration" and k != "Endpoints"}
            retry = lease.payload.get("retry", 0)
            outcome = await self.messages.deliver(
                ctx,
                app_id,
                targets,
                builder,
                context,
                trace_id=f"{trace}#retry{retry}" if retry else trace,
                campaign=Campaign(campaign_id, slot),
            )
            if not retry:
                tally[slot]["Targeted"] += len(targets)
            tally[slot]["Successful"] += sum(
                1 for r in outcome.results.values() if r["DeliveryStatus"] == DeliveryStatus.SUCCESSFUL
            )
            if lease.attempts > 1:
                tally[slot]["Resent"] += outcome.sent
            again = [
                t.endpoint_id
                for t in targets
                if t.endpoint_id and DeliveryStatus(outcome.results[t.message_id]["DeliveryStatus"]).retryable
            ]
            if again and retry < self.settings.max_retries:
                retries.append((slot, again, retry + 1))
            elif again:
                tally[slot]["GaveUpEndpoints"] += len(again)
        return retries

    async def _through_hook(
        self, hook: Mapping[str, Any], event: dict[str, Any], targets: list[Target], counts: dict[str, int]
    ) -> list[Target] | None:
        """FILTER: the targets the hook kept, with the endpoint data it returned. DELIVERY: None (the hook sent)."""
        try:
            if hook["Mode"] == "DELIVERY":
                await self.hooks.call(hook, event)
                counts["Targeted"] += len(targets)
                counts["Successful"] += len(targets)
                return None
            kept = await self.hooks.filter(hook, event)
        except HookFailed as error:
            log.warning("campaign hook failed", campaign=event["CampaignId"], error=str(error))
            counts["HookFailedEndpoints"] += len(targets)
            return None
        counts["HookFilteredEndpoints"] += sum(1 for t in targets if t.endpoint_id not in kept)
        for target in targets:
            if target.endpoint_id in kept:
                target.variables = {**target.variables, **kept[target.endpoint_id]}
        return [target for target in targets if target.endpoint_id in kept]

    async def _leave_in_app(
        self,
        app_id: str,
        definition: Mapping[str, Any],
        config: Mapping[str, Any],
        template: Mapping[str, Any],
        event: Mapping[str, Any],
        targets: list[Target],
        now: datetime,
    ) -> None:
        """An in-app campaign stores its message for each endpoint; the app fetches it with GetInAppMessages."""
        schedule, limits = definition["Schedule"], definition.get("Limits") or {}
        message = (config.get("MessageConfiguration") or {}).get("InAppMessage") or {
            member: template[member]
            for member in ("Content", "CustomConfig", "Layout")
            if member in template.get("INAPP", {})
        }
        document = {
            "CampaignId": event["CampaignId"],
            "TreatmentId": event["TreatmentId"],
            "Priority": definition.get("Priority"),
            "DailyCap": limits.get("Daily"),
            "SessionCap": limits.get("Session"),
            "TotalCap": limits.get("Total"),
            "InAppMessage": message,
            "Schedule": {
                key: value
                for key, value in (
                    ("EndDate", schedule.get("EndTime")),
                    ("EventFilter", schedule.get("EventFilter")),
                    ("QuietTime", schedule.get("QuietTime")),
                )
                if value
            },
        }
        ids = [target.endpoint_id for target in targets if target.endpoint_id]
        await store_in_app_message(self.db, app_id, ids, document, now)

    async def _people(self, app_id: str, definition: Mapping[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
        """ClarionChannelOrder: one message per person, on the first channel of the order they can receive.

        A person is a user (every endpoint with the same User.UserId) or an endpoint without a user. Of a user's
        member endpoints, only the first in key order speaks for the user, so a user whose endpoints fall in
        different batches is still reached once; the message goes to the user's best sendable endpoint, member
        of the segment or not (the push endpoint went quiet, the email address still works).
        """
        rank = {channel: position for position, channel in enumerate(definition["ClarionChannelOrder"])}
        user_ids = sorted({row.user_id for row in rows.values() if row.user_id})
        by_user = await self.db.read(lambda tx: endpoint_store.of_users(tx, app_id, user_ids))
        members = await self.members.holds(
            app_id,
            definition["SegmentId"],
            definition.get("SegmentVersion"),
            [endpoint.id for endpoints in by_user.values() for endpoint in endpoints],
            sendable_only=False,
        )

        def reachable(endpoint: Any) -> bool:
            return bool(
                endpoint.channel_type in rank
                and endpoint.address
                and endpoint.endpoint_status == "ACTIVE"
                and endpoint.opt_out == "NONE"
            )

        chosen: dict[str, Any] = {}
        for key, row in rows.items():
            if not row.user_id:
                if reachable(row):
                    chosen[key] = row
                continue
            own = by_user.get(row.user_id, [])
            speaker = min((e.endpoint_key for e in own if e.id in members), default=key)
            candidates = [e for e in own if reachable(e)]
            if speaker == key and candidates:
                best = min(candidates, key=lambda e: (rank[e.channel_type], e.endpoint_key))
                chosen[best.endpoint_key] = best
        return chosen

    # 4. Completion ---------------------------------------------------------------------------------------------

    def _complete_if_finished(self, tx: Transaction, run_key: str) -> None:
        run = store.get_run(tx, run_key, lock=True)
        if run is None or not run.planned or run.pending_batches > 0:
            return
        now = iso_millis(self.clock.now())
        metrics = {"PossibleDuplicates": str(run.resent)} if run.resent else {}
        store.finish_activities(tx, run_key, COMPLETED, "SUCCESS", now)
        if metrics:
            for activity_id, _treatment, raw in store.activities_of_run(tx, run_key):
                merged = orjson.dumps({**orjson.loads(raw), **metrics}).decode()
                store.set_activity_metrics(tx, run_key, activity_id, merged)
        campaign = store.get(tx, run.app_id, run.campaign_id, lock=True)
        if campaign is not None and campaign.state == EXECUTING:
            following = store.next_run_at(tx, run.app_id, run.campaign_id)
            store.set_state(tx, run.app_id, run.campaign_id, PENDING_NEXT_RUN if following is not None else COMPLETED)

    # Event-triggered campaigns ---------------------------------------------------------------------------------

    async def on_events(self, app_id: str, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> int:
        """After PutEvents committed (endpoint id, event id, event): queue a send per matching EVENT campaign."""
        campaigns = await self._event_campaigns_of(app_id)
        if not campaigns:
            return 0
        now = self.clock.now()
        matches: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for campaign_id, definition in campaigns:
            for endpoint_id, event_id, event in events:
                if event_matches(definition["Schedule"], event, now):
                    matches[campaign_id].append((endpoint_id, event_id))
        queued = 0
        for campaign_id, found in matches.items():
            definition = dict(campaigns)[campaign_id]
            members = await self.members.holds(
                app_id, definition["SegmentId"], definition.get("SegmentVersion"), [e for e, _ in found]
            )
            chosen = [(e, event_id) for e, event_id in found if e in members]
            if chosen:
                await self.db.write(
                    lambda tx, c=campaign_id, ch=chosen: self._queue_event_sends(tx, app_id, c, ch, now)
                )
                queued += len(chosen)
        if queued:
            self.queue.wake()
        return queued

    def _queue_event_sends(
        self, tx: Transaction, app_id: str, campaign_id: str, chosen: list[tuple[str, str]], now: datetime
    ) -> None:
        campaign = store.get(tx, app_id, campaign_id)
        if campaign is None:
            return
        run_key = events_run_key(campaign_id)
        if store.insert_run(tx, run_key, app_id, campaign_id, campaign.version, 0):
            self._add_activities(tx, app_id, campaign_id, run_key, orjson.loads(campaign.definition), iso_millis(now))
        store.set_run_version(tx, run_key, campaign.version)
        for endpoint_id, event_id in chosen:
            payload = {"run": run_key, "endpoints": [endpoint_id], "event_id": event_id, "event_at": epoch_millis(now)}
            self.queue.enqueue_in(tx, BATCH, payload)
        store.record_planning(tx, run_key, None, len(chosen), False)

    async def _event_campaigns_of(self, app_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The project's active EVENT campaigns, cached for a second (another process may have written one)."""
        cached = self._event_campaigns.get(app_id)
        if cached is not None and time.monotonic() - cached[0] < 1.0:
            return cached[1]
        rows = await self.db.read(lambda tx: store.event_campaigns(tx, app_id))
        found = [(row.id, orjson.loads(row.definition)) for row in rows]
        found = [(cid, d) for cid, d in found if d["Schedule"].get("Frequency") == "EVENT"]
        self._event_campaigns[app_id] = (time.monotonic(), found)
        return found


def _is_in_app(definition: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    if definition["Schedule"].get("Frequency") == "IN_APP_EVENT":
        return True
    return bool((config.get("MessageConfiguration") or {}).get("InAppMessage"))


def _hand_to_custom_channel(targets: list[Target], custom: Mapping[str, Any]) -> None:
    """CustomDeliveryConfiguration: endpoints of the listed types go to the webhook instead of their channel."""
    types = set(custom.get("EndpointTypes") or [])
    for target in targets:
        if not types or target.channel in types:
            target.channel, target.address = "CUSTOM", custom["DeliveryUri"]


def _templates(tx: Transaction, config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The templates a treatment names, by family; an in-app template's body under INAPP."""
    in_app = config.get("InAppTemplate")
    found = load_templates(tx, {k: v for k, v in config.items() if k != "InAppTemplate"})
    if in_app:
        row = (
            template_store.get_version(tx, in_app["Name"], "INAPP", parse_version(in_app["Version"]))
            if in_app.get("Version")
            else template_store.get(tx, in_app["Name"], "INAPP")
        )
        if row is not None:
            found["INAPP"] = orjson.loads(row.body)
    return found


def _treatment_configs(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Treatment id -> the members that say what it sends; a treatment without its own message uses the default."""
    configs: dict[str, Mapping[str, Any]] = {"0": definition}
    for index, treatment in enumerate(definition.get("AdditionalTreatments") or [], start=1):
        own = any(treatment.get(m) for m in ("MessageConfiguration", "TemplateConfiguration"))
        configs[str(index)] = treatment if own else definition
    return configs


def _time_zones(tx: Transaction, app_id: str, endpoint_ids: list[str]) -> dict[str, str | None]:
    rows = endpoint_store.fetch(tx, app_id, [endpoint_key(e) for e in endpoint_ids])
    return {row.id: orjson.loads(row.doc).get("Demographic", {}).get("Timezone") for row in rows.values()}
