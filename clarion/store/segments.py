"""Segments and their versions: one `segments` row per segment, one `segment_versions` row per version written."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store import jobs
from clarion.store.database import Transaction
from clarion.store.versioned import VersionedTable


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


TABLE = VersionedTable("segments", "segment_versions", "segment_id", extra=("segment_type",))


def insert(
    tx: Transaction, app_id: str, segment_id: str, segment_type: str, created_at: str, name: str, definition: str
) -> None:
    TABLE.insert(tx, app_id, segment_id, created_at, name, definition, segment_type=segment_type)


def add_version(
    tx: Transaction, app_id: str, segment_id: str, version: int, name: str, modified_at: str, definition: str
) -> None:
    TABLE.add_version(tx, app_id, segment_id, version, name, modified_at, definition)


def get(tx: Transaction, app_id: str, segment_id: str, *, lock: bool = False) -> SegmentRow | None:
    row = TABLE.get(tx, app_id, segment_id, lock=lock)
    return SegmentRow(*row) if row else None


def get_version(tx: Transaction, app_id: str, segment_id: str, version: int) -> SegmentRow | None:
    row = TABLE.get_version(tx, app_id, segment_id, version)
    return SegmentRow(*row) if row else None


def page(tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[SegmentRow]:
    return [SegmentRow(*row) for row in TABLE.page(tx, app_id, after_seq, limit)]


def page_versions(tx: Transaction, app_id: str, segment_id: str, after_version: int, limit: int) -> list[SegmentRow]:
    return [SegmentRow(*row) for row in TABLE.page_versions(tx, app_id, segment_id, after_version, limit)]


def set_definition(tx: Transaction, app_id: str, segment_id: str, version: int, definition: str) -> None:
    """Rewrite one version's definition in place: an import job fills in its segment's size when it ends."""
    tx.execute(
        "UPDATE segment_versions SET definition = ? WHERE app_id = ? AND segment_id = ? AND version = ?",
        (definition, app_id, segment_id, version),
    )


def delete(tx: Transaction, app_id: str, segment_id: str) -> None:
    jobs.clear_members(tx, app_id, segment_id)
    TABLE.delete(tx, app_id, segment_id)
