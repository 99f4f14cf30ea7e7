"""The store layer on both databases: migrations and the group-commit writer's isolation between writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from clarion.config import Settings
from clarion.services import open_database, open_services
from clarion.store import apps as app_store
from clarion.store import endpoints as endpoint_store
from clarion.store.database import SqliteDatabase, Transaction, WalCheckpoints, connect_sqlite
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


def test_sqlite_truncates_a_wal_that_overlapping_readers_kept_growing(tmp_path: Path) -> None:
    """A reader always inside a transaction keeps SQLite's own checkpoints from ever restarting the WAL; past the
    limit the writer checkpoints it whole and truncates it once no reader needs it, and while one still does it
    waits a bounded time, counts the attempt and goes on."""
    path = tmp_path / "clarion.sqlite3"
    writer, reader = connect_sqlite(path), connect_sqlite(path)
    guard = WalCheckpoints(path, limit_bytes=256 << 10, every_seconds=0.0, wait_ms=20)
    writer.execute("CREATE TABLE filler (body TEXT)")
    try:
        for _ in range(3):  # each commit lands past the reader's snapshot: the WAL cannot be copied whole
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM filler").fetchall()
            writer.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 1000,)] * 200)
            guard.after_commit(writer)
            reader.execute("COMMIT")
        assert guard.outcomes["busy"] >= 1 and guard.outcomes["truncated"] == 0
        assert guard.wal.stat().st_size >= guard.limit_bytes
        guard.after_commit(writer)  # no reader now
        assert guard.outcomes["truncated"] == 1 and guard.wal.stat().st_size == 0
        assert reader.execute("SELECT count(*) FROM filler").fetchone() == (600,)
    finally:
        reader.close()
        writer.close()


def test_busy_checkpoints_are_counted_and_logged_only_while_the_wal_keeps_growing(tmp_path: Path) -> None:
    """Beside another process's readers a busy TRUNCATE is normal: counted, not logged. A WAL that grows by another
    limit while every attempt stays busy is a warning, once per limit of growth and at most every quiet_seconds;
    the truncation that ends it says so."""
    path = tmp_path / "clarion.sqlite3"
    writer, reader = connect_sqlite(path), connect_sqlite(path)
    guard = WalCheckpoints(path, limit_bytes=256 << 10, every_seconds=0.0, wait_ms=0, quiet_seconds=0.0)
    writer.execute("CREATE TABLE filler (body TEXT)")

    def commit(rows: int) -> None:
        """`rows` KB in one transaction (the WAL grows by about that much), then the writer's check."""
        if rows:
            writer.execute("BEGIN")
            writer.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 1000,)] * rows)
            writer.execute("COMMIT")
        guard.after_commit(writer)

    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM filler").fetchall()  # a snapshot no checkpoint may pass, held
        with capture_logs() as logs:
            commit(300)  # past the limit: busy, the first of a row
            for _ in range(5):
                commit(0)  # busy again, the WAL not growing (the other process's readers come and go)
            commit(100)  # grown, but by less than the limit since the first busy attempt
            quiet = [entry for entry in logs if entry["log_level"] != "debug"]
            commit(300)  # past it: a warning
            commit(100)
            guard.quiet_seconds = 3600.0
            commit(300)  # another limit of growth: a warning, then none for an hour
            commit(300)
            reader.execute("COMMIT")
            commit(0)  # the reader let go: truncated
        assert quiet == []
        lines = [entry for entry in logs if entry["log_level"] != "debug"]
        assert [(entry["event"], entry["log_level"]) for entry in lines] == [
            ("wal_checkpoint_stuck", "warning"),
            ("wal_checkpoint_stuck", "warning"),
            ("wal_checkpoint_recovered", "info"),
        ]
        first, second, recovered = lines
        assert first["busy_attempts"] == 8 and first["wal_bytes"] >= 2 * guard.limit_bytes
        assert second["busy_attempts"] == 10 and second["wal_bytes"] >= first["wal_bytes"] + guard.limit_bytes
        assert recovered["busy_attempts"] == 11 and recovered["busy_seconds"] >= 0
        assert guard.outcomes == {"busy": 11, "truncated": 1} and guard.wal.stat().st_size == 0
    finally:
        reader.close()
        writer.close()


def write_filler(tx: Transaction) -> None:
    """About 400 KB of rows: past the WAL limit the tests set."""
    tx.execute("CREATE TABLE IF NOT EXISTS filler (body TEXT)")
    tx.insert_rows("INSERT INTO filler (body)", [("x" * 1000,)] * 400)


def test_the_sqlite_writer_keeps_the_wal_in_bounds(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "clarion.sqlite3")
    db.checkpoints.limit_bytes, db.checkpoints.every_seconds = 256 << 10, 0.0

    async def run() -> None:
        await db.write(write_filler)
        await db.write(lambda tx: None)  # the writer checkpoints after a commit, before its next one

    try:
        asyncio.run(run())
        assert db.checkpoints.outcomes == {"truncated": 1} and db.checkpoints.wal.stat().st_size == 0
    finally:
        db.close()


