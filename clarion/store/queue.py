"""The durable work queue's table: one row per item, leased by moving `available_at` past the lease's end.

An item is ready when `available_at` (epoch ms) has passed. Leasing pushes it to the end of the lease and stamps a
token; ack deletes the row, nack moves `available_at` to the retry time. A holder that dies simply stops
extending, so the item becomes ready again when its lease runs out: redelivery needs no reaper. Ready items are
leased in `fair_at` order, which clarion/queue/work_queue.py sets so that projects take turns. A buried item
(given up on) keeps its row with `available_at` and `fair_at` NULL, its last error and `buried_at`, for an
operator to look at.
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
    app_id: str


@dataclass(frozen=True, slots=True)
class BuriedRow:
    id: int
    kind: str
    app_id: str
    payload: str
    attempts: int
    error: str
    buried_at: int


def lane_end(tx: Transaction, app_id: str, bound: int) -> int | None:
    """The latest place a project's queued items hold in the fair order, looking no further than `bound`."""
    return tx.scalar(
        "SELECT fair_at FROM queue_items WHERE app_id = ? AND fair_at <= ? ORDER BY fair_at DESC LIMIT 1",
        (app_id, bound),
    )


def insert(
    tx: Transaction, kind: str, payload: str, app_id: str, available_at: int, fair_at: int, key: str | None, now: int
) -> bool:
    """Add an item; False when an item with the same dedup key is still queued."""
    count = tx.execute(
        "INSERT INTO queue_items (kind, payload, app_id, dedup_key, available_at, fair_at, attempts, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (dedup_key) DO NOTHING",
        (kind, payload, app_id, key, available_at, fair_at, now),
    )
    return count == 1


def lease(
    tx: Transaction,
    kinds: Sequence[str],
    limit: int,
    now: int,
    until: int,
    token: str,
    skip_projects: Sequence[str] = (),
) -> list[QueueRow]:
    """Take up to `limit` ready items of these kinds, first in the fair order, none of `skip_projects`.
    PostgreSQL skips rows another process is leasing at this moment instead of waiting for it."""
    # One kind (the campaign delivery workers): an equality lets PostgreSQL walk the (kind, fair_at) index in order,
    # where `= ANY(...)` has it sort every ready item of the kind for each lease.
    wanted, params = ("kind = ?", [kinds[0]]) if len(kinds) == 1 else tx.dialect.one_of("kind", kinds)
    if skip_projects:
        skipped, more = tx.dialect.none_of("app_id", skip_projects)
        wanted, params = f"{wanted} AND {skipped}", [*params, *more]
    skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect.name == "postgresql" else ""
    # The limit is written into the statement: with it as a parameter, PostgreSQL's generic plan for the prepared
    # statement expects many rows and joins them by scanning the whole table on every lease.
    rows = tx.fetchall(
        "UPDATE queue_items SET available_at = ?, lease_token = ?, attempts = attempts + 1 WHERE id IN ("
        f"SELECT id FROM queue_items WHERE {wanted} AND available_at <= ? ORDER BY fair_at, id LIMIT {int(limit)}"
        f"{skip_locked}) RETURNING id, kind, payload, attempts, app_id",
        (until, token, *params, now),
    )
    return sorted((QueueRow(*row) for row in rows), key=lambda row: row.id)


def delete(tx: Transaction, item_id: int, token: str) -> bool:
    return tx.execute("DELETE FROM queue_items WHERE id = ? AND lease_token = ?", (item_id, token)) == 1


def extend(tx: Transaction, item_id: int, token: str, until: int) -> bool:
    count = tx.execute(
        "UPDATE queue_items SET available_at = ? WHERE id = ? AND lease_token = ?", (until, item_id, token)
    )
    return count == 1


def release(tx: Transaction, item_id: int, token: str, available_at: int, error: str | None) -> bool:
    """End a lease without acknowledging: ready again at `available_at`, and not earlier in the fair order."""
    count = tx.execute(
        "UPDATE queue_items SET available_at = ?, fair_at = CASE WHEN fair_at < ? THEN ? ELSE fair_at END, "
        "lease_token = NULL, last_error = ? WHERE id = ? AND lease_token = ?",
        (available_at, available_at, available_at, error, item_id, token),
    )
    return count == 1


def bury(tx: Transaction, item_id: int, token: str, error: str, now: int) -> bool:
    """Set the item aside for good, with its reason."""
    count = tx.execute(
        "UPDATE queue_items SET available_at = NULL, fair_at = NULL, lease_token = NULL, last_error = ?, "
        "buried_at = ? WHERE id = ? AND lease_token = ?",
        (error, now, item_id, token),
    )
    return count == 1


def counts(tx: Transaction) -> dict[str, int]:
    """Items per kind still queued or leased (given-up items not included)."""
    rows = tx.fetchall("SELECT kind, count(*) FROM queue_items WHERE available_at IS NOT NULL GROUP BY kind")
    return {kind: int(n) for kind, n in rows}


@dataclass(frozen=True, slots=True)
class KindState:
    kind: str
    waiting: int  # queued or leased, not given up
    oldest_due: int | None  # epoch ms the longest-waiting due item became due
    buried: int


def state(tx: Transaction, now: int) -> list[KindState]:
    """Per kind: items waiting or running, when the longest-waiting due one became due, items given up on."""
    rows = tx.fetchall(
        "SELECT kind, SUM(CASE WHEN available_at IS NOT NULL THEN 1 ELSE 0 END), "
        "MIN(CASE WHEN available_at <= ? THEN available_at END), "
        "SUM(CASE WHEN available_at IS NULL THEN 1 ELSE 0 END) FROM queue_items GROUP BY kind",
        (now,),
    )
    return [KindState(kind, int(w), None if due is None else int(due), int(b)) for kind, w, due, b in rows]


def buried(tx: Transaction, app_id: str | None, limit: int) -> list[BuriedRow]:
    """Buried items, the latest first; one project's, or every project's."""
    where, params = ("AND app_id = ? ", [app_id]) if app_id is not None else ("", [])
    rows = tx.fetchall(
        "SELECT id, kind, app_id, payload, attempts, last_error, COALESCE(buried_at, created_at) FROM queue_items "
        f"WHERE available_at IS NULL {where}ORDER BY buried_at DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    return [BuriedRow(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5] or "", int(r[6])) for r in rows]
