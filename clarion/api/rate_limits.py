"""Per-access-key request rates: a token bucket per key, refused with Pinpoint's TooManyRequestsException (HTTP
429), which the AWS SDKs retry with backoff.

A bucket holds up to `burst` tokens and gains `requests_per_second` a second; a request takes one. Checking costs a
dict lookup and a little arithmetic. Buckets live in each process: N processes behind one port let a key through at
up to N times its rate (docs/security.md); sharing buckets across processes is left to a later broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion.errors import TooManyRequests
from clarion.logs import get_logger
from clarion.metrics import Metrics

log = get_logger("clarion.api")


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests_per_second: float
    burst: int


class _Bucket:
    __slots__ = ("limit", "refusing", "tokens", "updated")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now
        self.refusing = False


class RateLimiter:
    def __init__(self, metrics: Metrics) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._metrics = metrics

    def take(self, access_key_id: str, limit: RateLimit | None, now: float) -> None:
        """Spend one token of the key's bucket, or raise TooManyRequests; `now` in seconds (the injectable clock)."""
        if limit is None:
            return
        bucket = self._buckets.get(access_key_id)
        if bucket is None or (bucket.limit is not limit and bucket.limit != limit):  # new key, or its limit changed
            bucket = self._buckets[access_key_id] = _Bucket(limit, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.requests_per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.refusing = False
            return
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
