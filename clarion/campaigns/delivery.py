"""Delivering one campaign batch through the one send path (clarion/messages/delivery.py).

For a batch (a `campaign.batch` queue item):

1. A paused campaign's batch is queued again for later; an event-triggered one older than
   `campaigns.event_expiry_seconds`, or a batch past the campaign's MaximumDuration, is dropped (ExpiredEndpoints).
2. Its endpoints are read (with ClarionChannelOrder: one per person, clarion/campaigns/channel_order.py) and the
   send policy splits them into treatments and skips the holdout, those at their Daily/Total limit and those in
   quiet time; the project's ApplicationSettings fill what the campaign leaves unset, read at every batch.
3. Per treatment: a FILTER hook chooses and personalises (a DELIVERY hook sends itself); an in-app campaign leaves
   its message; the others are sent with the run (and event) as the trace key, so a batch delivered again after a
   crash re-sends only what was not logged: the messages in flight at the crash, counted as possible duplicates.
4. One commit: the sends' message log and events, the item acked, THROTTLED and TEMPORARY_FAILURE endpoints
   queued again (after 2, 4, 8 s), in-app messages stored, the activities' tallies added, and the run completed if
   this was its last batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec

from clarion.campaigns.channel_order import people
from clarion.campaigns.completion import complete_if_finished
from clarion.campaigns.config import CampaignSettings
from clarion.campaigns.content import direct_configuration, in_app_document, treatment_templates
from clarion.campaigns.definition import (
    ActivityState,
    CampaignDefinition,
    CampaignState,
    Hook,
    HookMode,
    ProjectDefaults,
    parse_project_defaults,
)
from clarion.campaigns.hooks import CampaignHooks, HookFailed
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.runs import BATCH, read_run
from clarion.campaigns.tally import Tally
from clarion.campaigns.treatments import Allocation
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.endpoints.service import endpoint_key
from clarion.logs import get_logger
from clarion.messages.delivery import Attribution, Delivery, Send, Sent, Target
from clarion.messages.inapp import put_in_app_message
from clarion.messages.policy import Limits, SendPolicy
from clarion.messages.rendering import MessageBuilder
from clarion.metrics import Metrics
from clarion.projects.service import stored_settings
from clarion.queue.work_queue import Lease, StoreQueue
from clarion.store import campaigns as store
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database, Transaction

PAUSE_RECHECK = timedelta(seconds=5)

log = get_logger("clarion.campaigns")


@dataclass(frozen=True, slots=True)
class RetrySlot:
    """A retried batch's endpoints passed holdout, limits, quiet time and hooks before: all keep their treatment."""

    treatment_id: str

    def slot(self, cohort_id: int) -> str:
        return self.treatment_id


@dataclass(slots=True)
class BatchOutcome:
    """What a batch's commit writes."""

    tallies: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))  # by treatment id
    retries: list[tuple[str, list[str], int]] = field(default_factory=list)  # (treatment, endpoint ids, retry no.)
    in_app: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)  # (endpoint ids, document)
    resent: int = 0  # messages this redelivered batch sent again (possible duplicates)
    logs: list[Callable[[Transaction], None]] = field(default_factory=list)  # the sends' message logs and events


