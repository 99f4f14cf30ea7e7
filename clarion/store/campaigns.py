"""Campaigns, their versions and their activities (one per run and treatment, written by the campaign engine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store.database import Transaction
from clarion.store.versioned import VersionedTable


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """A campaign at one version (its latest, unless read by version)."""

    seq: int
    app_id: str
    id: str
    state: str  # CampaignStatus of the campaign as a whole; not versioned
    latest: int
    created_at: str
    version: int
    name: str
    modified_at: str
    definition: str  # JSON of the WriteCampaignRequest members other than Name and tags


@dataclass(frozen=True, slots=True)
class ActivityRow:
    seq: int
    id: str
    treatment_id: str
    state: str
    result: str | None
    scheduled_start: str | None
    start_at: str | None
    end_at: str | None
    total_endpoints: int
    successful_endpoints: int
    timezones_total: int
    timezones_completed: int
    metrics: str  # JSON {name: value}


TABLE = VersionedTable("campaigns", "campaign_versions", "campaign_id", extra=("state",))


def insert(
    tx: Transaction, app_id: str, campaign_id: str, state: str, created_at: str, name: str, definition: str
) -> None:
    TABLE.insert(tx, app_id, campaign_id, created_at, name, definition, state=state)


def add_version(
    tx: Transaction, app_id: str, campaign_id: str, version: int, name: str, modified_at: str, definition: str
) -> None:
    TABLE.add_version(tx, app_id, campaign_id, version, name, modified_at, definition)


def set_state(tx: Transaction, app_id: str, campaign_id: str, state: str) -> None:
    tx.execute("UPDATE campaigns SET state = ? WHERE app_id = ? AND id = ?", (state, app_id, campaign_id))


def get(tx: Transaction, app_id: str, campaign_id: str, *, lock: bool = False) -> CampaignRow | None:
    row = TABLE.get(tx, app_id, campaign_id, lock=lock)
    return CampaignRow(*row) if row else None


def get_version(tx: Transaction, app_id: str, campaign_id: str, version: int) -> CampaignRow | None:
    row = TABLE.get_version(tx, app_id, campaign_id, version)
    return CampaignRow(*row) if row else None


def page(tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[CampaignRow]:
    return [CampaignRow(*row) for row in TABLE.page(tx, app_id, after_seq, limit)]


def page_versions(tx: Transaction, app_id: str, campaign_id: str, after_version: int, limit: int) -> list[CampaignRow]:
    return [CampaignRow(*row) for row in TABLE.page_versions(tx, app_id, campaign_id, after_version, limit)]


def delete(tx: Transaction, app_id: str, campaign_id: str) -> None:
    tx.execute("DELETE FROM campaign_activities WHERE app_id = ? AND campaign_id = ?", (app_id, campaign_id))
    TABLE.delete(tx, app_id, campaign_id)


def page_activities(tx: Transaction, app_id: str, campaign_id: str, after_seq: int, limit: int) -> list[ActivityRow]:
    """A campaign's runs, newest first (Pinpoint lists the latest run at the top)."""
    rows = tx.fetchall(
        "SELECT seq, id, treatment_id, state, result, scheduled_start, start_at, end_at, total_endpoints, "
        "successful_endpoints, timezones_total, timezones_completed, metrics FROM campaign_activities "
        "WHERE app_id = ? AND campaign_id = ? AND (? = 0 OR seq < ?) ORDER BY seq DESC LIMIT ?",
        (app_id, campaign_id, after_seq, after_seq, limit),
    )
    return [ActivityRow(*row) for row in rows]


# Scheduling and runs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run_key: str
    app_id: str
    campaign_id: str
    campaign_version: int
    run_at: int  # epoch ms the run was scheduled for
    planned_after: str | None  # the last member endpoint key planned into batches
    planned: bool
    pending_batches: int
    batches_total: int
    resent: int  # messages sent again by batches redelivered after a crash (possible duplicates)


