"""`clarion backup` and `clarion restore` for the embedded store: a folder holding everything a data directory
needs to come back (docs/operations.md, "Backup and restore").

A backup holds a consistent copy of `clarion.sqlite3` taken while the server writes (clarion/store/backup.py), which
holds the stored access keys too; the key that opens stored channel secrets and access keys when it lives in the
data directory; and a manifest with each file's SHA-256. The DuckDB replica is not copied: it is derived from the
store and rebuilt on the first start after a restore. The folder appears under its final name only once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clarion import __version__
from clarion.store.backup import copy_sqlite, schema_of

MANIFEST = "backup.json"
STORE_FILE = "clarion.sqlite3"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    folder: Path
    schema_version: int | None
    files: dict[str, int]  # name -> bytes


def back_up(store: Path, keys: list[Path], target: Path) -> Backup:
    """Copy the store and the key files that exist into the new folder `target`."""
    if not store.exists():
        raise BackupError(f"There is no store at {store} to back up")
    if target.exists():
        raise BackupError(f"{target} already exists; name a new folder for the backup")
    draft = target.with_name(f".{target.name}.partial")
    shutil.rmtree(draft, ignore_errors=True)
    draft.mkdir(mode=0o700, parents=True)
    try:
        schema = copy_sqlite(store, draft / STORE_FILE)
        for key in keys:
            if key.exists():
                shutil.copyfile(key, draft / key.name)
        files = _describe(draft)
        manifest = {
            "clarion_version": __version__,
            "schema_version": schema,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        (draft / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for path in draft.iterdir():
            path.chmod(0o600)
        draft.rename(target)
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    return Backup(target, schema, {name: entry["bytes"] for name, entry in files.items()})


def restore(source: Path, data_dir: Path, replica: Path | None) -> Backup:
    """Put a backup's files into `data_dir`, which must not hold a store yet; checks every file first."""
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{source} is not a Clarion backup (it has no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    expected: dict[str, dict[str, object]] = manifest["files"]
    found = _describe(source, names=list(expected))
    for name, entry in expected.items():
        if found.get(name) != entry:
            raise BackupError(f"{source / name} is missing or differs from the backup's manifest; it was altered")
    schema = schema_of(source / STORE_FILE)  # refuses a store newer than this Clarion before anything is written
    taken = [data_dir / name for name in expected] + ([replica] if replica is not None else [])
    present = [str(path) for path in taken if path.exists()]
    if present:
        raise BackupError(
            f"Restore needs a fresh data directory; these files are in the way: {', '.join(present)} "
            "(move them aside, or restore into another --data-dir)"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in expected:
        draft = data_dir / f".{name}.restoring"
        shutil.copyfile(source / name, draft)
        draft.chmod(0o600)
        os.replace(draft, data_dir / name)
    return Backup(data_dir, schema, {name: int(str(entry["bytes"])) for name, entry in expected.items()})


def _describe(folder: Path, names: list[str] | None = None) -> dict[str, dict[str, object]]:
    paths = [folder / name for name in names] if names is not None else sorted(folder.iterdir())
    return {path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)} for path in paths if path.is_file()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
