"""Projects (Pinpoint "apps") and their settings."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store import changes
from clarion.store.database import Transaction

# Every table holding project-scoped rows; deleting a project empties them all.
PROJECT_TABLES = (
    "endpoints",
    "users",
    "app_names",
    "attribute_filters",
    "events",
    "kpi_hourly",
    "kpi_recipients",
    "tags",
    "segments",
    "segment_versions",
    "campaigns",
    "campaign_versions",
    "campaign_activities",
    "campaign_runs",
    "messages",
    "inapp_messages",
    "jobs",
    "job_pieces",
    "segment_imports",
    "channels",
    "otp_codes",
    "otp_sends",
    "event_streams",
    "journeys",
    "journey_runs",
    "journey_participants",
    "journey_messages",
    "journey_outcomes",
    "journey_metrics",
    "journey_inbox",
    "send_claims",
)


@dataclass(frozen=True, slots=True)
class AppRow:
    seq: int
    id: str
    name: str
    created_at: str
    settings: str
    settings_modified_at: str


_COLUMNS = "seq, id, name, created_at, settings, settings_modified_at"


def insert(tx: Transaction, app_id: str, name: str, created_at: str, settings: str) -> None:
    tx.execute(
        "INSERT INTO apps (id, name, created_at, settings, settings_modified_at) VALUES (?, ?, ?, ?, ?)",
        (app_id, name, created_at, settings, created_at),
    )


def get(tx: Transaction, app_id: str) -> AppRow | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM apps WHERE id = ?", (app_id,))
    return AppRow(*row) if row else None


def page(tx: Transaction, after_seq: int, limit: int, only: frozenset[str] | None) -> list[AppRow]:
    """Apps in creation order after a cursor; `only` restricts to the ids a caller's key may see."""
    if only is not None:
        if not only:
            return []
        allowed, params = tx.dialect.one_of("id", sorted(only))
        rows = tx.fetchall(
            f"SELECT {_COLUMNS} FROM apps WHERE seq > ? AND {allowed} ORDER BY seq LIMIT ?", (after_seq, *params, limit)
        )
    else:
        rows = tx.fetchall(f"SELECT {_COLUMNS} FROM apps WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
    return [AppRow(*row) for row in rows]


def count(tx: Transaction) -> int:
    return int(tx.scalar("SELECT count(*) FROM apps"))


def delete(tx: Transaction, app_id: str) -> None:
    changes.record_deleted(tx, changes.next_seq(tx), app_id, "app", [""])
    for table in PROJECT_TABLES:
        tx.execute(f"DELETE FROM {table} WHERE app_id = ?", (app_id,))
    tx.execute("DELETE FROM apps WHERE id = ?", (app_id,))


def update_settings(tx: Transaction, app_id: str, settings: str, modified_at: str) -> None:
    tx.execute("UPDATE apps SET settings = ?, settings_modified_at = ? WHERE id = ?", (settings, modified_at, app_id))
