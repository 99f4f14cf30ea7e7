"""Access keys created with `clarion keys create`: their sealed secrets and scopes, and the revocations."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    access_key_id: str
    secret: str  # sealed (clarion/channels/secrets.py)
    description: str
    scope: str  # JSON: projects, operations, allow_networks, requests_per_second, burst
    created_at: str
    revoked_at: str | None


_COLUMNS = "access_key_id, secret, description, scope, created_at, revoked_at"


def insert(tx: Transaction, row: AccessKeyRow) -> None:
    tx.execute(
        f"INSERT INTO access_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (row.access_key_id, row.secret, row.description, row.scope, row.created_at, row.revoked_at),
    )


def get(tx: Transaction, access_key_id: str) -> AccessKeyRow | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM access_keys WHERE access_key_id = ?", (access_key_id,))
    return AccessKeyRow(*row) if row else None


def live(tx: Transaction) -> list[AccessKeyRow]:
    """The keys not revoked, in creation order."""
    rows = tx.fetchall(
        f"SELECT {_COLUMNS} FROM access_keys WHERE revoked_at IS NULL ORDER BY created_at, access_key_id"
    )
    return [AccessKeyRow(*row) for row in rows]


def revoke(tx: Transaction, access_key_id: str, at: str) -> bool:
    """Mark a live key revoked; False when no live key has that id."""
    changed = tx.execute(
        "UPDATE access_keys SET revoked_at = ? WHERE access_key_id = ? AND revoked_at IS NULL", (at, access_key_id)
    )
    return changed > 0


def version(tx: Transaction) -> tuple[int, int]:
    """(keys, revoked keys): both only grow, so any create or revoke changes the pair; one cheap read per check."""
    row = tx.fetchone("SELECT count(*), count(revoked_at) FROM access_keys")
    return (int(row[0]), int(row[1])) if row else (0, 0)
