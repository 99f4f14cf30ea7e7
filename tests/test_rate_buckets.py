"""MessagesPerSecond buckets (clarion/coordination/buckets.py): the same reservations from the process's own
buckets, the store's (both stores) and Redis's (the local server), and several processes' worth of callers on one
bucket never running ahead of its rate."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import RunningServer

from clarion.clock import SystemClock
from clarion.coordination.buckets import Buckets, LocalBuckets, RedisBuckets, StoreBuckets, capacity

REDIS_URL = os.environ.get("CLARION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_buckets() -> Iterator[RedisBuckets]:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error}); start it or set CLARION_TEST_REDIS_URL")
    yield RedisBuckets(REDIS_URL)


async def _reservations(buckets: Buckets, per_second: float, counts: list[int]) -> list[float]:
    """When each take may send (monotonic seconds): the moment it was asked for plus the wait it was told (a bucket
    reckons from the moment of the take, not of the answer)."""
    key = f"test:{uuid.uuid4().hex}"
    moments = []
    for count in counts:
        asked = time.monotonic()
        moments.append(asked + await buckets.reserve(key, per_second, count))
    return moments


def _check_reservations(moments: list[float]) -> None:
    """At 100/s with a bucket of 10: 10 at once, then each batch of 20 at least 0.1 s after the one before (0.2 s
    for its 20 tokens, less the bucket's 10 refilled meanwhile if the take before was slow), and never more than
    0.2 s plus the time a take took on a busy machine."""
    first, second, third = moments
    for gap in (second - first, third - second):
        assert 0.095 <= gap <= 1.0


def test_capacity_is_a_tenth_of_a_second_and_at_least_one() -> None:
    assert capacity(100) == 10 and capacity(5) == 1


def test_local_buckets() -> None:
    _check_reservations(asyncio.run(_reservations(LocalBuckets(), 100, [10, 20, 20])))


def test_store_buckets(server: RunningServer) -> None:
    buckets = StoreBuckets(server.services.db, SystemClock())
    _check_reservations(server.run(lambda _: _reservations(buckets, 100, [10, 20, 20])))


def test_redis_buckets(redis_buckets: RedisBuckets) -> None:
    async def run() -> list[float]:
        try:
            return await _reservations(redis_buckets, 100, [10, 20, 20])
        finally:
            await redis_buckets.aclose()

    _check_reservations(asyncio.run(run()))


def test_concurrent_callers_share_one_rate(redis_buckets: RedisBuckets) -> None:
    """Thirty concurrent callers taking 10 each at 100/s: whatever order they run in, the last one let through
    waits until 2.9 s after the first take (less the time the takes themselves spanned)."""

    async def run() -> tuple[list[float], float]:
        key = f"test:{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            waits = await asyncio.gather(*(redis_buckets.reserve(key, 100, 10) for _ in range(30)))
            return list(waits), time.monotonic() - started
        finally:
            await redis_buckets.aclose()

    waits, spent = asyncio.run(run())
    assert min(waits) == 0.0
    assert 2.9 - spent <= max(waits) <= 2.9
    assert len(set(waits)) == 30  # each take was given its own place
