"""Segments and their versions: one `segments` row per segment, one `segment_versions` row per version written."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store.database import Transaction


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """A segment at one version (its latest, unless read by version)."""

    seq: int
    app_id: str
    id: str
    segment_type: str
    latest: int  # the segment's latest version
    created_at: str
    version: int  # the version this row describes
    name: str
    modified_at: str
    definition: str  # JSON {Dimensions?, SegmentGroups?}


_SELECT = (
    "SELECT s.seq, s.app_id, s.id, s.segment_type, s.version, s.created_at, v.version, v.name, v.modified_at, "
    "v.definition FROM segments s JOIN segment_versions v ON v.app_id = s.app_id AND v.segment_id = s.id"
)


def insert(
    tx: Transaction, app_id: str, segment_id: str, segment_type: str, created_at: str, name: str, definition: str
) -> None:
    tx.execute(
        "INSERT INTO segments (app_id, id, segment_type, version, created_at) VALUES (?, ?, ?, 1, ?)",
        (app_id, segment_id, segment_type, created_at),
    )
    _insert_version(tx, app_id, segment_id, 1, name, created_at, definition)


def add_version(
    tx: Transaction, app_id: str, segment_id: str, version: int, name: str, modified_at: str, definition: str
) -> None:
    """Record `version` as the segment's newest; earlier versions stay."""
    tx.execute("UPDATE segments SET version = ? WHERE app_id = ? AND id = ?", (version, app_id, segment_id))
    _insert_version(tx, app_id, segment_id, version, name, modified_at, definition)


def _insert_version(
    tx: Transaction, app_id: str, segment_id: str, version: int, name: str, modified_at: str, definition: str
) -> None:
    tx.execute(
        "INSERT INTO segment_versions (app_id, segment_id, version, name, modified_at, definition) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (app_id, segment_id, version, name, modified_at, definition),
    )


def get(tx: Transaction, app_id: str, segment_id: str, *, lock: bool = False) -> SegmentRow | None:
    """The segment at its latest version; `lock` holds its row until the transaction ends (concurrent updates)."""
    if lock:
        tx.fetchone(
            f"SELECT version FROM segments WHERE app_id = ? AND id = ?{tx.dialect.for_update}", (app_id, segment_id)
        )
    row = tx.fetchone(f"{_SELECT} AND v.version = s.version WHERE s.app_id = ? AND s.id = ?", (app_id, segment_id))
    return SegmentRow(*row) if row else None


def get_version(tx: Transaction, app_id: str, segment_id: str, version: int) -> SegmentRow | None:
    row = tx.fetchone(f"{_SELECT} WHERE s.app_id = ? AND s.id = ? AND v.version = ?", (app_id, segment_id, version))
    return SegmentRow(*row) if row else None


def page(tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[SegmentRow]:
    """A project's segments, latest versions, in creation order after a cursor."""
    rows = tx.fetchall(
        f"{_SELECT} AND v.version = s.version WHERE s.app_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?",
        (app_id, after_seq, limit),
    )
    return [SegmentRow(*row) for row in rows]


def page_versions(tx: Transaction, app_id: str, segment_id: str, after_version: int, limit: int) -> list[SegmentRow]:
    """One segment's versions, oldest first, after a cursor."""
    rows = tx.fetchall(
        f"{_SELECT} WHERE s.app_id = ? AND s.id = ? AND v.version > ? ORDER BY v.version LIMIT ?",
        (app_id, segment_id, after_version, limit),
    )
    return [SegmentRow(*row) for row in rows]


def delete(tx: Transaction, app_id: str, segment_id: str) -> None:
    tx.execute("DELETE FROM segment_versions WHERE app_id = ? AND segment_id = ?", (app_id, segment_id))
    tx.execute("DELETE FROM segments WHERE app_id = ? AND id = ?", (app_id, segment_id))
