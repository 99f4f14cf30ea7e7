"""Removing rows past their retention in small batches: each call is one short write, so writers wait for at most one
batch, and the pruner yields between batches (clarion/analytics/retention.py runs them)."""

from __future__ import annotations

from clarion.store import kpi_rollup
from clarion.store import streams as stream_store
from clarion.store.database import Transaction


def app_ids(tx: Transaction) -> list[str]:
    return [row[0] for row in tx.fetchall("SELECT id FROM apps ORDER BY seq")]


def prune_events(tx: Transaction, app_id: str, before_ms: int, limit: int) -> int:
    """Up to `limit` of the project's events that happened and arrived before `before_ms` (the oldest first, by the
    `events_by_time` index). Events the project's event stream has not shipped yet stay, however old. The KPI
    rollups' hours before `before_ms` go too."""
    kpi_rollup.prune(tx, app_id, before_ms)
    held = ""
    params: list[object] = [app_id, before_ms, before_ms]
    stream = stream_store.get(tx, app_id)
    if stream is not None:
        held = " AND (change_seq, seq) <= (?, ?)"
        params.extend(stream.cursor)
    return tx.execute(
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE app_id = ? AND event_at < ? AND arrival_at < ?"
        f"{held} ORDER BY event_at LIMIT ?)",
        (*params, limit),
    )


def prune_messages(tx: Transaction, app_id: str, before_iso: str, limit: int) -> int:
    """Up to `limit` of the project's logged messages created before `before_iso`: direct sends, and messages of
    campaigns and journeys that no longer exist. A live campaign's or journey's messages stay, because its message
    limits (a campaign's Limits.Total, a journey's TotalCap) count them."""
    return tx.execute(
        "DELETE FROM messages WHERE message_id IN (SELECT m.message_id FROM messages m "
        "WHERE m.app_id = ? AND m.created_at < ? "
        "AND (m.campaign_id IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM campaigns c WHERE c.app_id = m.app_id AND c.id = m.campaign_id)) "
        "AND (m.journey_id IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM journeys j WHERE j.app_id = m.app_id AND j.id = m.journey_id)) "
        "ORDER BY m.created_at LIMIT ?)",
        (app_id, before_iso, limit),
    )


def prune_tombstones(tx: Transaction, before_ms: int, limit: int) -> int:
    """About `limit` change-feed tombstones recorded before `before_ms` (whole change stamps at a time), and the
    highest stamp removed noted in `change_feed` ('pruned')."""
    upto = tx.scalar(
        "SELECT max(change_seq) FROM (SELECT change_seq FROM change_tombstones WHERE recorded_at < ? "
        "ORDER BY change_seq LIMIT ?) t",
        (before_ms, limit),
    )
    if upto is None:
        return 0
    tx.execute("UPDATE change_feed SET seq = ? WHERE name = 'pruned' AND seq < ?", (upto, upto))
    return tx.execute("DELETE FROM change_tombstones WHERE change_seq <= ? AND recorded_at < ?", (upto, before_ms))
