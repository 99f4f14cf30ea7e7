"""SQL for resources kept as one head row plus one row per version (segments, campaigns).

The head row holds what does not change between versions (id, creation time, the latest version number, plus a
few resource-specific columns); each version row holds the name, the modification time and the definition as
written, as JSON. Reads return plain tuples in the order `head columns..., version columns...`, which each
resource's store module wraps in its own row type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.store.database import Row, Transaction


class VersionedTable:
    def __init__(self, head: str, versions: str, key: str, extra: Sequence[str] = ()) -> None:
        self.head = head
        self.versions = versions
        self.key = key  # the versions table's column naming the resource
        self.extra = tuple(extra)
        extra_columns = "".join(f"h.{column}, " for column in self.extra)
        self._select = (
            f"SELECT h.seq, h.app_id, h.id, {extra_columns}h.version, h.created_at, "
            f"v.version, v.name, v.modified_at, v.definition "
            f"FROM {head} h JOIN {versions} v ON v.app_id = h.app_id AND v.{key} = h.id"
        )

    @property
    def select_latest(self) -> str:
        """SELECT of every resource at its latest version; the caller appends WHERE on `h.` columns."""
        return f"{self._select} AND v.version = h.version"

    def insert(
        self, tx: Transaction, app_id: str, resource_id: str, created_at: str, name: str, definition: str, **extra: Any
    ) -> None:
        columns = "".join(f", {column}" for column in self.extra)
        marks = ", ?" * len(self.extra)
        tx.execute(
            f"INSERT INTO {self.head} (app_id, id, version, created_at{columns}) VALUES (?, ?, 1, ?{marks})",
            (app_id, resource_id, created_at, *(extra[column] for column in self.extra)),
        )
        self._insert_version(tx, app_id, resource_id, 1, name, created_at, definition)

    def add_version(
        self, tx: Transaction, app_id: str, resource_id: str, version: int, name: str, modified_at: str, definition: str
    ) -> None:
        """Record `version` as the newest; earlier versions stay."""
        tx.execute(f"UPDATE {self.head} SET version = ? WHERE app_id = ? AND id = ?", (version, app_id, resource_id))
        self._insert_version(tx, app_id, resource_id, version, name, modified_at, definition)

    def _insert_version(
        self, tx: Transaction, app_id: str, resource_id: str, version: int, name: str, modified_at: str, definition: str
    ) -> None:
        tx.execute(
            f"INSERT INTO {self.versions} (app_id, {self.key}, version, name, modified_at, definition) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (app_id, resource_id, version, name, modified_at, definition),
        )

    def get(self, tx: Transaction, app_id: str, resource_id: str, *, lock: bool = False) -> Row | None:
        """The resource at its latest version; `lock` holds its head row until the transaction ends."""
        if lock:
            tx.fetchone(
                f"SELECT version FROM {self.head} WHERE app_id = ? AND id = ?{tx.dialect.for_update}",
                (app_id, resource_id),
            )
        return tx.fetchone(
            f"{self._select} AND v.version = h.version WHERE h.app_id = ? AND h.id = ?", (app_id, resource_id)
        )

    def get_version(self, tx: Transaction, app_id: str, resource_id: str, version: int) -> Row | None:
        return tx.fetchone(
            f"{self._select} WHERE h.app_id = ? AND h.id = ? AND v.version = ?", (app_id, resource_id, version)
        )

    def page(self, tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[Row]:
        """A project's resources at their latest versions, in creation order after a cursor."""
        return tx.fetchall(
            f"{self._select} AND v.version = h.version WHERE h.app_id = ? AND h.seq > ? ORDER BY h.seq LIMIT ?",
            (app_id, after_seq, limit),
        )

    def page_versions(
        self, tx: Transaction, app_id: str, resource_id: str, after_version: int, limit: int
    ) -> list[Row]:
        """One resource's versions, oldest first, after a cursor."""
        return tx.fetchall(
            f"{self._select} WHERE h.app_id = ? AND h.id = ? AND v.version > ? ORDER BY v.version LIMIT ?",
            (app_id, resource_id, after_version, limit),
        )

    def delete(self, tx: Transaction, app_id: str, resource_id: str) -> None:
        tx.execute(f"DELETE FROM {self.versions} WHERE app_id = ? AND {self.key} = ?", (app_id, resource_id))
        tx.execute(f"DELETE FROM {self.head} WHERE app_id = ? AND id = ?", (app_id, resource_id))
