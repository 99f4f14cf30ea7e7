"""The sink each configured sink type opens for a stream (the contract is clarion/streams/sink.py)."""

from __future__ import annotations

from pathlib import Path

from clarion.streams.config import Sink as SinkSettings
from clarion.streams.destinations import Destination
from clarion.streams.jetstream import JetStreamSink
from clarion.streams.json_lines import JsonLinesSink
from clarion.streams.object_store import ObjectStoreSink
from clarion.streams.redis_streams import RedisStreamSink
from clarion.streams.sink import Sink, SinkContext
from clarion.streams.webhook import WebhookSink


def open_sink(settings: SinkSettings, destination: Destination, app_id: str, context: SinkContext) -> Sink:
    """The sink a stream's records go to, its settings' placeholders filled in for this stream."""
    parts = destination.parts(app_id)
    if settings.type == "webhook":
        return WebhookSink(settings, settings.url.format(**parts), context)
    if settings.type == "redis":
        return RedisStreamSink(settings, settings.key.format(**parts))
    if settings.type == "nats":
        return JetStreamSink(settings, settings.subject.format(**parts), settings.stream.format(**parts))
    if settings.type == "file":
        path = Path(settings.path.format(**parts))
        return JsonLinesSink(settings, path if path.is_absolute() else context.data_dir / "streams" / path, context)
    return ObjectStoreSink(
        settings, settings.bucket.format(**parts), settings.prefix.format(**parts), destination.stream_name, context
    )
