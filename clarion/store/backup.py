"""Online copies of the embedded SQLite store, taken while a server keeps writing to it.

SQLite's backup API copies the whole file in one step, inside one read transaction: in WAL mode writers carry on
meanwhile, and the copy is the store exactly as it was at one commit, never half of a group commit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clarion.store.database import SQLITE, Transaction
from clarion.store.migrations import refuse_newer_schema


class DamagedCopy(Exception):
    """The copy failed SQLite's own consistency check."""


def copy_sqlite(source: Path, target: Path) -> int | None:
    """Copy the store at `source` to a new file `target`; return the copy's schema version.

    Raises SchemaTooNew when a newer Clarion migrated the store, DamagedCopy when the copy does not check out.
    """
    origin = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            origin.backup(copy)  # pages=-1: everything in one step, so one consistent snapshot
            return check_copy(copy)
        finally:
            copy.close()
    finally:
        origin.close()


def schema_of(path: Path) -> int | None:
    """The schema version of a store file (a backup's copy before it is restored); checks it as copy_sqlite does."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return check_copy(conn)
    finally:
        conn.close()


def check_copy(conn: sqlite3.Connection) -> int | None:
    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise DamagedCopy(f"SQLite's quick_check of the copy says: {verdict}")
    return refuse_newer_schema(Transaction(conn, SQLITE))
