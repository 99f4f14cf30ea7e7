"""How a run ends: the last batch of a fully planned run completes its activities and moves the campaign on; a run
whose segment was deleted fails and the campaign, which can no longer run, becomes DELETED (as in Pinpoint).

Both happen inside the transaction of the step that ends the run (the last batch's commit, the planner's), so a
run is never left finished but not completed.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from clarion.campaigns.definition import ActivityResult, ActivityState, CampaignState
from clarion.campaigns.runs import set_state
from clarion.clock import iso_millis
from clarion.store import campaigns as store
from clarion.store.database import Transaction


def complete_if_finished(tx: Transaction, run_key: str, now: datetime) -> None:
    run = store.get_run(tx, run_key, lock=True)
    if run is None or not run.planned or run.pending_batches > 0:
        return
    store.finish_activities(tx, run_key, ActivityState.COMPLETED, ActivityResult.SUCCESS, iso_millis(now))
    if run.resent:  # messages re-sent by batches redelivered after a crash (docs/campaigns.md, Exactly once)
        for activity_id, _treatment, raw in store.activities_of_run(tx, run_key):
            merged = {**orjson.loads(raw), "PossibleDuplicates": str(run.resent)}
            store.set_activity_metrics(tx, run_key, activity_id, orjson.dumps(merged).decode())
    campaign = store.get(tx, run.app_id, run.campaign_id, lock=True)
    if campaign is not None and campaign.state == CampaignState.EXECUTING:
        following = store.next_run_at(tx, run.app_id, run.campaign_id)
        done = CampaignState.PENDING_NEXT_RUN if following is not None else CampaignState.COMPLETED
        set_state(tx, run.app_id, run.campaign_id, done)


def fail_for_lost_segment(tx: Transaction, run: store.RunRow, now: datetime) -> None:
    store.record_planning(tx, run.run_key, run.planned_after, 0, True)
    store.finish_activities(tx, run.run_key, ActivityState.COMPLETED, ActivityResult.FAIL, iso_millis(now))
    store.set_next_run(tx, run.app_id, run.campaign_id, None)
    set_state(tx, run.app_id, run.campaign_id, CampaignState.DELETED)
