"""The store layer on both databases: migrations and the group-commit writer's isolation between writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

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


def test_domain_events_are_dispatched_after_their_commit_and_never_for_a_write_that_rolled_back(
    settings: Settings,
) -> None:
    """Group commit puts several writes in one transaction: each write's events follow its own fate."""
    gate = threading.Event()

    def hold_the_writer(tx: Transaction) -> None:
        gate.wait(timeout=30)  # the writes submitted meanwhile queue up and share the next commit
        tx.record("first")

    def insert_and_record(app_id: str) -> Callable[[Transaction], None]:
        def work(tx: Transaction) -> None:
            app_store.insert(tx, app_id, "n", "2026-11-23T00:00:00.000Z", "{}")
            tx.record(app_id)

        return work

    def record_then_fail(tx: Transaction) -> None:
        tx.record("doomed")
        app_store.insert(tx, "doomed", "n", "2026-11-23T00:00:00.000Z", "{}")
        raise ValueError("refused after recording")

    async def run() -> tuple[list[tuple[str, bool]], list[object]]:
        db = open_database(settings)
        try:
            await db.write(migrate)
            dispatched: list[tuple[str, bool]] = []

            async def dispatch(events: Sequence[object]) -> None:
                for event in events:  # a subscriber sees the write it hears about: it has committed
                    visible = await db.read(lambda tx, e=event: app_store.get(tx, str(e)) is not None)
                    dispatched.append((str(event), visible))

            db.dispatch_events(dispatch)
            writes = [hold_the_writer, insert_and_record("a1"), record_then_fail, insert_and_record("a2")]
            waiting = asyncio.gather(*(db.write(work) for work in writes), return_exceptions=True)
            await asyncio.sleep(0)  # every write is now queued for the writer thread, held by the first
            gate.set()
            results = await waiting
            with pytest.raises(RuntimeError, match="only reads"):
                await db.read(lambda tx: tx.record("from a read"))
            return dispatched, results
        finally:
            gate.set()
            db.close()

    dispatched, results = asyncio.run(run())
    assert isinstance(results[2], ValueError)
    assert sorted(dispatched) == [("a1", True), ("a2", True), ("first", False)]  # "first" names no app
