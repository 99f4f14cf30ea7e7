"""What processes sharing a store agree on through it: leases on roles only one may hold, token buckets they all
draw from, and claims on trace-keyed sends. Each is one statement, atomic on both stores (an upsert whose
conditions decide), so no process ever reads a value and writes a decision based on it in two steps.

Times are epoch milliseconds from the callers' clocks: processes on several machines need synchronised clocks
(NTP), as the leases' and buckets' precision is that of the clocks' agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

from clarion.store.database import Transaction


def hold_lease(tx: Transaction, name: str, holder: str, now: int, until: int) -> bool:
    """Take the lease `name` or renew it; True if `holder` holds it until `until`. A lease another holder let run
    out (before `now`) is taken over."""
    row = tx.fetchone(
        "INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "holder = excluded.holder, until_ms = excluded.until_ms "
        "WHERE leases.holder = excluded.holder OR leases.until_ms < ? RETURNING holder",
        (name, holder, until, now),
    )
    return row is not None


def release_lease(tx: Transaction, name: str, holder: str) -> None:
    """Give the lease up at once (a clean shutdown), so another process need not wait for it to run out."""
    tx.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def lease_holder(tx: Transaction, name: str, now: int) -> str | None:
    return tx.scalar("SELECT holder FROM leases WHERE name = ? AND until_ms >= ?", (name, now))


def take_tokens(tx: Transaction, key: str, per_second: float, capacity: float, count: int, now: int) -> float:
    """Reserve `count` tokens of the bucket `key` (refilled at `per_second`, holding at most `capacity`); the
    tokens left, negative when the reservation runs ahead of the refill (the caller waits that long)."""
    refilled = (
        "rate_buckets.tokens + (CASE WHEN excluded.updated_ms > rate_buckets.updated_ms "
        "THEN excluded.updated_ms - rate_buckets.updated_ms ELSE 0 END) * ? / 1000.0"
    )
    return float(
        tx.scalar(
            "INSERT INTO rate_buckets (key, tokens, updated_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            f"tokens = (CASE WHEN {refilled} > ? THEN ? ELSE {refilled} END) - ?, "
            "updated_ms = CASE WHEN excluded.updated_ms > rate_buckets.updated_ms "
            "THEN excluded.updated_ms ELSE rate_buckets.updated_ms END RETURNING tokens",
            (key, capacity - count, now, per_second, capacity, capacity, per_second, count),
        )
    )


def claim_sends(tx: Transaction, app_id: str, keys: Sequence[str], now: int, stale_before: int) -> set[str]:
    """Claim these request keys for sending; the ones this caller got. A key another caller claimed is not given
    out again, unless its claim is older than `stale_before` and its outcome never reached the log (the
    claimant died)."""
    if not keys:
        return set()
    values = ",".join(["(?, ?, ?)"] * len(keys))
    params: list[object] = [value for key in keys for value in (key, app_id, now)]
    rows = tx.fetchall(
        f"INSERT INTO send_claims (request_key, app_id, claimed_at) VALUES {values} ON CONFLICT (request_key) "
        "DO UPDATE SET claimed_at = excluded.claimed_at "
        "WHERE send_claims.done = 0 AND send_claims.claimed_at < ? RETURNING request_key",
        (*params, stale_before),
    )
    return {row[0] for row in rows}


def claims_done(tx: Transaction, keys: Sequence[str]) -> None:
    """The claimed sends' outcomes are logged: their claims are never given out again."""
    if keys:
        listed, params = tx.dialect.one_of("request_key", keys)
        tx.execute(f"UPDATE send_claims SET done = 1 WHERE {listed}", params)
