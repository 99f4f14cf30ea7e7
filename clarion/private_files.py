"""Files that hold a store's data or a secret: readable by their owner only, in folders only the owner can enter.

The SQLite store, its WAL and shared-memory files, the channel-secrets key and the settings handed to worker
processes all live in the data folder. They are created 0600 in a folder created 0700, and a file Clarion owns is
tightened back to 0600 whenever it is opened, so an install made before this rule catches up at its next start.
An existing data folder keeps the mode its operator gave it (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """The folder, created 0700 (and its missing parents with the default mode) when absent."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """The file, created empty and 0600 when absent, tightened to 0600 when it exists and is ours."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    tighten(path)
    return path


def tighten(path: Path) -> None:
    """Take group and other permissions off a file this process's user owns; others' files are left alone."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    if status.st_mode & 0o077 and status.st_uid == os.getuid():
        os.chmod(path, FILE_MODE)


def write_private_file(path: Path, data: bytes, *, keep_existing: bool = False) -> Path:
    """Write the whole file through a 0600 draft moved into place, so no reader sees it half written.

    `keep_existing`: a file already there wins (processes starting together all end up reading the same one).
    """
    private_folder(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if keep_existing:
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        else:
            os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return path
