"""Operator settings for event streams (docs/event-streams.md): which sink each Kinesis or Firehose ARN stands for
here, how records are batched for it, and how shippers poll, lease and retry.

Sinks are routes: the first whose `arn` pattern (shell-style, `*` any run of characters) matches a stream's
DestinationStreamArn takes it. Text settings of a sink may name the stream's parts: {application_id},
{stream_name}, {region}, {account_id} and {service} (kinesis or firehose).
"""

from __future__ import annotations

import string
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from clarion.jobs.config import S3Settings
from clarion.settings_model import SettingsModel

PLACEHOLDERS = frozenset({"application_id", "stream_name", "region", "account_id", "service"})


def check_template(text: str) -> str:
    """A setting that names the stream's parts names only those (a typo fails at start, not at the first record)."""
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(f"{text!r}: {{{name}}} is not one of {', '.join(sorted(PLACEHOLDERS))}")
    return text


class SinkSettings(SettingsModel):
    # The ARNs this sink stands for, as a shell-style pattern: arn:aws:kinesis:*:*:stream/orders-*.
    arn: str
    # A batch goes to the sink when it holds this many records or bytes, or its oldest record has waited this long
    # (Firehose's buffering hints); every batch is acknowledged before the cursor moves past it. The default is
    # streams.read_batch's: a pump that is behind reads one sink batch at a time, builds the next while the sink
    # writes it, and moves its cursor (a store write) once per read instead of once per part of it.
    batch_records: int = Field(default=2000, ge=1, le=100_000)
    batch_bytes: int = Field(default=4 << 20, ge=1024)
    batch_seconds: float = Field(default=0.0, ge=0)
    # Longest one delivery of one batch may take before it counts as failed and is retried.
    timeout_seconds: float = Field(default=30.0, gt=0)

    templates: ClassVar[tuple[str, ...]] = ()  # the settings that may name the stream's parts

    @model_validator(mode="after")
    def _templates_name_known_parts(self) -> SinkSettings:
        for name in self.templates:
            check_template(getattr(self, name))
        return self


class WebhookSink(SinkSettings):
    """POSTs batches in Firehose's HTTP endpoint delivery format, signed like custom-channel webhooks."""

    type: Literal["webhook"]
    url: str  # may name the stream's parts: https://hooks.example.com/pinpoint/{stream_name}
    signing_secret: SecretStr  # HMAC-SHA256 key of the X-Clarion-Signature header
    access_key: SecretStr | None = None  # sent as X-Amz-Firehose-Access-Key, for receivers built for Firehose

    templates = ("url",)


class RedisSink(SinkSettings):
    """XADD of each record to a Redis stream (field `data`, and `id` for consumers that drop duplicates)."""

    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379/0"
    key: str = "clarion:events:{stream_name}"
    max_length: int | None = Field(default=None, ge=1)  # XADD MAXLEN ~ (approximate trimming); None: keep all

    templates = ("key",)


class NatsSink(SinkSettings):
    """JetStream publish of each record, acknowledged by the server; Nats-Msg-Id lets JetStream drop duplicates."""

    type: Literal["nats"]
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    subject: str = "clarion.events.{stream_name}"
    # A JetStream stream to create on the subject when none covers it; empty: one must exist already.
    stream: str = ""

    templates = ("subject", "stream")


class FileSink(SinkSettings):
    """JSON lines appended to a file, rotated by size and age."""

    type: Literal["file"]
    # The current file: /var/lib/clarion/streams/{application_id}/{stream_name}.jsonl; relative: under the data dir.
    path: str
    rotate_bytes: int = Field(default=128 << 20, ge=1)
    rotate_seconds: float = Field(default=3600.0, gt=0)
    fsync: bool = True  # flush each batch to disk before acknowledging it

    templates = ("path",)


class ObjectSink(SinkSettings):
    """Objects in an S3-compatible store, Firehose-style: gzip JSON lines or Parquet, keyed by hour."""

    type: Literal["s3"]
    bucket: str
    prefix: str = "{stream_name}/"  # keys are <prefix>YYYY/MM/DD/HH/<stream>-<time>-<first record>.<ext>
    format: Literal["json.gz", "parquet"] = "json.gz"
    batch_records: int = Field(default=100_000, ge=1, le=1_000_000)
    batch_bytes: int = Field(default=5 << 20, ge=1024)  # Firehose's default buffering hints: 5 MB, 300 s
    batch_seconds: float = Field(default=300.0, ge=0)
    # The store and its credentials; unset: the one import and export jobs use (jobs.s3).
    store: S3Settings | None = None

    templates = ("bucket", "prefix")


Sink = Annotated[WebhookSink | RedisSink | NatsSink | FileSink | ObjectSink, Field(discriminator="type")]


class StreamSettings(SettingsModel):
    sinks: list[Sink] = Field(default_factory=list)
    # Ship streams from this process (any number of processes may: a lease in the store gives each stream to one).
    shipper: bool = True
    # How often a shipper looks for new events when nothing written in this process woke it.
    poll_seconds: float = Field(default=0.5, gt=0)
    # Events read from the store at once.
    read_batch: int = Field(default=2000, ge=1)
    # A stream's lease: renewed every third of it; another process takes a stream whose lease ran out.
    lease_seconds: float = Field(default=30.0, gt=0)
    # A failed delivery is retried after a random wait up to backoff_base × 2^(failures-1), at most backoff_max.
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
