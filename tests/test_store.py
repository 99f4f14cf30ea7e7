"""The store layer on both databases: migrations and the group-commit writer's isolation between writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from clarion.config import Settings
from clarion.services import open_database
from clarion.store import apps as app_store
from clarion.store.database import Transaction
from clarion.store.migrations import LATEST, migrate


def test_migrations_apply_once(settings: Settings) -> None:
    async def run() -> tuple[list[int], list[int], int]:
        db = open_database(settings)
        try:
            first = await db.write(migrate)
            second = await db.write(migrate)
            recorded = await db.read(lambda tx: tx.scalar("SELECT max(version) FROM schema_migrations"))
            return first, second, recorded
        finally:
            db.close()

    first, second, recorded = asyncio.run(run())
    assert first == list(range(1, LATEST + 1))
    assert second == []
    assert recorded == LATEST


def test_a_failing_write_does_not_sink_the_writes_committed_with_it(settings: Settings) -> None:
    """Concurrent writes share one transaction; each runs in its own savepoint."""

    def insert(app_id: str) -> Callable[[Transaction], None]:
        def work(tx: Transaction) -> None:
            app_store.insert(tx, app_id, "n", "2026-11-23T00:00:00.000Z", "{}")

        return work

    def insert_then_fail(tx: Transaction) -> None:
        app_store.insert(tx, "doomed", "n", "2026-11-23T00:00:00.000Z", "{}")
        raise ValueError("refused after writing")

    async def run() -> tuple[list[object], set[str]]:
        db = open_database(settings)
        try:
            await db.write(migrate)
            jobs = [db.write(insert(f"app{i}")) for i in range(50)]
            jobs.insert(25, db.write(insert_then_fail))
            results = await asyncio.gather(*jobs, return_exceptions=True)
            ids = await db.read(lambda tx: {row[0] for row in tx.fetchall("SELECT id FROM apps")})
            return results, ids
        finally:
            db.close()

    results, ids = asyncio.run(run())
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and isinstance(failures[0], ValueError)
    assert ids == {f"app{i}" for i in range(50)}


def test_a_lone_failing_write_leaves_nothing_behind(settings: Settings) -> None:
    def insert_then_fail(tx: Transaction) -> None:
        app_store.insert(tx, "doomed", "n", "2026-11-23T00:00:00.000Z", "{}")
        raise ValueError("refused after writing")

    async def run() -> int:
        db = open_database(settings)
        try:
            await db.write(migrate)
            with pytest.raises(ValueError):
                await db.write(insert_then_fail)
            return await db.read(lambda tx: app_store.count(tx))
        finally:
            db.close()

    assert asyncio.run(run()) == 0
