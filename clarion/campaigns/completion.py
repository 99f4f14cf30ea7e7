"""How a run ends: the last batch of a fully planned run completes its activities and moves the campaign on; a run
whose segment was deleted fails and the campaign, which can no longer run, becomes DELETED (as in Pinpoint).

Both happen inside the transaction of the step that ends the run (the last batch's commit, the planner's), so a
run is never left finished but not completed. A run that tried to reach someone and delivered nothing — every
message failed, every hook call failed, or its work was given up — ends with Result FAIL, never SUCCESS; the end
is recorded as a CampaignRunFinished domain event, which the process logs and counts (clarion/reporting.py).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from clarion.campaigns.definition import ActivityResult, ActivityState, CampaignState
from clarion.campaigns.runs import PLAN, set_state
from clarion.campaigns.tally import METRIC_NAMES
from clarion.clock import iso_millis
from clarion.domain_events import CampaignRunFinished
from clarion.queue.work_queue import BuriedItem
from clarion.store import campaigns as store
from clarion.store.database import Transaction

FAILED_BATCHES = "FailedBatches"  # activity metric: plans and batches the queue gave up on (docs/queue.md)
HOOK_FAILED = METRIC_NAMES["hook_failed"]


def complete_if_finished(tx: Transaction, run_key: str, now: datetime) -> None:
    run = store.get_run(tx, run_key, lock=True)
    if run is None or not run.planned or run.pending_batches > 0:
        return
    targeted, successful = store.run_tallies(tx, run_key)
    reason = _why_failed(tx, run_key, targeted, successful)
    result = ActivityResult.FAIL if reason else ActivityResult.SUCCESS
    store.finish_activities(tx, run_key, ActivityState.COMPLETED, result, iso_millis(now))
    tx.record(CampaignRunFinished(run.app_id, run.campaign_id, run_key, result, targeted, successful, reason))
    if run.resent:  # messages re-sent by batches redelivered after a crash (docs/campaigns.md, Exactly once)
        for activity_id, _treatment, raw in store.activities_of_run(tx, run_key):
            merged = {**msgspec.json.decode(raw), "PossibleDuplicates": str(run.resent)}
            store.set_activity_metrics(tx, run_key, activity_id, msgspec.json.encode(merged).decode())
    campaign = store.get(tx, run.app_id, run.campaign_id, lock=True)
    if campaign is not None and campaign.state == CampaignState.EXECUTING:
        following = store.next_run_at(tx, run.app_id, run.campaign_id)
        done = CampaignState.PENDING_NEXT_RUN if following is not None else CampaignState.COMPLETED
        set_state(tx, run.app_id, run.campaign_id, done)


def _why_failed(tx: Transaction, run_key: str, targeted: int, successful: int) -> str:
    """Why a run that delivered nothing failed, from its counts ("" when it delivered, or had no one to try).
    A run that delivered some messages succeeds; its losses show in GaveUpEndpoints, FailedBatches and the like."""
    if successful:
        return ""
    totals = {FAILED_BATCHES: 0, HOOK_FAILED: 0}
    for _, _, raw in store.activities_of_run(tx, run_key):
        metrics = msgspec.json.decode(raw)
        for name in totals:
            totals[name] += int(metrics.get(name, "0"))
    reasons = []
    if targeted:
        reasons.append(f"no message reached any of the {targeted} endpoints targeted")
    if totals[HOOK_FAILED]:
        reasons.append(f"the campaign hook failed for {totals[HOOK_FAILED]} endpoints")
    if totals[FAILED_BATCHES]:
        reasons.append(f"{totals[FAILED_BATCHES]} plans or batches were given up by the work queue")
    return "; ".join(reasons)


def count_buried(tx: Transaction, item: BuriedItem) -> None:
    """The queue gave up on a plan or a batch of a run (the hook of both kinds): count it failed, so the run still
    finishes."""
    run = store.get_run(tx, item.payload["run"], lock=True)
    if run is None:
        return
    if item.kind == PLAN:  # the members not planned yet are never sent
        store.record_planning(tx, run.run_key, run.planned_after, 0, True)
    else:
        store.finish_batch(tx, run.run_key, 0)
    for activity_id, _treatment, raw in store.activities_of_run(tx, run.run_key):
        metrics = msgspec.json.decode(raw)
        metrics[FAILED_BATCHES] = str(int(metrics.get(FAILED_BATCHES, "0")) + 1)
        store.set_activity_metrics(tx, run.run_key, activity_id, msgspec.json.encode(metrics).decode())
    complete_if_finished(tx, run.run_key, item.buried_at)


def fail_for_lost_segment(tx: Transaction, run: store.RunRow, now: datetime) -> None:
    store.record_planning(tx, run.run_key, run.planned_after, 0, True)
    store.finish_activities(tx, run.run_key, ActivityState.COMPLETED, ActivityResult.FAIL, iso_millis(now))
    targeted, successful = store.run_tallies(tx, run.run_key)
    reason = "the campaign's segment was deleted"
    failed = ActivityResult.FAIL
    tx.record(CampaignRunFinished(run.app_id, run.campaign_id, run.run_key, failed, targeted, successful, reason))
    store.set_next_run(tx, run.app_id, run.campaign_id, None)
    set_state(tx, run.app_id, run.campaign_id, CampaignState.DELETED)
