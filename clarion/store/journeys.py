"""Journeys (one row each, the definition as written), their runs, participants with their timers, the message
each participant got per activity, and execution metrics."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class JourneyRow:
    seq: int
    app_id: str
    id: str
    name: str
    state: str
    created_at: str
    modified_at: str
    definition: str  # JSON of the WriteJourneyRequest members other than Name, State and tags
    paused_at: int | None  # epoch ms of the last pause (resuming waits at least five minutes after it)


_COLUMNS = "seq, app_id, id, name, state, created_at, modified_at, definition, paused_at"


def insert(
    tx: Transaction, app_id: str, journey_id: str, name: str, state: str, created_at: str, definition: str
) -> None:
    tx.execute(
        "INSERT INTO journeys (app_id, id, name, state, created_at, modified_at, definition) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (app_id, journey_id, name, state, created_at, created_at, definition),
    )


def replace(
    tx: Transaction, app_id: str, journey_id: str, name: str, state: str, modified_at: str, definition: str
) -> None:
    tx.execute(
        "UPDATE journeys SET name = ?, state = ?, modified_at = ?, definition = ? WHERE app_id = ? AND id = ?",
        (name, state, modified_at, definition, app_id, journey_id),
    )


def set_state(tx: Transaction, app_id: str, journey_id: str, state: str, paused_at: int | None) -> None:
    tx.execute(
        "UPDATE journeys SET state = ?, paused_at = ? WHERE app_id = ? AND id = ?",
        (state, paused_at, app_id, journey_id),
    )


def get(tx: Transaction, app_id: str, journey_id: str, *, lock: bool = False) -> JourneyRow | None:
    row = tx.fetchone(
        f"SELECT {_COLUMNS} FROM journeys WHERE app_id = ? AND id = ?{tx.dialect.for_update if lock else ''}",
        (app_id, journey_id),
    )
    return JourneyRow(*row) if row else None


def page(tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[JourneyRow]:
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM journeys WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?", (app_id, after_seq, limit)
    )
    return [JourneyRow(*row) for row in rows]


def delete(tx: Transaction, app_id: str, journey_id: str) -> None:
    """The journey and everything it ran: participants (and so their timers), messages' links, runs, metrics."""
    for table in ("journey_participants", "journey_messages", "journey_metrics", "journey_runs"):
        tx.execute(f"DELETE FROM {table} WHERE app_id = ? AND journey_id = ?", (app_id, journey_id))
    tx.execute("DELETE FROM journeys WHERE app_id = ? AND id = ?", (app_id, journey_id))


# Runs and metrics ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    status: str
    created_at: str
    updated_at: str


def page_runs(tx: Transaction, app_id: str, journey_id: str, after: str, limit: int) -> list[RunRow]:
    """A journey's runs in the order they were created (run ids sort by creation), after a run id."""
    rows = tx.fetchall(
        "SELECT run_id, status, created_at, updated_at FROM journey_runs "
        "WHERE app_id = ? AND journey_id = ? AND run_id > ? ORDER BY run_id LIMIT ?",
        (app_id, journey_id, after, limit),
    )
    return [RunRow(*row) for row in rows]


def get_run(tx: Transaction, app_id: str, journey_id: str, run_id: str) -> RunRow | None:
    row = tx.fetchone(
        "SELECT run_id, status, created_at, updated_at FROM journey_runs "
        "WHERE app_id = ? AND journey_id = ? AND run_id = ?",
        (app_id, journey_id, run_id),
    )
    return RunRow(*row) if row else None


def last_updated(tx: Transaction, app_id: str, journey_id: str, run_id: str | None) -> str | None:
    """When the journey's runs (or one run) last changed: the metrics' LastEvaluatedTime."""
    if run_id is None:
        return tx.scalar(
            "SELECT max(updated_at) FROM journey_runs WHERE app_id = ? AND journey_id = ?", (app_id, journey_id)
        )
    run = get_run(tx, app_id, journey_id, run_id)
    return run.updated_at if run else None


def metrics(tx: Transaction, app_id: str, journey_id: str, run_id: str | None, activity_id: str) -> dict[str, int]:
    """Counters of one activity ('' for the journey itself), of one run or summed over every run."""
    run_filter = "" if run_id is None else " AND run_id = ?"
    params = (app_id, journey_id, activity_id) + (() if run_id is None else (run_id,))
    rows = tx.fetchall(
        "SELECT name, sum(value) FROM journey_metrics WHERE app_id = ? AND journey_id = ? AND activity_id = ?"
        f"{run_filter} GROUP BY name",
        params,
    )
    return {name: int(value) for name, value in rows}


def active_participants(tx: Transaction, app_id: str, journey_id: str, run_id: str | None) -> int:
    run_filter = "" if run_id is None else " AND run_id = ?"
    params = (app_id, journey_id) + (() if run_id is None else (run_id,))
    return int(
        tx.scalar(
            "SELECT count(*) FROM journey_participants WHERE app_id = ? AND journey_id = ? "
            f"AND activity_id IS NOT NULL{run_filter}",
            params,
        )
    )
