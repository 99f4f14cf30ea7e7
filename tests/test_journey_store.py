"""The journey engine's claim and move of participants, on both stores: a batch is leased and moved on in one
statement each, a move holds only under its lease, and a lease that ran out is claimed again marked as such."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from conftest import analysed_database

from clarion.config import Settings
from clarion.services import open_database
from clarion.store import journeys as store
from clarion.store.database import Transaction
from clarion.store.migrations import migrate

T = TypeVar("T")
NOW = 1_800_000_000_000


class Counting:
    """A connection that counts the statements run through it."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.statements = conn, 0

    def execute(self, *args: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args)


def write_counted(settings: Settings, work: Callable[[Transaction], T]) -> tuple[T, int]:
    """Migrate a fresh store, run `work` in one write, and say how many statements it ran."""

    async def run() -> tuple[T, int]:
        db = open_database(settings)
        try:
            await db.write(migrate)

            def counted(tx: Transaction) -> tuple[T, int]:
                counting = Counting(tx._conn)
                return work(Transaction(counting, tx.dialect)), counting.statements

            return await db.write(counted)
        finally:
            db.close()

    return asyncio.run(run())


def rows_of(tx: Transaction) -> dict[str, tuple[Any, ...]]:
    found = tx.fetchall(
        "SELECT endpoint_key, activity_id, due_at, paused_due, waited, attempts, lease_token FROM journey_participants"
    )
    return {row[0]: tuple(row[1:]) for row in found}


def test_a_batch_is_claimed_and_moved_in_one_statement_each_and_only_under_its_lease(settings: Settings) -> None:
    def work(tx: Transaction) -> dict[str, Any]:
        entrants = [(f"e{n:04}", 1, f"E{n:04}") for n in range(600)]
        store.add_participants(tx, "app", "j", "run", "a", NOW, entrants)
        store.add_participants(tx, "app", "j", "run", "a", NOW + 60_000, [("later", 1, "LATER")])
        counting = tx._conn  # the Counting connection
        before = counting.statements
        first = store.claim_due(tx, NOW, 500, "t1", NOW + 30_000)
        claim_statements = counting.statements - before
        second = store.claim_due(tx, NOW, 500, "t2", NOW + 30_000)  # the rest; the leased ones are not due
        none_left = store.claim_due(tx, NOW, 500, "t3", NOW + 30_000)
        steps = [store.Step(p.endpoint_key, p.entry, "b", NOW + 10**8, True, 2) for p in first[:400]]
        steps += [store.Step(p.endpoint_key, p.entry, None, NOW, False, 0) for p in first[400:]]
        steps.append(store.Step(second[0].endpoint_key, 1, "b", NOW, False, 0))  # another stepper's lease
        before = counting.statements
        held = store.move(tx, "app", "j", "t1", steps)
        move_statements = counting.statements - before
        paused = store.move(
            tx, "app", "j", "t2", [store.Step(second[1].endpoint_key, 1, "c", NOW + 5, True, 0)], paused=True
        )
        after_moves = rows_of(tx)
        # t2's lease runs out with 99 participants in hand: the next claim takes them again, marked reclaimed.
        again = store.claim_due(tx, NOW + 30_000, 500, "t4", NOW + 60_000)
        return {
            "first": first,
            "second": second,
            "none_left": none_left,
            "claim_statements": claim_statements,
            "held": held,
            "move_statements": move_statements,
            "paused": paused,
            "rows": after_moves,
            "again": again,
        }

    result, _ = write_counted(settings, lambda tx: work(tx))
    first, second, rows = result["first"], result["second"], result["rows"]
    assert result["claim_statements"] == 1 and result["move_statements"] == 1
    assert len(first) == 500 and len(second) == 100 and result["none_left"] == []
    assert {p.endpoint_key for p in first} | {p.endpoint_key for p in second} == {f"e{n:04}" for n in range(600)}
    assert not any(p.retried for p in first + second)
    assert {(p.activity_id, p.run_id, p.endpoint_id[1:], p.attempts) for p in first[:1]} == {
        ("a", "run", first[0].endpoint_key[1:], 0)
    }
    assert result["held"] == {(p.endpoint_key, 1) for p in first}  # not the participant t2 holds
    assert {rows[p.endpoint_key] for p in first[:400]} == {("b", NOW + 10**8, None, 1, 2, None)}
    assert {rows[p.endpoint_key] for p in first[400:]} == {(None, None, None, 0, 0, None)}  # left: no timer
    assert rows[second[0].endpoint_key] == ("a", NOW + 30_000, None, 0, 0, "t2")  # untouched by t1's move
    assert result["paused"] == {(second[1].endpoint_key, 1)}
    assert rows[second[1].endpoint_key] == ("c", None, NOW + 5, 1, 0, None)  # its timer set aside
    assert rows["later"][1] == NOW + 60_000
    again = result["again"]
    assert {p.endpoint_key for p in again} == {p.endpoint_key for p in second if p != second[1]}
    assert all(p.retried for p in again)