_RUN_COLUMNS = (
    "run_key, app_id, campaign_id, campaign_version, run_at, planned_after, planned, pending_batches, "
    "batches_total, resent"
)


def set_next_run(tx: Transaction, app_id: str, campaign_id: str, next_run_at: int | None) -> None:
    tx.execute("UPDATE campaigns SET next_run_at = ? WHERE app_id = ? AND id = ?", (next_run_at, app_id, campaign_id))


def due(tx: Transaction, now_ms: int, limit: int, states: Sequence[str]) -> list[tuple[str, str]]:
    """(app id, campaign id) of campaigns in one of these states whose next run is due, oldest first."""
    wanted, params = tx.dialect.one_of("state", list(states))
    return [
        (row[0], row[1])
        for row in tx.fetchall(
            f"SELECT app_id, id FROM campaigns WHERE next_run_at <= ? AND {wanted} ORDER BY next_run_at LIMIT ?",
            (now_ms, *params, limit),
        )
    ]


def insert_run(tx: Transaction, run_key: str, app_id: str, campaign_id: str, version: int, run_at: int) -> bool:
    """False when the run already exists (a scheduler pass repeated after a crash)."""
    return (
        tx.execute(
            "INSERT INTO campaign_runs (run_key, app_id, campaign_id, campaign_version, run_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_key) DO NOTHING",
            (run_key, app_id, campaign_id, version, run_at),
        )
        > 0
    )


def get_run(tx: Transaction, run_key: str, *, lock: bool = False) -> RunRow | None:
    suffix = tx.dialect.for_update if lock else ""
    row = tx.fetchone(f"SELECT {_RUN_COLUMNS} FROM campaign_runs WHERE run_key = ?{suffix}", (run_key,))
    return RunRow(*row[:6], bool(row[6]), *row[7:]) if row else None


def latest_run(tx: Transaction, app_id: str, campaign_id: str) -> RunRow | None:
    """The campaign's newest scheduled run, else its event tally."""
    row = tx.fetchone(
        f"SELECT {_RUN_COLUMNS} FROM campaign_runs WHERE app_id = ? AND campaign_id = ? ORDER BY run_at DESC LIMIT 1",
        (app_id, campaign_id),
    )
    return RunRow(*row[:6], bool(row[6]), *row[7:]) if row else None


