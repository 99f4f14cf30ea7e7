"""The Redis Streams sink: XADD of each record (fields `data`, the record's JSON, and `id`, stable per event so a
consumer can drop the duplicates a retried batch may add), pipelined per batch. A batch is acknowledged when every
XADD of its pipeline answered with an entry id. Needs the `redis` package (the `streams` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.streams.config import RedisSink as RedisSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkError


class RedisStreamSink:
    def __init__(self, settings: RedisSettings, key: str) -> None:
        import redis.asyncio

        self.settings = settings
        self.key = key
        self._redis: Any = redis.asyncio.from_url(
            settings.url,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
            retry_on_timeout=False,
        )

    async def write(self, records: Sequence[StreamRecord]) -> None:
        import redis

        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            pipe.xadd(
                self.key,
                {"data": record.data, "id": record.id},
                maxlen=self.settings.max_length,
                approximate=True,
            )
        try:
            answers = await pipe.execute(raise_on_error=True)
        except (redis.RedisError, OSError) as error:
            raise SinkError(f"redis: XADD to {self.key!r} failed ({type(error).__name__}: {error})") from None
        if len(answers) != len(records) or not all(answers):
            raise SinkError(f"redis: XADD to {self.key!r} did not add every record")

    async def close(self) -> None:
        await self._redis.aclose()
