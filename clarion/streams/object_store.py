"""The S3 sink, Firehose-style: the shipper buffers records by size and time (the sink's batch settings, Firehose's
buffering hints) and each batch becomes one object, gzip-compressed JSON lines or Parquet, under
`<prefix>YYYY/MM/DD/HH/` (UTC, the hour the batch's first record arrived), as Firehose lays out its S3 objects.

An object's key depends only on its first record, so a batch written again after a failure replaces the same
object instead of adding a second copy. Requests go through Clarion's S3 client (clarion/jobs/s3.py, signed with
clarion/aws/sigv4.py) to the configured store; Parquet files are written by DuckDB, already a dependency.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import duckdb

from clarion.jobs.s3 import S3Client, S3Error
from clarion.streams.config import ObjectSink as ObjectSettings
from clarion.streams.records import StreamRecord
from clarion.streams.sink import SinkContext, SinkError

# The record's keys as Parquet columns: nested objects stay JSON, attributes and metrics become maps.
PARQUET_COLUMNS = {
    "event_type": "VARCHAR",
    "event_timestamp": "BIGINT",
    "arrival_timestamp": "BIGINT",
    "event_version": "VARCHAR",
    "application": "JSON",
    "client": "JSON",
    "device": "JSON",
    "session": "JSON",
    "attributes": "MAP(VARCHAR, VARCHAR)",
    "metrics": "MAP(VARCHAR, DOUBLE)",
    "client_context": "JSON",
    "facets": "JSON",
    "awsAccountId": "VARCHAR",
}


def json_lines(records: Sequence[StreamRecord]) -> bytes:
    return b"".join(record.data + b"\n" for record in records)


def parquet_of(records: Sequence[StreamRecord]) -> bytes:
    """The records as one Parquet file (zstd), through DuckDB's JSON reader."""
    with tempfile.TemporaryDirectory(prefix="clarion-stream-") as folder:
        source, target = Path(folder, "records.jsonl"), Path(folder, "records.parquet")
        source.write_bytes(json_lines(records))
        columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in PARQUET_COLUMNS.items()) + "}"
        with duckdb.connect() as connection:
            connection.execute(
                f"COPY (SELECT * FROM read_json('{source}', format = 'newline_delimited', columns = {columns})) "
                f"TO '{target}' (FORMAT PARQUET, COMPRESSION ZSTD)"
            )
        return target.read_bytes()


class ObjectStoreSink:
    def __init__(
        self, settings: ObjectSettings, bucket: str, prefix: str, stream_name: str, context: SinkContext
    ) -> None:
        self.settings = settings
        self.bucket = bucket
        self.prefix = prefix
        self.stream_name = stream_name
        self.context = context
        self._session: aiohttp.ClientSession | None = None

    def key_for(self, records: Sequence[StreamRecord]) -> str:
        first = records[0]
        at = datetime.fromtimestamp(first.arrival_at / 1000, UTC)
        unique = hashlib.sha256(first.id.encode()).hexdigest()[:16]
        extension = "parquet" if self.settings.format == "parquet" else "json.gz"
        return f"{self.prefix}{at:%Y/%m/%d/%H}/{self.stream_name}-{at:%Y-%m-%d-%H-%M-%S}-{unique}.{extension}"

    async def write(self, records: Sequence[StreamRecord]) -> None:
        if self.settings.format == "parquet":
            body = await asyncio.to_thread(parquet_of, records)
        else:
            body = await asyncio.to_thread(gzip.compress, json_lines(records), 6)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        client = S3Client(
            self.settings.store or self.context.s3, self._session, self.context.clock, self.settings.timeout_seconds
        )
        key = self.key_for(records)
        try:
            await client.put(self.bucket, key, body)
        except S3Error as error:
            raise SinkError(f"s3: {error}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise SinkError(f"s3: PutObject s3://{self.bucket}/{key} failed ({type(error).__name__})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
