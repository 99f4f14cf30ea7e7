"""The append-only event log that segments, KPIs and exports read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store import changes
from clarion.store.database import Transaction


@dataclass(slots=True)
class EventRow:
    app_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    event_at: int  # epoch ms, the client's Timestamp
    arrival_at: int  # epoch ms, when Clarion accepted it
    session_id: str | None
    doc: str  # the event's wire fields, JSON


def append(tx: Transaction, rows: Sequence[EventRow]) -> None:
    """Insert events; one already stored under the same (endpoint, event id) is a retry and is kept as it was."""
    if not rows:
        return
    seq = changes.next_seq(tx)
    tx.insert_rows(
        "INSERT INTO events (app_id, endpoint_id, event_id, event_type, event_at, arrival_at, session_id, doc, "
        "change_seq)",
        [
            (r.app_id, r.endpoint_id, r.event_id, r.event_type, r.event_at, r.arrival_at, r.session_id, r.doc, seq)
            for r in rows
        ],
        "ON CONFLICT (app_id, endpoint_id, event_id) DO NOTHING",
    )


def recent(tx: Transaction, app_id: str, limit: int, endpoint_id: str | None = None) -> list[EventRow]:
    """Newest events first; the CLI and tests read the log through this."""
    where, params = "app_id = ?", [app_id]
    if endpoint_id is not None:
        where += " AND endpoint_id = ?"
        params.append(endpoint_id)
    rows = tx.fetchall(
        "SELECT app_id, endpoint_id, event_id, event_type, event_at, arrival_at, session_id, doc FROM events "
        f"WHERE {where} ORDER BY seq DESC LIMIT ?",
        (*params, limit),
    )
    return [EventRow(*row) for row in rows]


def count(tx: Transaction, app_id: str) -> int:
    return int(tx.scalar("SELECT count(*) FROM events WHERE app_id = ?", (app_id,)))


def exists(tx: Transaction, app_id: str, endpoint_id: str, event_id: str) -> bool:
    row = tx.fetchone(
        "SELECT 1 FROM events WHERE app_id = ? AND endpoint_id = ? AND event_id = ?", (app_id, endpoint_id, event_id)
    )
    return row is not None


def doc(tx: Transaction, app_id: str, endpoint_id: str, event_id: str) -> str | None:
    """One event's document (JSON), by its key."""
    return tx.scalar(
        "SELECT doc FROM events WHERE app_id = ? AND endpoint_id = ? AND event_id = ?", (app_id, endpoint_id, event_id)
    )


def latest_at(tx: Transaction, app_id: str, endpoint_id: str, event_types: Sequence[str]) -> int | None:
    """When the endpoint's latest event of these types happened (epoch ms), or None."""
    clause, params = tx.dialect.one_of("event_type", event_types)
    return tx.scalar(
        f"SELECT max(event_at) FROM events WHERE app_id = ? AND endpoint_id = ? AND {clause}",
        (app_id, endpoint_id, *params),
    )