class CampaignDelivery:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        queue: StoreQueue,
        delivery: Delivery,
        members: SegmentMembers,
        hooks: CampaignHooks,
        settings: CampaignSettings,
        metrics: Metrics,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.clock = clock
        self.queue = queue
        self.delivery = delivery
        self.members = members
        self.hooks = hooks
        self.settings = settings

    async def deliver_batch(self, lease: Lease) -> None:
        run_key: str = lease.payload["run"]
        now = self.clock.now()
        found = await self.db.read(lambda tx: _run_of_live_campaign(tx, run_key))
        if found is None:
            return  # the campaign was deleted: nothing left to send for it
        run, definition, state = found
        if state == CampaignState.PAUSED:
            await self.db.write(lambda tx: self._postpone(tx, lease, now + PAUSE_RECHECK))
            return
        outcome = BatchOutcome()
        event_at = lease.payload.get("event_at")
        if event_at is not None and epoch_millis(now) - event_at > self.settings.event_expiry_seconds * 1000:
            outcome.tallies["0"].expired += len(lease.payload["endpoints"])
        else:
            await self._send(lease, run, definition, now, outcome)
        await self.db.write(lambda tx: self._commit(tx, lease, run.app_id, outcome, now))
        self._report_retries(run, lease, outcome)

    def _report_retries(self, run: store.RunRow, lease: Lease, outcome: BatchOutcome) -> None:
        """Recipients queued again and recipients given up on, once the batch that decided it has committed."""
        where = {"app_id": run.app_id, "campaign_id": run.campaign_id, "run": run.run_key}
        for slot, ids, number in outcome.retries:
            self.metrics.campaign_endpoint_retries.labels("retried").inc(len(ids))
            delay = 2**number
            log.warning("campaign_retry", **where, treatment=slot, endpoints=len(ids), retry=number, retry_in=delay)
        gave_up = sum(tally.gave_up for tally in outcome.tallies.values())
        if gave_up:
            self.metrics.campaign_endpoint_retries.labels("gave_up").inc(gave_up)
            retries = lease.payload.get("retry", 0)
            log.error("campaign_gave_up", **where, endpoints=gave_up, retries=retries)

    def _postpone(self, tx: Transaction, lease: Lease, until: datetime) -> None:
        """A paused campaign's batch waits: the same work, queued again for later, replacing this item."""
        self.queue.ack_in(tx, lease)
        self.queue.enqueue_in(tx, BATCH, lease.payload, due_at=until, project=lease.project)

    async def _send(
        self, lease: Lease, run: store.RunRow, definition: CampaignDefinition, now: datetime, outcome: BatchOutcome
    ) -> None:
        """Steps 2 and 3: the audience by treatment, then each treatment's hook, in-app message or send."""
        app_id, campaign_id, payload = run.app_id, run.campaign_id, lease.payload
        defaults = parse_project_defaults(await self.db.read(lambda tx: stored_settings(tx, app_id)))
        policy = _policy(payload, run, definition, defaults, now)
        if policy.expired(now):
            outcome.tallies["0"].expired += len(payload["endpoints"])
            return
        keys = [endpoint_key(e) for e in payload["endpoints"]]
        rows = await self.db.read(lambda tx: endpoint_store.fetch(tx, app_id, keys))
        if definition.clarion_channel_order:
            rows = await people(self.db, self.members, app_id, definition, rows)
        # Quiet time judges the time the message was scheduled for, so a late batch is judged like a timely one.
        send_at = policy.due_at if payload.get("due") and policy.due_at else now
        audience = await self.delivery.audience(
            app_id, list(rows.values()), policy, Attribution(campaign_id), send_at, now, request_id=run.run_key
        )
        for slot, skipped in audience.skipped.items():
            outcome.tallies[slot].add_skipped(skipped)
        treatments = definition.treatments()

        def read(tx: Transaction) -> tuple[dict[str, str], dict[str, dict[str, dict[str, Any]]]]:
            templates = {slot: treatment_templates(tx, treatments[slot]) for slot in audience.targets}
            return store.activity_ids(tx, run.run_key), templates

        activity_ids, templates = await self.db.read(read)
        # The last moment to learn that this lease ran out and another worker holds the batch (this process stalled
        # past its visibility: a busy machine, a late heartbeat); past it the sends go out, and both would send.
        await self.queue.extend(lease)
        hook = definition.hook if definition.hook not in (None, Hook()) else defaults.campaign_hook
        for slot, targets in audience.targets.items():
            event: dict[str, Any] = {
                "MessageConfiguration": treatments[slot].message_configuration,
                "ApplicationId": app_id,
                "CampaignId": campaign_id,
                "TreatmentId": slot,
                "ActivityId": activity_ids.get(slot, ""),
                "ScheduledTime": iso_millis(send_at),
            }
            tally = outcome.tallies[slot]
            if hook is not None and hook.mode is not None and "slot" not in payload:  # retries passed it already
                event["Endpoints"] = {t.endpoint_id: t.variables for t in targets if t.endpoint_id}
                kept = await self._through_hook(hook, event, targets, tally)
                if kept is None:
                    continue
                targets = kept
            if definition.is_in_app(treatments[slot]):
                document = in_app_document(definition, campaign_id, slot, treatments[slot], templates[slot])
                outcome.in_app.append(([t.endpoint_id for t in targets if t.endpoint_id], document))
                tally.targeted += len(targets)
                tally.successful += len(targets)
                continue
            context = {k: str(v) for k, v in event.items() if k not in ("MessageConfiguration", "Endpoints")}
            send = self._send_of(lease, run, definition, slot, targets, templates[slot], context, policy, now)
            send = replace(send, log_with=outcome.logs)  # logged in the batch's one commit, with its ack
            self._count(lease, slot, await self.delivery.send(send), len(targets), outcome)

    def _send_of(
        self,
        lease: Lease,
        run: store.RunRow,
        definition: CampaignDefinition,
        slot: str,
        targets: list[Target],
        templates: dict[str, dict[str, Any]],
        context: dict[str, str],
        policy: SendPolicy,
        now: datetime,
    ) -> Send:
        """One treatment's message to its targets; the trace key (run, event, retry) keeps a redelivery idempotent."""
        payload, message = lease.payload, definition.treatments()[slot]
        trace = run.run_key if "event_id" not in payload else f"{run.run_key}:{payload['event_id']}"
        retry = payload.get("retry", 0)
        return Send(
            run.app_id,
            targets,
            MessageBuilder(direct_configuration(message.message_configuration), templates),
            now,
            context=context,
            trace_key=f"{trace}#retry{retry}" if retry else trace,
            attribution=Attribution(run.campaign_id, slot),
            custom_delivery=definition.custom_delivery_configuration or message.custom_delivery_configuration,
            messages_per_second=policy.limits.messages_per_second,
        )

    def _count(self, lease: Lease, slot: str, sent: Sent, targeted: int, outcome: BatchOutcome) -> None:
        tally, retry = outcome.tallies[slot], lease.payload.get("retry", 0)
        if not retry:
            tally.targeted += targeted
        tally.successful += sent.successful
        if lease.attempts > 1:
            outcome.resent += sent.sent
        if sent.retryable and retry < self.settings.max_retries:
            outcome.retries.append((slot, sent.retryable, retry + 1))
        elif sent.retryable:
            tally.gave_up += len(sent.retryable)

    async def _through_hook(
        self, hook: Hook, event: dict[str, Any], targets: list[Target], tally: Tally
    ) -> list[Target] | None:
        """FILTER: the targets the hook kept, with the endpoint data it returned. DELIVERY: None (the hook sent)."""
        wire = msgspec.to_builtins(hook)
        try:
            if hook.mode == HookMode.DELIVERY:
                await self.hooks.call(wire, event)
                tally.targeted += len(targets)
                tally.successful += len(targets)
                return None
            kept = await self.hooks.filter(wire, event)
        except HookFailed as error:
            log.warning("campaign hook failed", campaign=event["CampaignId"], error=str(error))
            tally.hook_failed += len(targets)
            return None
        tally.hook_filtered += sum(1 for t in targets if t.endpoint_id not in kept)
        for target in targets:
            if target.endpoint_id in kept:
                target.variables = {**target.variables, **kept[target.endpoint_id]}
        return [target for target in targets if target.endpoint_id in kept]

    def _commit(self, tx: Transaction, lease: Lease, app_id: str, outcome: BatchOutcome, now: datetime) -> None:
        run_key = lease.payload["run"]
        for log_sends in outcome.logs:
            log_sends(tx)
        self.queue.ack_in(tx, lease)
        for slot, ids, number in outcome.retries:  # backoff 2, 4, 8... seconds, the batch's other facts kept
            payload = {**lease.payload, "endpoints": ids, "slot": slot, "retry": number}
            self.queue.enqueue_in(tx, BATCH, payload, due_at=now + timedelta(seconds=2**number), project=lease.project)
            outcome.tallies[slot].retried += len(ids)
        store.add_pending(tx, run_key, len(outcome.retries))
        store.finish_batch(tx, run_key, outcome.resent)
        for endpoint_ids, document in outcome.in_app:
            put_in_app_message(tx, app_id, endpoint_ids, document, now)
        activities = {treatment: metrics for _, treatment, metrics in store.activities_of_run(tx, run_key)}
        for treatment, tally in outcome.tallies.items():
            if treatment not in activities:
                continue
            metrics = msgspec.json.encode(tally.metrics_over(msgspec.json.decode(activities[treatment]))).decode()
            counts = (tally.targeted, tally.successful)
            store.add_to_activity(tx, run_key, treatment, *counts, metrics, ActivityState.RUNNING, iso_millis(now))
        complete_if_finished(tx, run_key, now)


