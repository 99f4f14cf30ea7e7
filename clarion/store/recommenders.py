"""Recommender configurations: account-level, one row each, the configuration's members as JSON."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class RecommenderRow:
    seq: int
    id: str
    created_at: str
    modified_at: str
    body: str


_SELECT = "SELECT seq, id, created_at, modified_at, body FROM recommenders"


def insert(tx: Transaction, recommender_id: str, created_at: str, body: str) -> None:
    tx.execute(
        "INSERT INTO recommenders (id, created_at, modified_at, body) VALUES (?, ?, ?, ?)",
        (recommender_id, created_at, created_at, body),
    )


def get(tx: Transaction, recommender_id: str) -> RecommenderRow | None:
    row = tx.fetchone(f"{_SELECT} WHERE id = ?", (recommender_id,))
    return RecommenderRow(*row) if row else None


def exists(tx: Transaction, recommender_id: str) -> bool:
    return tx.fetchone("SELECT 1 FROM recommenders WHERE id = ?", (recommender_id,)) is not None


def count(tx: Transaction) -> int:
    return int(tx.scalar("SELECT count(*) FROM recommenders") or 0)


def update(tx: Transaction, recommender_id: str, modified_at: str, body: str) -> bool:
    """Replace a configuration's members; whether it exists."""
    changed = tx.execute(
        "UPDATE recommenders SET body = ?, modified_at = ? WHERE id = ?", (body, modified_at, recommender_id)
    )
    return changed > 0


def delete(tx: Transaction, recommender_id: str) -> None:
    tx.execute("DELETE FROM recommenders WHERE id = ?", (recommender_id,))


def page(tx: Transaction, after_seq: int, limit: int) -> list[RecommenderRow]:
    """Configurations in creation order after a cursor."""
    rows = tx.fetchall(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
    return [RecommenderRow(*row) for row in rows]
