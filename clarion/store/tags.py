"""Tags of any taggable resource, keyed by the resource part of its ARN (`apps/ID`, `templates/NAME/EMAIL`)."""

from __future__ import annotations

from clarion.store.database import Transaction


def get(tx: Transaction, resource: str) -> dict[str, str]:
    return dict(tx.fetchall("SELECT tag_key, tag_value FROM tags WHERE resource = ? ORDER BY tag_key", (resource,)))


def put(tx: Transaction, resource: str, app_id: str | None, tags: dict[str, str]) -> None:
    tx.insert_rows(
        "INSERT INTO tags (resource, app_id, tag_key, tag_value)",
        [(resource, app_id, key, value) for key, value in tags.items()],
        "ON CONFLICT (resource, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
    )


def remove(tx: Transaction, resource: str, keys: list[str]) -> None:
    if keys:
        listed, params = tx.dialect.one_of("tag_key", keys)
        tx.execute(f"DELETE FROM tags WHERE resource = ? AND {listed}", (resource, *params))