def _policy(
    payload: dict[str, Any], run: store.RunRow, definition: CampaignDefinition, defaults: ProjectDefaults, now: datetime
) -> SendPolicy:
    """The campaign's limits and quiet time, the project's defaults filling what it leaves unset; its treatments.
    A retried batch's endpoints passed holdout, limits and quiet time before: only MaximumDuration still applies."""
    started = payload.get("due") or payload.get("event_at") or run.run_at
    due_at = datetime.fromtimestamp(started / 1000, tz=now.tzinfo)
    limits = definition.limits.over(defaults.limits)
    if "slot" in payload:
        pace = Limits(messages_per_second=limits.messages_per_second, maximum_duration=limits.maximum_duration)
        return SendPolicy(pace, allocation=RetrySlot(payload["slot"]), due_at=due_at)
    quiet = next((q for q in (definition.schedule.quiet_time, defaults.quiet_time) if q and q.is_set), None)
    sizes = [treatment.size_percent for treatment in definition.additional_treatments]
    return SendPolicy(limits, quiet, Allocation.of(run.campaign_id, definition.holdout_percent, sizes), due_at)


def _run_of_live_campaign(tx: Transaction, run_key: str) -> tuple[store.RunRow, CampaignDefinition, str] | None:
    """The run, its campaign version's definition and the campaign's current state; None once it is deleted."""
    found = read_run(tx, run_key)
    campaign = store.get(tx, found[0].app_id, found[0].campaign_id) if found else None
    return None if found is None or campaign is None else (*found, campaign.state)
