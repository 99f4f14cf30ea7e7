"""The durable work queue's table: one row per item, leased by moving `available_at` past the lease's end.

An item is ready when `available_at` (epoch ms) has passed. Leasing pushes it to the end of the lease and stamps a
token; ack deletes the row, nack moves `available_at` to the retry time. A holder that dies simply stops
extending, so the item becomes ready again when its lease runs out: redelivery needs no reaper. A NULL
`available_at` marks an item given up on (kept, with its last error, for an operator to look at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    kind: str
    payload: str
    attempts: int


def insert(tx: Transaction, kind: str, payload: str, available_at: int, key: str | None, now: int) -> bool:
    """Add an item; False when an item with the same dedup key is still queued."""
    count = tx.execute(
        "INSERT INTO queue_items (kind, payload, dedup_key, available_at, attempts, created_at) "
        "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (dedup_key) DO NOTHING",
        (kind, payload, key, available_at, now),
    )
    return count == 1


def lease(tx: Transaction, kinds: Sequence[str], limit: int, now: int, until: int, token: str) -> list[QueueRow]:
    """Take up to `limit` ready items of these kinds, oldest due first. PostgreSQL skips rows another process
    is leasing at this moment instead of waiting for it."""
    wanted, params = tx.dialect.one_of("kind", kinds)
    skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect.name == "postgresql" else ""
    rows = tx.fetchall(
        "UPDATE queue_items SET available_at = ?, lease_token = ?, attempts = attempts + 1 WHERE id IN ("
        f"SELECT id FROM queue_items WHERE {wanted} AND available_at <= ? ORDER BY available_at, id LIMIT ?"
        f"{skip_locked}) RETURNING id, kind, payload, attempts",
        (until, token, *params, now, limit),
    )
    return sorted((QueueRow(*row) for row in rows), key=lambda row: row.id)


def delete(tx: Transaction, item_id: int, token: str) -> bool:
    return tx.execute("DELETE FROM queue_items WHERE id = ? AND lease_token = ?", (item_id, token)) == 1


def extend(tx: Transaction, item_id: int, token: str, until: int) -> bool:
    count = tx.execute(
        "UPDATE queue_items SET available_at = ? WHERE id = ? AND lease_token = ?", (until, item_id, token)
    )
    return count == 1


def release(tx: Transaction, item_id: int, token: str, available_at: int | None, error: str | None) -> bool:
    """End a lease without acknowledging: ready again at `available_at` (None: never again)."""
    count = tx.execute(
        "UPDATE queue_items SET available_at = ?, lease_token = NULL, last_error = ? WHERE id = ? AND lease_token = ?",
        (available_at, error, item_id, token),
    )
    return count == 1


def counts(tx: Transaction) -> dict[str, int]:
    """Items per kind still queued or leased (given-up items not included)."""
    rows = tx.fetchall("SELECT kind, count(*) FROM queue_items WHERE available_at IS NOT NULL GROUP BY kind")
    return {kind: int(n) for kind, n in rows}


def buried(tx: Transaction) -> list[tuple[int, str, str, int, str | None]]:
    return [
        (int(r[0]), r[1], r[2], int(r[3]), r[4])
        for r in tx.fetchall(
            "SELECT id, kind, payload, attempts, last_error FROM queue_items WHERE available_at IS NULL ORDER BY id"
        )
    ]
