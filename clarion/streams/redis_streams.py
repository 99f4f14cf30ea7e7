"""The Redis Streams sink: XADD of each record (fields `data`, the record's JSON, and `id`, stable per event so a
consumer can drop the duplicates a retried batch may add). A batch's XADDs run in one server-side script call: one
command and one reply per batch instead of one per record, which is what bounds a pipelined client (packing and
reading thousands of commands in Python costs far more than the records). The batch is acknowledged when the
script answers that it added every record; a batch that fails part-way is sent again whole (consumers drop the
duplicates by `id`). Needs the `redis` package (the `streams` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.streams.config import RedisSink as RedisSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkError

# KEYS[1]: the stream; ARGV[1]: MAXLEN ~ ("" for none); then the records' data and id, in pairs.
XADD_BATCH = """
local cap = ARGV[1]
local added = 0
for i = 2, #ARGV, 2 do
    if cap == '' then
        redis.call('XADD', KEYS[1], '*', 'data', ARGV[i], 'id', ARGV[i + 1])
    else
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'data', ARGV[i], 'id', ARGV[i + 1])
    end
    added = added + 1
end
return added
"""


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
        self._xadd_batch = self._redis.register_script(XADD_BATCH)  # EVALSHA, loading the script when missing

    async def write(self, records: Sequence[StreamRecord]) -> None:
        import redis

        cap = str(self.settings.max_length or "")
        args: list[str | bytes] = [cap]
        for record in records:
            args += (record.data, record.id)
        try:
            added = await self._xadd_batch(keys=[self.key], args=args)
        except (redis.RedisError, OSError) as error:
            raise SinkError(f"redis: XADD to {self.key!r} failed ({type(error).__name__}: {error})") from None
        if added != len(records):
            raise SinkError(f"redis: XADD to {self.key!r} added {added} of {len(records)} records")

    async def close(self) -> None:
        await self._redis.aclose()
