"""Follow long work (an import job, a campaign run) from the CLI with a progress bar, reading the store.

Each command supplies how to read one snapshot; this module owns the loop, the bar and the exit codes, so that
every `clarion ... watch` looks and behaves the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from clarion.config import Settings
from clarion.services import open_database
from clarion.store.database import Database

MISSING = 2  # exit status when there is nothing to watch


@dataclass(frozen=True, slots=True)
class Snapshot:
    description: str
    completed: int
    total: int | None  # None while unknown (the bar spins)
    detail: str  # shown after the counts
    finished: bool
    succeeded: bool = True
    notes: list[str] = field(default_factory=list)  # printed once at the end (failures, metrics)


Reader = Callable[[Database], Awaitable[Snapshot | None]]


async def follow(db: Database, read: Reader, interval: float, console: Console, missing: str) -> int:
    snapshot = await read(db)
    if snapshot is None:
        console.print(f"[red]{missing}[/red]")
        return MISSING
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(snapshot.description, total=None, detail="")
        while True:
            bar.update(
                task,
                description=snapshot.description,
                completed=snapshot.completed,
                total=snapshot.total,
                detail=snapshot.detail,
            )
            if snapshot.finished:
                break
            await asyncio.sleep(interval)
            snapshot = await read(db) or snapshot
    for note in snapshot.notes:
        console.print(f"  {note}", markup=False)
    return 0 if snapshot.succeeded else 1


def watch(settings: Settings, read: Reader, interval: float, console: Console, missing: str) -> int:
    """Follow until finished: exit status 0 when it succeeded, 1 when it failed, 2 when there is no such thing."""

    async def run() -> int:
        db = open_database(settings)
        try:
            return await follow(db, read, interval, console, missing)
        finally:
            db.close()

    return asyncio.run(run())
