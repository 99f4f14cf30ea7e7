"""Per-access-key request rates: a token bucket per key, refused with Pinpoint's TooManyRequestsException (HTTP
429), which the AWS SDKs retry with backoff.

A bucket holds up to `burst` tokens and gains `requests_per_second` a second; a request takes one. In one process
(the embedded store) the bucket is the process's own: a dict lookup and a little arithmetic. Where processes share
a store, the bucket is the group's, in PostgreSQL or Redis (clarion/coordination/buckets.py), so N processes let a
key through at its rate, not N times it. A process then takes its tokens from the shared bucket a few at a time
(`GRANT_SECONDS` of the rate) and spends them locally, so most requests cost no round trip; what a process holds
unspent is at most one such grant. A key that is refused is refused locally until the shared bucket can have
refilled, so a client hammering a key over its rate does not cost the store a statement per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clarion.coordination.buckets import Buckets
from clarion.errors import TooManyRequests
from clarion.logs import get_logger
from clarion.metrics import Metrics

log = get_logger("clarion.api")

GRANT_SECONDS = 0.02  # a process takes this much of a key's rate from the shared bucket at a time


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests_per_second: float
    burst: int


class _Bucket:
    """The process's own bucket, or (shared) the tokens it was granted and when it may ask again."""

    __slots__ = ("limit", "refusing", "retry_at", "tokens", "updated")

    def __init__(self, limit: RateLimit, now: float, tokens: float) -> None:
        self.limit = limit
        self.tokens = tokens
        self.updated = now
        self.retry_at = 0.0
        self.refusing = False


class RateLimiter:
    def __init__(self, metrics: Metrics, buckets: Buckets | None = None) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._metrics = metrics
        self._shared = buckets if buckets is not None and buckets.shared else None

    async def take(self, access_key_id: str, limit: RateLimit | None, now: float) -> None:
        """Spend one token of the key's bucket, or raise TooManyRequests; `now` in seconds (the injectable clock)."""
        if limit is None:
            return
        bucket = self._buckets.get(access_key_id)
        if bucket is None or (bucket.limit is not limit and bucket.limit != limit):  # new key, or its limit changed
            tokens = 0.0 if self._shared is not None else float(limit.burst)
            bucket = self._buckets[access_key_id] = _Bucket(limit, now, tokens)
        if self._shared is None:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.requests_per_second)
            bucket.updated = now
        elif bucket.tokens < 1 and now >= bucket.retry_at:
            await self._ask_group(access_key_id, bucket, limit, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.refusing = False
            return
        self._refuse(access_key_id, bucket, limit)

    async def _ask_group(self, access_key_id: str, bucket: _Bucket, limit: RateLimit, now: float) -> None:
        """Take a grant of tokens from the group's bucket; when it cannot have them, give them back and note when
        the bucket will hold one again."""
        assert self._shared is not None
        rate, key = limit.requests_per_second, f"api-key:{access_key_id}"
        grant = max(1, min(limit.burst, math.ceil(rate * GRANT_SECONDS)))
        wait = await self._shared.reserve(key, rate, grant, limit.burst)
        if wait <= 0:
            bucket.tokens += grant
            return
        await self._shared.reserve(key, rate, -grant, limit.burst)
        bucket.retry_at = now + max(0.0, wait - (grant - 1) / rate)

    def _refuse(self, access_key_id: str, bucket: _Bucket, limit: RateLimit) -> None:
        self._metrics.rate_limited.labels(access_key_id).inc()
        if not bucket.refusing:  # one log line per episode; the counter has every refusal
            bucket.refusing = True
            log.warning(
                "rate_limited", key=access_key_id, requests_per_second=limit.requests_per_second, burst=limit.burst
            )
        raise TooManyRequests(
            f"Access key {access_key_id} is over its rate of {limit.requests_per_second:g} requests per second "
            f"(burst {limit.burst}); retry with backoff"
        )
