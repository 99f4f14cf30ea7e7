"""Campaign runs: their keys, their activities, and the campaign state they move, shared by the scheduler, the
planner, delivery and completion.

A run is keyed by its campaign and its scheduled time (`run_key_of`), so a scheduler pass repeated after a crash
starts nothing twice; an EVENT campaign has one running tally instead (`events_run_key`). A run has one activity
per treatment (GetCampaignActivities). Every state change of a campaign goes through `set_state`, which records it
as a domain event.
"""

from __future__ import annotations

import uuid

from clarion.campaigns.definition import ActivityState, CampaignDefinition, CampaignState, parse_definition
from clarion.domain_events import CampaignRunStarted, CampaignStateChanged
from clarion.store import campaigns as store
from clarion.store.database import Transaction

PLAN, BATCH = "campaign.plan", "campaign.batch"  # the queue kinds of planning a run and delivering a batch


def run_key_of(campaign_id: str, run_at_ms: int) -> str:
    return f"{campaign_id}:{run_at_ms}"


def events_run_key(campaign_id: str) -> str:
    return f"{campaign_id}:events"


def start_run(
    tx: Transaction,
    app_id: str,
    campaign_id: str,
    run_key: str,
    version: int,
    run_at: int,
    definition: CampaignDefinition,
    scheduled: str,
) -> bool:
    """A run with one activity per treatment; False when it exists already (a pass repeated after a crash)."""
    if not store.insert_run(tx, run_key, app_id, campaign_id, version, run_at):
        return False
    for treatment in definition.treatments():
        activity_id = uuid.uuid4().hex
        store.insert_activity(
            tx, app_id, campaign_id, run_key, activity_id, treatment, scheduled, ActivityState.PENDING
        )
    tx.record(CampaignRunStarted(app_id, campaign_id, run_key))
    return True


def set_state(tx: Transaction, app_id: str, campaign_id: str, state: CampaignState) -> None:
    store.set_state(tx, app_id, campaign_id, state)
    tx.record(CampaignStateChanged(app_id, campaign_id, state))


def read_run(tx: Transaction, run_key: str) -> tuple[store.RunRow, CampaignDefinition] | None:
    """A run and the definition of the campaign version it runs; None when either is gone (campaign deleted)."""
    run = store.get_run(tx, run_key)
    if run is None:
        return None
    campaign = store.get_version(tx, run.app_id, run.campaign_id, run.campaign_version)
    return None if campaign is None else (run, parse_definition(campaign.definition))
