"""Token buckets that pace sends (MessagesPerSecond) and hold per-key API request rates across every process of a
group.

A take reserves its tokens at once, even ahead of the refill, and answers how long the caller waits before
sending: one round trip per batch, no retry loop, and the group as a whole never runs ahead of the rate by more
than a full bucket. A bucket holds a tenth of a second's worth: a limit is a rate, so time the senders spent
behind (a slow provider, a busy machine) is not made up later in a burst above it. Three homes for the buckets,
one contract:

- `LocalBuckets`: in the process, for the embedded store's one process;
- `StoreBuckets`: a row per bucket in the store (PostgreSQL), one upsert per take;
- `RedisBuckets`: a hash per bucket in Redis (`coordination.redis_url`), one Lua script per take, which keeps
  the statements off PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from clarion.clock import Clock, epoch_millis
from clarion.coordination.config import CoordinationSettings
from clarion.store import coordination as store
from clarion.store.database import Database


class Buckets(Protocol):
    shared: bool  # whether other processes draw from the same buckets

    async def reserve(self, key: str, per_second: float, count: int, holds: float | None = None) -> float:
        """Take `count` tokens of the bucket `key` (refilled at `per_second`, holding `holds`, by default
        `capacity(per_second)`); the seconds the caller must wait before using them. A negative count gives
        tokens back."""
        ...

    async def aclose(self) -> None: ...


async def pace(buckets: Buckets, key: str, per_second: float, count: int) -> None:
    """Wait until `count` sends fit the bucket's rate."""
    wait = await buckets.reserve(key, per_second, count)
    if wait > 0:
        await asyncio.sleep(wait)


def capacity(per_second: float) -> float:
    """What a bucket holds: a tenth of a second's sends, at least one."""
    return max(1.0, per_second / 10)


def _wait(tokens_left: float, per_second: float) -> float:
    return -tokens_left / per_second if tokens_left < 0 else 0.0


class LocalBuckets:
    shared = False

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)

    async def reserve(self, key: str, per_second: float, count: int, holds: float | None = None) -> float:
        now = time.monotonic()
        full = holds or capacity(per_second)
        tokens, updated = self._buckets.get(key, (full, now))
        tokens = min(full, tokens + (now - updated) * per_second) - count
        self._buckets[key] = (tokens, now)
        return _wait(tokens, per_second)

    async def aclose(self) -> None:
        return None


class StoreBuckets:
    shared = True

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def reserve(self, key: str, per_second: float, count: int, holds: float | None = None) -> float:
        now = epoch_millis(self.clock.now())
        full = holds or capacity(per_second)
        tokens = await self.db.write(lambda tx: store.take_tokens(tx, key, per_second, full, count, now))
        return _wait(tokens, per_second)

    async def aclose(self) -> None:
        return None


# KEYS[1] the bucket; ARGV: tokens per second, capacity, count. Redis's own clock, so every process agrees.
_TAKE = """
local rate, capacity, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate / 1000)
  at = now
end
tokens = tokens - count
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return tostring(tokens)
"""


class RedisBuckets:
    PREFIX = "clarion:bucket:"
    shared = True

    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio as redis
        except ImportError as error:  # pragma: no cover - the extra is part of the test install
            needed = "coordination.redis_url needs the redis client: pip install 'clarion[coordination]'"
            raise RuntimeError(needed) from error
        self._client: Any = redis.Redis.from_url(url)
        self._take = self._client.register_script(_TAKE)

    async def reserve(self, key: str, per_second: float, count: int, holds: float | None = None) -> float:
        left = await self._take(keys=[self.PREFIX + key], args=[per_second, holds or capacity(per_second), count])
        return _wait(float(left), per_second)

    async def aclose(self) -> None:
        await self._client.aclose()


def open_buckets(settings: CoordinationSettings, db: Database, clock: Clock) -> Buckets:
    """Redis when configured; else the store when several processes may share it (PostgreSQL); else this process."""
    if settings.redis_url:
        return RedisBuckets(settings.redis_url)
    if db.dialect.name == "postgresql":
        return StoreBuckets(db, clock)
    return LocalBuckets()
