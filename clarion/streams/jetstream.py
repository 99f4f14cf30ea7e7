"""The NATS JetStream sink: each record published to the subject and acknowledged by JetStream (a PubAck per
record). Each carries `Nats-Msg-Id` (stable per event), so JetStream itself drops the duplicates a retried batch
would add within its duplicate window. Needs the `nats-py` package (the `streams` extra).

A connection that failed is dropped and opened again for the next attempt, rather than left to reconnect behind
the shipper's back: the shipper's retries and backoff are the one retry policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from clarion.streams.config import NatsSink as NatsSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkError


class JetStreamSink:
    def __init__(self, settings: NatsSettings, subject: str, stream: str) -> None:
        self.settings = settings
        self.subject = subject
        self.stream = stream
        self._client: Any = None
        self._jetstream: Any = None

    async def _connect(self) -> Any:
        import nats
        from nats.js.errors import NotFoundError

        if self._jetstream is not None:
            return self._jetstream
        client = await nats.connect(
            self.settings.servers,
            connect_timeout=self.settings.timeout_seconds,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
        jetstream = client.jetstream(timeout=self.settings.timeout_seconds)
        if self.stream:
            try:
                await jetstream.stream_info(self.stream)
            except NotFoundError:
                await jetstream.add_stream(name=self.stream, subjects=[self.subject])
        self._client, self._jetstream = client, jetstream
        return jetstream

    async def write(self, records: Sequence[StreamRecord]) -> None:
        try:
            jetstream = await self._connect()
            acks = [
                await jetstream.publish_async(self.subject, record.data, headers={"Nats-Msg-Id": record.id})
                for record in records
            ]
            await asyncio.wait_for(asyncio.gather(*acks), self.settings.timeout_seconds)
        except Exception as error:  # nats-py raises its own errors, OSError and timeouts alike
            await self.close()
            raise SinkError(f"nats: publishing to {self.subject!r} failed ({type(error).__name__}: {error})") from None

    async def close(self) -> None:
        client, self._client, self._jetstream = self._client, None, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                return