def test_a_move_larger_than_one_statements_parameters_moves_everyone(settings: Settings) -> None:
    """SQLite binds at most 32,766 values a statement: a bigger batch goes in several; PostgreSQL's arrays in one."""
    count = 6_000

    def work(tx: Transaction) -> tuple[set[tuple[str, int]], int]:
        store.add_participants(tx, "app", "j", "run", "a", NOW, [(f"e{n}", 1, f"e{n}") for n in range(count)])
        claimed = store.claim_due(tx, NOW, count, "t", NOW + 30_000)
        held = store.move(tx, "app", "j", "t", [store.Step(p.endpoint_key, 1, "b", NOW + 7, False, 0) for p in claimed])
        return held, int(tx.scalar("SELECT count(*) FROM journey_participants WHERE activity_id = 'b'"))

    (held, at_b), _ = write_counted(settings, work)
    assert len(held) == count and at_b == count


def test_failed_steps_are_retried_or_given_up_in_one_statement_and_only_under_their_lease(settings: Settings) -> None:
    """A group whose step raised: each participant tried again at its own time (set aside while the journey is
    paused) or given up on, its step marked failed, in one statement; a lost lease changes nothing. And whether a
    pass has anything to claim is a read: nothing due, no write."""

    def work(tx: Transaction) -> dict[str, Any]:
        store.add_participants(tx, "app", "j", "run", "a", NOW, [(f"e{n}", 1, f"E{n}") for n in range(4)])
        store.add_participants(tx, "app", "j", "run", "a", NOW + 60_000, [("later", 1, "LATER")])
        claimed = {p.endpoint_key: p for p in store.claim_due(tx, NOW, 10, "t1", NOW + 30_000)}
        nothing_due = not store.any_due(tx, NOW)  # the leased ones are due only when their lease runs out
        counting = tx._conn
        before = counting.statements
        failed = [("e0", 1, NOW + 1_000), ("e1", 1, None), ("e2", 1, NOW + 2_000)]
        changed = store.fail_steps(tx, "app", "j", "t1", failed)
        statements = counting.statements - before
        lost = store.fail_steps(tx, "app", "j", "someone-else", [("e3", 1, None)])
        paused = store.fail_steps(tx, "app", "j", "t1", [("e3", 1, NOW + 5_000)], paused=True)
        rows = {
            key: tuple(rest)
            for key, *rest in tx.fetchall(
                "SELECT endpoint_key, activity_id, failed_activity, due_at, paused_due, failures, lease_token "
                "FROM journey_participants"
            )
        }
        return {
            "claimed": sorted(claimed),
            "nothing_due": nothing_due,
            "changed": changed,
            "statements": statements,
            "lost": lost,
            "paused": paused,
            "rows": rows,
            "due_later": store.any_due(tx, NOW + 60_000),
        }

    result, _ = write_counted(settings, work)
    assert result["claimed"] == ["e0", "e1", "e2", "e3"] and result["nothing_due"]
    assert result["changed"] == {("e0", 1), ("e1", 1), ("e2", 1)} and result["statements"] == 1
    assert result["lost"] == set() and result["paused"] == {("e3", 1)}
    rows = result["rows"]
    assert rows["e0"] == ("a", None, NOW + 1_000, None, 1, None)  # tried again at its time
    assert rows["e1"] == (None, "a", None, None, 1, None)  # given up: it left, its step marked failed
    assert rows["e2"] == ("a", None, NOW + 2_000, None, 1, None)
    assert rows["e3"] == ("a", None, None, NOW + 5_000, 1, None)  # paused: the retry set aside
    assert rows["later"][2] == NOW + 60_000 and result["due_later"]


def test_the_due_probe_reads_the_due_time_index_even_in_a_generic_plan(settings: Settings) -> None:
    """An idle pass's probe must stay a range of `journey_participants_due` however many wait: PostgreSQL plans a
    statement prepared after five runs generically (unknown bound: a third of the rows due), where a scan would
    cost every pass a read of the whole table."""

    def load(tx: Transaction) -> None:
        week = NOW + 7 * 86_400_000
        store.add_participants(tx, "app", "j", "run", "week", week, [(f"e{n}", 1, f"E{n}") for n in range(20_000)])

    def plan(tx: Transaction) -> str:
        if tx.dialect.name == "sqlite":
            return " ".join(str(row[-1]) for row in tx.fetchall("EXPLAIN QUERY PLAN " + store.DUE_PROBE, (NOW,)))
        tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        tx.execute("PREPARE due_probe(bigint) AS " + store.DUE_PROBE.replace("?", "$1"))
        try:
            return " ".join(str(row[0]) for row in tx.fetchall(f"EXPLAIN EXECUTE due_probe({NOW})"))
        finally:
            tx.execute("DEALLOCATE due_probe")

    with analysed_database(settings, load) as db:
        text = asyncio.run(db.write(plan))
    assert "journey_participants_due" in text and "Seq Scan" not in text and "SCAN journey_participants" not in text, (
        text
    )