def test_endpoint_batch_reads_answer_as_the_separate_queries_did(settings: Settings) -> None:
    """The combined reads of an endpoint batch: the project's existence with its attribute filters, and the users'
    attributes with their endpoint counts, on both stores."""

    def fill(tx: Transaction) -> None:
        app_store.insert(tx, "a1", "n", "2026-11-23T00:00:00.000Z", "{}")
        app_store.insert(tx, "a2", "n", "2026-11-23T00:00:00.000Z", "{}")
        endpoint_store.put_attribute_filter(tx, "a1", "endpoint-custom-attributes", '["x*"]')
        rows = [
            endpoint_store.EndpointRow(
                "a1", f"e{i}", f"E{i}", "EMAIL", f"{i}@example.com", "ACTIVE", "NONE", user, 1, "t", "t", "{}"
            )
            for i, user in enumerate(["u1", "u1", "u2", None])
        ]
        endpoint_store.upsert(tx, rows)
        endpoint_store.put_user_attributes(tx, "a1", {"u1": '{"tier":["gold"]}', "u3": "{}"})

    def read(tx: Transaction) -> tuple[object, ...]:
        return (
            endpoint_store.app_attribute_filters(tx, "a1"),
            endpoint_store.app_attribute_filters(tx, "a2"),
            endpoint_store.app_attribute_filters(tx, "missing"),
            endpoint_store.users_and_counts(tx, "a1", ["u1", "u2", "u3", "u4"]),
            endpoint_store.users_and_counts(tx, "a2", ["u1"]),
            endpoint_store.users_and_counts(tx, "a1", []),
        )

    filters, no_filters, missing, users, other_app, nobody = _filled_then_read(settings, fill, read)
    assert filters == {"endpoint-custom-attributes": '["x*"]'}
    assert no_filters == {}
    assert missing is None
    assert users == ({"u1": '{"tier":["gold"]}', "u3": "{}"}, {"u1": 2, "u2": 1})
    assert other_app == ({}, {})
    assert nobody == ({}, {})


def test_opted_out_addresses_come_with_the_projects_existence(settings: Settings) -> None:
    def fill(tx: Transaction) -> None:
        app_store.insert(tx, "a1", "n", "2026-11-23T00:00:00.000Z", "{}")
        app_store.insert(tx, "a2", "n", "2026-11-23T00:00:00.000Z", "{}")
        rows = [
            endpoint_store.EndpointRow("a1", key, key, channel, address, "ACTIVE", opt_out, None, 1, "t", "t", "{}")
            for key, channel, address, opt_out in [
                ("e1", "EMAIL", "ana@example.com", "ALL"),
                ("e2", "SMS", "+14255550100", "NONE"),
                ("e3", "SMS", "+14255550101", "ALL"),
            ]
        ]
        endpoint_store.upsert(tx, rows)

    def read(tx: Transaction) -> tuple[object, ...]:
        asked = ["ana@example.com", "+14255550100", "+14255550101", "+14255550199"]
        return (
            endpoint_store.opted_out_addresses(tx, "a1", asked),
            endpoint_store.opted_out_addresses(tx, "a2", asked),
            endpoint_store.opted_out_addresses(tx, "missing", asked),
        )

    held, none_held, missing = _filled_then_read(settings, fill, read)
    assert held == {("EMAIL", "ana@example.com"), ("SMS", "+14255550101")}
    assert none_held == set()
    assert missing is None


def _filled_then_read(
    settings: Settings, fill: Callable[[Transaction], None], read: Callable[[Transaction], tuple[object, ...]]
) -> tuple[object, ...]:
    """`read`'s answer from a migrated store that `fill` wrote to."""

    async def run() -> tuple[object, ...]:
        db = open_database(settings)
        try:
            await db.write(migrate)
            await db.write(fill)
            return await db.read(read)
        finally:
            db.close()

    return asyncio.run(run())


def test_the_wal_checkpoints_show_in_the_metrics(tmp_path: Path) -> None:
    async def run() -> tuple[dict[str, int], str]:
        services = await open_services(Settings(data_dir=tmp_path / "data", access_log=False))
        try:
            db = services.db
            assert isinstance(db, SqliteDatabase)
            db.checkpoints.limit_bytes, db.checkpoints.every_seconds = 256 << 10, 0.0
            await db.write(write_filler)
            await db.write(lambda tx: None)  # the checkpoint runs after a commit, before the next one
            return dict(db.checkpoints.outcomes), services.metrics.exposition().decode()
        finally:
            await services.aclose()

    outcomes, text = asyncio.run(run())
    # The server's own readers may hold the WAL at that moment: the attempt then counts as busy, not truncated.
    assert sum(outcomes.values()) >= 1
    for outcome, count in outcomes.items():
        assert f'clarion_sqlite_wal_checkpoints_total{{outcome="{outcome}"}} {float(count)}' in text.splitlines()
