"""`clarion campaigns watch`: a campaign's current run, batch by batch, until the campaign stops executing."""

from __future__ import annotations

from clarion.store import campaigns as campaign_store
from clarion.store.database import Database, Transaction
from clarion.watching import Reader, Snapshot

STILL_GOING = frozenset({"SCHEDULED", "EXECUTING"})


def campaign_reader(app_id: str, campaign_id: str) -> Reader:
    def snapshot(tx: Transaction) -> Snapshot | None:
        campaign = campaign_store.get(tx, app_id, campaign_id)
        if campaign is None:
            return None
        run = campaign_store.latest_run(tx, app_id, campaign_id)
        if run is None:
            return Snapshot(f"campaign {campaign.state}", 0, None, "waiting for its first run", False)
        targeted, delivered = campaign_store.run_tallies(tx, run.run_key)
        return Snapshot(
            description=f"campaign {campaign.state}",
            completed=run.batches_total - run.pending_batches,
            total=run.batches_total if run.planned else None,
            detail=f"batches  {targeted:,} targeted, {delivered:,} delivered",
            finished=campaign.state not in STILL_GOING,
            succeeded=campaign.state != "DELETED",
            notes=[f"possibly sent twice after a crash: {run.resent}"] if run.resent else [],
        )

    async def read(db: Database) -> Snapshot | None:
        return await db.read(snapshot)

    return read