def run_tallies(tx: Transaction, run_key: str) -> tuple[int, int]:
    """(endpoints targeted, messages delivered) over a run's treatments."""
    row = tx.fetchone(
        "SELECT COALESCE(SUM(total_endpoints), 0), COALESCE(SUM(successful_endpoints), 0) FROM campaign_activities "
        "WHERE run_key = ?",
        (run_key,),
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


def record_planning(tx: Transaction, run_key: str, planned_after: str | None, batches: int, done: bool) -> None:
    tx.execute(
        "UPDATE campaign_runs SET planned_after = ?, pending_batches = pending_batches + ?, "
        "batches_total = batches_total + ?, planned = ? WHERE run_key = ?",
        (planned_after, batches, batches, int(done), run_key),
    )


def add_pending(tx: Transaction, run_key: str, batches: int) -> None:
    """Batches queued again for a retry: the run is not finished until they are done."""
    if batches:
        tx.execute(
            "UPDATE campaign_runs SET pending_batches = pending_batches + ? WHERE run_key = ?", (batches, run_key)
        )


def finish_batch(tx: Transaction, run_key: str, resent: int) -> None:
    tx.execute(
        "UPDATE campaign_runs SET pending_batches = pending_batches - 1, resent = resent + ? WHERE run_key = ?",
        (resent, run_key),
    )


def insert_activity(
    tx: Transaction,
    app_id: str,
    campaign_id: str,
    run_key: str,
    activity_id: str,
    treatment_id: str,
    scheduled_start: str,
    state: str,
) -> None:
    tx.execute(
        "INSERT INTO campaign_activities (app_id, campaign_id, run_key, id, treatment_id, state, scheduled_start) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (app_id, campaign_id, run_key, activity_id, treatment_id, state, scheduled_start),
    )


def activity_ids(tx: Transaction, run_key: str) -> dict[str, str]:
    """Treatment id -> activity id for one run (the ActivityId hooks and custom channels receive)."""
    rows = tx.fetchall("SELECT treatment_id, id FROM campaign_activities WHERE run_key = ?", (run_key,))
    return {row[0]: row[1] for row in rows}


def activities_of_run(tx: Transaction, run_key: str) -> list[tuple[str, str, str]]:
    """(activity id, treatment id, metrics JSON) of one run's activities, locked for an update of their tallies."""
    return [
        (row[0], row[1], row[2])
        for row in tx.fetchall(
            f"SELECT id, treatment_id, metrics FROM campaign_activities WHERE run_key = ?{tx.dialect.for_update}",
            (run_key,),
        )
    ]


def add_to_activity(
    tx: Transaction,
    run_key: str,
    treatment_id: str,
    targeted: int,
    successful: int,
    metrics: str,
    state: str,
    start_at: str,
) -> None:
    tx.execute(
        "UPDATE campaign_activities SET total_endpoints = total_endpoints + ?, "
        "successful_endpoints = successful_endpoints + ?, metrics = ?, state = ?, "
        "start_at = COALESCE(start_at, ?) WHERE run_key = ? AND treatment_id = ?",
        (targeted, successful, metrics, state, start_at, run_key, treatment_id),
    )


def set_timezones(tx: Transaction, run_key: str, total: int, completed: int) -> None:
    tx.execute(
        "UPDATE campaign_activities SET timezones_total = ?, timezones_completed = ? WHERE run_key = ?",
        (total, completed, run_key),
    )


def finish_activities(tx: Transaction, run_key: str, state: str, result: str, end_at: str) -> None:
    tx.execute(
        "UPDATE campaign_activities SET state = ?, result = ?, end_at = ?, start_at = COALESCE(start_at, ?), "
        "timezones_completed = timezones_total WHERE run_key = ?",
        (state, result, end_at, end_at, run_key),
    )


def set_activity_metrics(tx: Transaction, run_key: str, activity_id: str, metrics: str) -> None:
    tx.execute(
        "UPDATE campaign_activities SET metrics = ? WHERE run_key = ? AND id = ?", (metrics, run_key, activity_id)
    )


def set_run_version(tx: Transaction, run_key: str, version: int) -> None:
    """An event campaign's running tally sends with the campaign's latest version."""
    tx.execute("UPDATE campaign_runs SET campaign_version = ? WHERE run_key = ?", (version, run_key))


def next_run_at(tx: Transaction, app_id: str, campaign_id: str) -> int | None:
    return tx.scalar("SELECT next_run_at FROM campaigns WHERE app_id = ? AND id = ?", (app_id, campaign_id))


def event_campaigns(tx: Transaction, app_id: str, state: str) -> list[CampaignRow]:
    """The project's campaigns in `state` without a next run (latest versions): those events may trigger; the
    caller checks their schedule."""
    rows = tx.fetchall(
        f"{TABLE.select_latest} WHERE h.app_id = ? AND h.state = ? AND h.next_run_at IS NULL", (app_id, state)
    )
    return [CampaignRow(*row) for row in rows]


def run_counts(tx: Transaction, app_id: str, campaign_id: str) -> tuple[int, int]:
    """(runs started, runs not finished) of a campaign: what a resumed campaign goes back to."""
    row = tx.fetchone(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN planned = 0 OR pending_batches > 0 THEN 1 ELSE 0 END), 0) "
        "FROM campaign_runs WHERE app_id = ? AND campaign_id = ? AND run_at > 0",
        (app_id, campaign_id),
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)
