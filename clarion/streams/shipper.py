"""Shipping: every project's events to its stream's sink, at least once, in commit order, none lost.

`StreamShipper` runs in every process that has `streams.shipper` on. It takes a lease on each stream in the store
(one process ships a stream at a time; another takes it over once a lease runs out) and runs one `StreamPump`
per stream it holds, so a slow or failing sink holds up only its own project. A pump reads its project's events
after the stream's cursor, turns them into records (clarion/streams/records.py), hands batches to the sink and,
once the sink acknowledged a batch, moves the cursor past it in a write of its own, while the sink takes the next
batches (see `StreamPump._move_cursor`). A failed batch is retried,
with exponential backoff and jitter, until the sink takes it: a sink that is down for an hour receives that hour's
records when it is back, and a process that dies between a sink's acknowledgement and the cursor's move makes the
next shipper send that batch again (receivers drop duplicates by record id; see docs/event-streams.md).

Lag (records and seconds behind) is kept in two gauges per project, failures are counted and logged
(`event_stream_delivery_failed`) and kept on the stream, where GetEventStream shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from clarion.clock import Clock, epoch_millis
from clarion.domain_events import EventsIngested, EventStreamChanged, MessagesSent, OutcomesReported
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.store import streams as stream_store
from clarion.store.database import Database
from clarion.store.streams import StreamRow
from clarion.streams.config import Sink as SinkSettings
from clarion.streams.config import StreamSettings
from clarion.streams.destinations import Destination, missing_library, parse_destination, sink_for
from clarion.streams.records import RecordBatch, RecordBuilder, StreamRecord, build_batch, read_batch
from clarion.streams.registry import open_sink
from clarion.streams.sink import Sink, SinkContext, SinkError

log = get_logger("clarion.streams")

Sleep = Callable[[float], Awaitable[None]]
LAG_REFRESH_SECONDS = 1.0  # how often a pump that is behind counts what is waiting (at most)
# Counting a long backlog is a scan of it: the count waits this many times as long as the last one took, so a
# pump far behind spends its time shipping rather than measuring how far behind it is.
LAG_COUNT_SHARE = 50
# A cursor write goes through the store's writer, behind whatever ingestion is committing (on SQLite with the API in
# another process: behind its hold of the file's write lock). The sink takes up to this many more batches meanwhile;
# a crash then sends at most these again (at least once holds: the cursor never passes an unacknowledged batch).
CURSOR_LAG_BATCHES = 4


class LeaseLost(Exception):
    """Another process ships the stream now, or it was replaced or deleted: this pump stops."""


@dataclass(frozen=True, slots=True)
class ShipperParts:
    db: Database
    settings: StreamSettings
    account_id: str
    clock: Clock
    metrics: Metrics
    sinks: SinkContext
    sleep: Sleep = asyncio.sleep
    open_sink: Callable[[SinkSettings, Destination, str, SinkContext], Sink] = open_sink


class StreamPump:
    """Ships one project's stream for as long as this process holds its lease and its version is current."""

    def __init__(self, parts: ShipperParts, owner: str, row: StreamRow) -> None:
        self.parts = parts
        self.owner = owner
        self.app_id = row.app_id
        self.version = row.version
        self.arn = row.destination_arn
        self.acknowledged = row.cursor  # the durable cursor
        self.read_to = row.cursor  # how far records were read (beyond the cursor while a batch waits)
        self.wake = asyncio.Event()
        self.builder = RecordBuilder(row.app_id, parts.account_id)
        self.sink_settings = sink_for(parts.settings, row.destination_arn)
        self.sink_type = self.sink_settings.type if self.sink_settings else "none"
        self._sink: Sink | None = None
        self._lag_checked = 0.0
        self._lag_every = LAG_REFRESH_SECONDS
        self._delivered = row.cursor  # the last record the sink acknowledged (the cursor follows in the background)
        self._unmoved = 0  # batches acknowledged beyond the durable cursor
        self._moving: asyncio.Future[None] | None = None  # the cursor write under way

    async def run(self) -> None:
        pending: list[StreamRecord] = []
        oldest_read = 0.0  # monotonic time the oldest pending record was read
        # While a pump is behind, its next read (building records) runs while the sink writes the last batch.
        ahead: asyncio.Future[RecordBatch] | None = None
        try:
            while True:
                full = False
                if not self._holds_a_batch(pending):
                    batch = await (ahead if ahead is not None else self._read())
                    ahead = None
                    if batch.records:
                        if not pending:
                            oldest_read = time.monotonic()
                        pending.extend(batch.records)
                        self.read_to = batch.records[-1].position
                    full = batch.full
                while self._holds_a_batch(pending):
                    chunk = self._take(pending)
                    if full and ahead is None and not self._holds_a_batch(pending):
                        ahead = asyncio.ensure_future(self._read())
                    await self._deliver(chunk)
                    oldest_read = time.monotonic()
                waited = time.monotonic() - oldest_read
                if pending and not full and waited >= self.sink_settings_batch_seconds:
                    await self._deliver(pending)
                    pending = []
                if not pending and not full:
                    await self._cursor_moved()
                    self._caught_up()
                if full:
                    continue
                timeout = self.parts.settings.poll_seconds
                if pending:
                    timeout = min(timeout, max(0.0, self.sink_settings_batch_seconds - waited))
                await self._wait(timeout)
        finally:
            if ahead is not None:  # a read has no effect: what it read is read again by the next pump
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead
            if self._moving is not None:  # a stopping pump still records what its sink acknowledged
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._moving
            await self._close_sink()
            self._forget_lag()

    async def _read(self) -> RecordBatch:
        """The records after those read so far (from where `read_to` is now): read in a short transaction, built
        after it in a worker thread (the event loop goes on with the sink meanwhile)."""
        after, limit = self.read_to, self.parts.settings.read_batch
        read = await self.parts.db.read_long(lambda tx: read_batch(tx, self.builder, after, limit))
        if not read.events:
            return RecordBatch([], False)
        return await asyncio.to_thread(build_batch, self.builder, read)

    @property
    def sink_settings_batch_seconds(self) -> float:
        return self.sink_settings.batch_seconds if self.sink_settings else 0.0

    def _holds_a_batch(self, pending: Sequence[StreamRecord]) -> bool:
        settings = self.sink_settings
        if settings is None or not pending:
            return False
        if len(pending) >= settings.batch_records:
            return True
        return sum(len(record.data) for record in pending) >= settings.batch_bytes

    def _take(self, pending: list[StreamRecord]) -> list[StreamRecord]:
        """The first batch of `pending` (removed from it): at most batch_records records and batch_bytes bytes."""
        assert self.sink_settings is not None
        size, count = 0, 0
        for record in pending[: self.sink_settings.batch_records]:
            if count and size + len(record.data) > self.sink_settings.batch_bytes:
                break
            size += len(record.data)
            count += 1
        chunk = pending[:count]
        del pending[:count]
        return chunk

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    # Delivery -------------------------------------------------------------------------------------------------

    async def _deliver(self, chunk: Sequence[StreamRecord]) -> None:
        """Hand the chunk to the sink until it acknowledges it, then have the cursor moved past it."""
        if self._moving is not None and (self._moving.done() or self._unmoved >= CURSOR_LAG_BATCHES):
            await self._cursor_moved()  # (a lost lease stops the pump here, before its sink takes more)
        settings = self.parts.settings
        failures = 0
        while True:
            try:
                sink = self._open()
                await asyncio.wait_for(sink.write(chunk), self._timeout())
                break
            except (SinkError, TimeoutError) as error:
                reason = str(error) or f"{self.sink_type}: no answer within {self._timeout():g}s"
            except Exception as error:  # a sink bug: logged and retried like any failure, never fatal to the pump
                reason = f"{self.sink_type}: {type(error).__name__}: {error}"
            failures += 1
            delay = random.uniform(
                0, min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (failures - 1))
            )
            await self._failed(chunk, failures, reason, delay)
            await self.parts.sleep(delay)
            await self._refresh_lag(force=True)
        self._delivered = chunk[-1].position
        self._unmoved += 1
        if self._moving is not None and self._moving.done():
            await self._cursor_moved()
        if self._moving is None:
            self._moving = asyncio.ensure_future(self._move_cursor())
        self.parts.metrics.stream_records.labels(self.sink_type).inc(len(chunk))
        if failures:
            log.info("event_stream_recovered", application_id=self.app_id, sink=self.sink_type, attempts=failures + 1)
        await self._refresh_lag(force=False)

    async def _move_cursor(self) -> None:
        """Move the durable cursor to the last acknowledged record, again while the sink acknowledged more meanwhile:
        one write covers every batch acknowledged while the last one waited for the store's writer, and the pump
        goes on delivering instead of waiting a commit per batch (with ingestion committing 5,000 events at a time,
        that wait capped shipping at 2,000 records per ingest commit; docs/benchmarks.md)."""
        settings, failures = self.parts.settings, 0
        while self.acknowledged < self._delivered:
            position, batches = self._delivered, self._unmoved
            at = epoch_millis(self.parts.clock.now())
            try:
                moved = await self.parts.db.write(
                    lambda tx, position=position, at=at: stream_store.advance(
                        tx, self.app_id, self.owner, self.version, position, at
                    )
                )
            except Exception as error:  # SQLite: another process's writer held the file past busy_timeout
                failures += 1
                delay = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (failures - 1))
                self.parts.metrics.stream_failures.labels("store").inc()
                log.warning(
                    "event_stream_cursor_write_failed",
                    application_id=self.app_id,
                    attempt=failures,
                    retry_in_seconds=delay,
                    error=f"{type(error).__name__}: {error}",
                )
                await self.parts.sleep(delay)
                continue
            if not moved:
                raise LeaseLost(self.app_id)
            self.acknowledged = position
            self._unmoved -= batches

    async def _cursor_moved(self) -> None:
        """Wait for the cursor write under way (LeaseLost if the stream is no longer this pump's). Shielded: a pump
        cancelled meanwhile (a server stopping) leaves the write to finish in `run`, so what the sink acknowledged is
        not sent again after a clean restart."""
        moving = self._moving
        if moving is None:
            return
        try:
            await asyncio.shield(moving)
        finally:
            if moving.done():
                self._moving = None

    def _open(self) -> Sink:
        if self._sink is None:
            if self.sink_settings is None:
                raise SinkError(f"no sink on this server is configured for {self.arn} ([[streams.sinks]])")
            library = missing_library(self.sink_settings)
            if library is not None:
                raise SinkError(
                    f"{self.sink_type}: the {library!r} package is missing (pip install 'clarion[streams]')"
                )
            destination = parse_destination(self.arn)
            self._sink = self.parts.open_sink(self.sink_settings, destination, self.app_id, self.parts.sinks)
        return self._sink

    def _timeout(self) -> float:
        return self.sink_settings.timeout_seconds if self.sink_settings else 30.0

    async def _failed(self, chunk: Sequence[StreamRecord], failures: int, reason: str, delay: float) -> None:
        self.parts.metrics.stream_failures.labels(self.sink_type).inc()
        log.warning(
            "event_stream_delivery_failed",
            application_id=self.app_id,
            sink=self.sink_type,
            destination=self.arn,
            records=len(chunk),
            attempt=failures,
            retry_in_seconds=round(delay, 3),
            error=reason,
        )
        await self._close_sink()  # a sink that failed is opened anew (a fresh connection, a reopened file)
        at = epoch_millis(self.parts.clock.now())
        await self.parts.db.write(
            lambda tx: stream_store.record_failure(tx, self.app_id, self.owner, self.version, reason[:1000], at)
        )

    async def _close_sink(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                await sink.close()
            except Exception:  # a sink that cannot close cleanly is dropped all the same
                log.warning("event_stream_sink_close_failed", application_id=self.app_id, sink=self.sink_type)

    # Lag ------------------------------------------------------------------------------------------------------

    def _caught_up(self) -> None:
        """Everything committed when last read has been acknowledged."""
        self.parts.metrics.stream_lag_records.labels(self.app_id).set(0)
        self.parts.metrics.stream_lag_seconds.labels(self.app_id).set(0)

    async def _refresh_lag(self, force: bool) -> None:
        """Count what is waiting behind the cursor: at most once a second (less often while a count is slow) unless
        `force`."""
        now = time.monotonic()
        if not force and now - self._lag_checked < self._lag_every:
            return
        cursor = self.acknowledged
        waiting, oldest = await self.parts.db.read_long(lambda tx: stream_store.backlog(tx, self.app_id, cursor))
        self._lag_checked = time.monotonic()
        self._lag_every = max(LAG_REFRESH_SECONDS, LAG_COUNT_SHARE * (self._lag_checked - now))
        behind = 0.0 if oldest is None else max(0.0, (epoch_millis(self.parts.clock.now()) - oldest) / 1000)
        self.parts.metrics.stream_lag_records.labels(self.app_id).set(waiting)
        self.parts.metrics.stream_lag_seconds.labels(self.app_id).set(behind)

    def _forget_lag(self) -> None:
        for gauge in (self.parts.metrics.stream_lag_records, self.parts.metrics.stream_lag_seconds):
            with contextlib.suppress(KeyError):
                gauge.remove(self.app_id)


class StreamShipper:
    """Takes, keeps and gives up this process's streams; runs a pump for each."""

    def __init__(self, parts: ShipperParts) -> None:
        self.parts = parts
        self.owner = uuid.uuid4().hex
        self._pumps: dict[str, tuple[StreamPump, asyncio.Task[None]]] = {}
        self._tend_now = asyncio.Event()

    async def run(self) -> None:
        settings = self.parts.settings
        for sink in settings.sinks:
            library = missing_library(sink)
            if library is not None:
                log.error(
                    "event_stream_sink_unavailable",
                    sink=sink.type,
                    arn=sink.arn,
                    missing=library,
                    fix="pip install 'clarion[streams]'",
                )
        try:
            while True:
                wait = settings.lease_seconds / 3
                try:
                    await self._tend()
                except Exception as error:  # the store refused a lease write: pumps go on, tending again soon
                    self.parts.metrics.stream_failures.labels("store").inc()
                    log.warning("event_stream_tending_failed", error=f"{type(error).__name__}: {error}")
                    wait = settings.backoff_base_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._tend_now.wait(), wait)
                self._tend_now.clear()
        finally:
            tasks = [task for _, task in self._pumps.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._pumps.clear()
            with contextlib.suppress(Exception):  # leases run out on their own if this fails
                await self.parts.db.write(lambda tx: stream_store.release_leases(tx, self.owner))

    async def _tend(self) -> None:
        """Drop pumps whose stream changed, renew leases held, take the leases of streams nobody ships."""
        rows = {row.app_id: row for row in await self.parts.db.read(stream_store.all_streams)}
        for app_id, (pump, task) in list(self._pumps.items()):
            row = rows.get(app_id)
            if task.done() or row is None or row.version != pump.version:
                self._stop(app_id)
        now = epoch_millis(self.parts.clock.now())
        until = now + int(self.parts.settings.lease_seconds * 1000)
        held = list(self._pumps)
        kept = await self.parts.db.write(lambda tx: stream_store.renew_leases(tx, self.owner, held, until))
        for app_id in set(held) - kept:
            self._stop(app_id)
        for app_id, row in rows.items():
            if app_id in self._pumps:
                continue
            if row.lease_owner not in (None, self.owner) and (row.lease_until or 0) >= now:
                continue  # another process ships it
            taken = await self.parts.db.write(
                lambda tx, a=app_id: stream_store.take_lease(tx, a, self.owner, now, until)
            )
            if taken is not None:
                self._start(taken)

    def _start(self, row: StreamRow) -> None:
        pump = StreamPump(self.parts, self.owner, row)
        task = asyncio.get_running_loop().create_task(self._pump(pump), name=f"event-stream-{row.app_id}")
        self._pumps[row.app_id] = (pump, task)

    async def _pump(self, pump: StreamPump) -> None:
        try:
            await pump.run()
        except LeaseLost:
            log.info("event_stream_handed_over", application_id=pump.app_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # a pump that broke is restarted by the next tending round
            log.exception("event_stream_pump_failed", application_id=pump.app_id)
        self._tend_now.set()

    def _stop(self, app_id: str) -> None:
        self._pumps.pop(app_id)[1].cancel()

    def wake(self, app_id: str) -> None:
        """New events in this project: its pump reads them now instead of at its next poll."""
        entry = self._pumps.get(app_id)
        if entry is not None:
            entry[0].wake.set()

    # Domain event subscribers (clarion/services.py) -----------------------------------------------------------

    def events_ingested(self, event: EventsIngested) -> None:
        self.wake(event.app_id)

    def messages_sent(self, event: MessagesSent) -> None:
        self.wake(event.app_id)

    def outcomes_reported(self, event: OutcomesReported) -> None:
        for app_id in {outcome.app_id for outcome in event.outcomes}:
            self.wake(app_id)

    def stream_changed(self, event: EventStreamChanged) -> None:
        self._tend_now.set()
