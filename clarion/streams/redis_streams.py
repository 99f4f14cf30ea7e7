"""The Redis Streams sink: XADD of each record (fields `data`, the record's JSON, and `id`, stable per event so a
consumer can drop the duplicates a retried batch may add). A batch's XADDs run in one server-side script call: one
command and one reply per batch instead of one per record, which is what bounds a pipelined client (packing and
reading thousands of commands in Python costs far more than the records). The records travel as one argument, a
MessagePack array the script unpacks with Redis' own `cmsgpack`: packing 4,001 arguments one by one cost the client
2.4-3.5 µs of CPU per record, one msgspec call 0.9-1.0 µs (docs/benchmarks.md, "Event streams"). Redis' MessagePack
reads strings, not binary, so the records' JSON goes as text. The batch is acknowledged when the script answers that
it added every record; a batch that fails part-way is sent again whole (consumers drop the duplicates by `id`).
Needs the `redis` package (the `streams` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from clarion.streams.config import RedisSink as RedisSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkError

# KEYS[1]: the stream; ARGV[1]: MAXLEN ~ ("" for none); ARGV[2]: the records' data and id, in pairs, as one
# MessagePack array.
XADD_BATCH = """
local cap = ARGV[1]
local items = cmsgpack.unpack(ARGV[2])
local added = 0
for i = 1, #items, 2 do
    if cap == '' then
        redis.call('XADD', KEYS[1], '*', 'data', items[i], 'id', items[i + 1])
    else
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'data', items[i], 'id', items[i + 1])
    end
    added = added + 1
end
return added
"""
_pack = msgspec.msgpack.Encoder().encode


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
        items: list[str] = []
        for record in records:
            items += (record.data.decode(), record.id)
        try:
            added = await self._xadd_batch(keys=[self.key], args=[cap, _pack(items)])
        except (redis.RedisError, OSError) as error:
            raise SinkError(f"redis: XADD to {self.key!r} failed ({type(error).__name__}: {error})") from None
        if added != len(records):
            raise SinkError(f"redis: XADD to {self.key!r} added {added} of {len(records)} records")

    async def close(self) -> None:
        await self._redis.aclose()
