"""The durable work queue on both stores: leases, expiry and redelivery, nack delays, dedup keys, the worker.

Time is a FixedClock moved by the tests: lease expiry and retry delays are checked without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from clarion.clock import FixedClock
from clarion.config import Settings
from clarion.queue.config import QueueSettings
from clarion.queue.work_queue import Lease, LeaseLost, StoreQueue
from clarion.queue.worker import Worker, retry_delay
from clarion.services import open_database
from clarion.store.database import Database
from clarion.store.migrations import migrate

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

T = TypeVar("T")
START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def run(settings: Settings, scenario: Callable[[StoreQueue, FixedClock], Awaitable[T]]) -> T:
    """Run a scenario against a fresh queue on the test's store."""

    async def main() -> T:
        db = open_database(settings)
        try:
            await db.write(migrate)
            clock = FixedClock(START)
            return await scenario(StoreQueue(db, clock), clock)
        finally:
            db.close()

    return asyncio.run(main())


def test_lease_hides_an_item_until_ack_removes_it(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        assert await queue.enqueue("send", {"batch": [1, 2, 3]})
        [lease] = await queue.lease(["send"], 10, visibility=30)
        assert (lease.kind, lease.payload, lease.attempts) == ("send", {"batch": [1, 2, 3]}, 1)
        assert await queue.lease(["send"], 10, visibility=30) == []  # invisible while leased
        assert await queue.ack(lease)
        clock.at += timedelta(minutes=5)
        assert await queue.lease(["send"], 10, visibility=30) == []  # acked items never come back
        assert await queue.counts() == {}

    run(settings, scenario)


def test_an_expired_lease_is_redelivered_and_the_old_holder_cannot_ack(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        await queue.enqueue("import", {"job": "j1"})
        [first] = await queue.lease(["import"], 1, visibility=30)
        clock.at += timedelta(seconds=29)
        assert await queue.lease(["import"], 1, visibility=30) == []
        clock.at += timedelta(seconds=2)  # the holder died: its lease ran out
        [second] = await queue.lease(["import"], 1, visibility=30)
        assert second.id == first.id and second.attempts == 2
        assert not await queue.ack(first)  # a stale holder's ack changes nothing
        with pytest.raises(LeaseLost):
            await queue.extend(first, 30)
        assert await queue.ack(second)

    run(settings, scenario)


def test_extending_a_lease_keeps_the_item_from_other_workers(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        await queue.enqueue("import", {})
        [lease] = await queue.lease(["import"], 1, visibility=30)
        for _ in range(3):
            clock.at += timedelta(seconds=20)
            await queue.extend(lease, 30)
            assert await queue.lease(["import"], 1, visibility=30) == []
        assert await queue.ack(lease)

    run(settings, scenario)


def test_nack_makes_the_item_due_again_after_its_delay(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        await queue.enqueue("send", {"n": 1})
        [lease] = await queue.lease(["send"], 1, visibility=30)
        assert await queue.nack(lease, delay=10, error="provider throttled")
        clock.at += timedelta(seconds=9)
        assert await queue.lease(["send"], 1, visibility=30) == []
        clock.at += timedelta(seconds=1)
        [again] = await queue.lease(["send"], 1, visibility=30)
        assert again.attempts == 2 and again.payload == {"n": 1}

    run(settings, scenario)


def test_due_at_kinds_and_order(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        await queue.enqueue("later", {"n": 0}, due_at=START + timedelta(hours=1))
        for n in range(3):
            await queue.enqueue("now", {"n": n})
        await queue.enqueue("other", {"n": 9})
        leased = await queue.lease(["now", "later"], 10, visibility=30)
        assert [lease.payload["n"] for lease in leased] == [0, 1, 2]  # due first, and not the other kind
        clock.at += timedelta(hours=1)
        [later] = await queue.lease(["later"], 10, visibility=30)
        assert later.kind == "later"
        assert await queue.counts() == {"later": 1, "now": 3, "other": 1}

    run(settings, scenario)


def test_a_dedup_key_admits_one_queued_item_at_a_time(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        assert await queue.enqueue("import", {"v": 1}, key="job-1")
        assert not await queue.enqueue("import", {"v": 2}, key="job-1")
        assert await queue.enqueue("import", {"v": 3})  # no key: never deduplicated
        assert await queue.enqueue("import", {"v": 4})
        leased = await queue.lease(["import"], 10, visibility=30)
        assert [lease.payload["v"] for lease in leased] == [1, 3, 4]
        for lease in leased:
            await queue.ack(lease)
        assert await queue.enqueue("import", {"v": 5}, key="job-1")  # the key is free once the item is done

    run(settings, scenario)


def test_concurrent_leases_never_hand_out_an_item_twice(settings: Settings) -> None:
    """Two stores' connections (two processes' writers) leasing at once split the items between them."""

    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        for n in range(200):
            await queue.enqueue("send", {"n": n})
        other_db: Database = open_database(settings)
        try:
            other = StoreQueue(other_db, clock)
            rounds = await asyncio.gather(
                *(q.lease(["send"], 7, visibility=30) for _ in range(20) for q in (queue, other))
            )
        finally:
            other_db.close()
        ids = [lease.id for leases in rounds for lease in leases]
        assert len(ids) == len(set(ids)) == 200

    run(settings, scenario)


def test_worker_acks_retries_with_backoff_and_gives_up(settings: Settings) -> None:
    config = QueueSettings(concurrency=5, max_attempts=3, retry_delay_seconds=2, visibility_seconds=30)

    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        done: list[int] = []

        async def ok(lease: Lease) -> None:
            done.append(lease.payload["n"])

        async def broken(lease: Lease) -> None:
            raise RuntimeError("provider down")

        worker = Worker(queue, {"ok": ok, "broken": broken}, config)
        await queue.enqueue("ok", {"n": 1})
        await queue.enqueue("broken", {"n": 2})
        assert await worker.run_once() == 2
        assert done == [1]
        assert await queue.counts() == {"broken": 1}
        assert await worker.run_once() == 0  # waiting out its first retry delay
        clock.at += timedelta(seconds=retry_delay(config, 1))
        assert await worker.run_once() == 1
        clock.at += timedelta(seconds=retry_delay(config, 2))
        assert retry_delay(config, 2) == 2 * retry_delay(config, 1)
        assert await worker.run_once() == 1  # third attempt: given up
        clock.at += timedelta(days=1)
        assert await worker.run_once() == 0
        assert await queue.counts() == {}
        [buried] = await queue.buried()
        assert (buried.kind, buried.attempts, buried.reason) == ("broken", 3, "RuntimeError: provider down")

    run(settings, scenario)


def test_a_worker_stopped_mid_item_hands_it_back(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        started = asyncio.Event()

        async def slow(lease: Lease) -> None:
            started.set()
            await asyncio.Event().wait()  # never finishes on its own

        worker = Worker(queue, {"slow": slow}, QueueSettings(poll_seconds=0.01))
        await queue.enqueue("slow", {})
        task = asyncio.create_task(worker.run())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [lease] = await queue.lease(["slow"], 1, visibility=30)  # at once, not after the lease would expire
        assert lease.attempts == 2

    run(settings, scenario)


def test_the_heartbeat_keeps_a_long_item_leased_past_its_visibility(settings: Settings) -> None:
    async def scenario(queue: StoreQueue, clock: FixedClock) -> None:
        halfway, resume = asyncio.Event(), asyncio.Event()

        async def long(lease: Lease) -> None:
            # Runs through three lease lengths of (test) time while the heartbeat renews it every 0.2 s.
            for _ in range(9):
                await asyncio.sleep(0.25)
                clock.at += timedelta(seconds=0.2)
            halfway.set()
            await resume.wait()

        settings = QueueSettings(poll_seconds=0.01, visibility_seconds=0.6)
        await queue.enqueue("long", {})
        task = asyncio.create_task(Worker(queue, {"long": long}, settings).run())
        await halfway.wait()
        assert await queue.lease(["long"], 1, visibility=30) == []  # still its holder's, 1.8 s of leases later
        resume.set()
        for _ in range(100):  # finished and acked (a holder that stops renewing: the tests above)
            if await queue.counts() == {}:
                break
            await asyncio.sleep(0.05)
        assert await queue.counts() == {}

        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(settings, scenario)


class AckCountingQueue(StoreQueue):
    """The store's queue, counting the acks the worker makes on its own."""

    acks = 0

    async def ack(self, lease: Lease) -> bool:
        self.acks += 1
        return await super().ack(lease)


def test_a_handler_that_acks_in_its_commit_is_not_acked_again_and_a_lost_lease_is_not_a_failure(
    settings: Settings,
) -> None:
    config = QueueSettings(visibility_seconds=30)

    async def main() -> None:
        db = open_database(settings)
        try:
            await db.write(migrate)
            clock = FixedClock(START)
            queue = AckCountingQueue(db, clock)

            async def commits_and_acks(lease: Lease) -> None:
                await db.write(lambda tx: queue.ack_in(tx, lease))

            worker = Worker(queue, {"batch": commits_and_acks}, config)
            await queue.enqueue("batch", {"n": 1})
            assert await worker.run_once() == 1
            assert queue.acks == 0 and await queue.counts() == {}

            async def outlives_its_lease(lease: Lease) -> None:
                clock.at += timedelta(seconds=31)
                [taken] = await queue.lease(["late"], 1, visibility=30)  # another worker takes the item over
                assert taken.id == lease.id
                await db.write(lambda tx: queue.hold_in(tx, lease))

            await queue.enqueue("late", {"n": 2})
            assert await Worker(queue, {"late": outlives_its_lease}, config).run_once() == 1
            assert queue.acks == 0 and await queue.counts() == {"late": 1}  # not nacked: the new holder has it
            assert await queue.buried() == []
        finally:
            db.close()

    asyncio.run(main())
