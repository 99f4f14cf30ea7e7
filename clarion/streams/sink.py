"""The contract between a stream's shipper and the systems records go to: a batch of records in, an acknowledgement
(the call returns) or a failure (it raises) out. Like the channel transports (clarion/channels/delivery.py), a
sink knows nothing of projects, cursors or retries: the shipper moves the cursor only past batches a sink
acknowledged and retries the others, so a sink may be handed a batch again and must only never lose one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clarion.clock import Clock
from clarion.jobs.config import S3Settings
from clarion.outbound.client import OutboundClient
from clarion.streams.records import StreamRecord


class SinkError(Exception):
    """A batch was not acknowledged; the message says where and why (never a credential)."""


class Sink(Protocol):
    async def write(self, records: Sequence[StreamRecord]) -> None:
        """Return once the sink holds every record durably; raise SinkError otherwise."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What sinks share, built once per process."""

    outbound: OutboundClient  # webhooks go through the guarded client
    clock: Clock
    data_dir: Path  # relative file sink paths are under <data_dir>/streams
    s3: S3Settings  # the object store of import and export jobs, for S3 sinks that name none
