"""Connections, transactions and group commit for the two stores Clarion runs on.

Both stores share one shape: every write runs in a single writer thread that folds all writes waiting at that
moment into one transaction (each in its own savepoint, so one failing write does not sink the others) and
commits before any caller hears "accepted". That is what makes a 2xx durable across `kill -9` and what makes
ingestion fast: the commit cost is paid once per batch of requests, not once per request.

SQL is written once with `?` placeholders; `Dialect.sql` adapts it for psycopg.

A write may record domain events (`Transaction.record`, clarion/domain_events.py). Each write's events are kept
apart, dropped with its savepoint if it fails, and handed to the dispatcher only once the commit that holds them
has succeeded, on the caller's event loop, before the caller hears back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from clarion.instants import instant_ms
from clarion.logs import get_logger
from clarion.private_files import private_file, tighten
from clarion.store import notices

T = TypeVar("T")
log = get_logger("clarion.store")
Row = tuple[Any, ...]
# Receives the domain events of one committed write (the composition root's subscriptions).
Dispatch = Callable[[Sequence[object]], Awaitable[None]]

MAX_WRITES_PER_COMMIT = 256
MAX_PARAMETERS = 30_000  # under SQLite's 32,766 bound parameters per statement (PostgreSQL allows 65,535)


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sql(self, text: str) -> str:
        if self.name == "sqlite":
            return text
        converted = self._cache.get(text)
        if converted is None:
            converted = self._cache[text] = text.replace("%", "%%").replace("?", "%s")
        return converted

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column IN (...)` with its parameters: one array parameter on PostgreSQL, which then plans a list of
        any length as cheaply as one value (a 100-item IN list cost it ~2 ms of planning per statement)."""
        if self.name == "postgresql":
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def rows_table(
        self, alias: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        """A FROM item holding `rows` as `alias` with these (name, SQL type) columns, with its parameters: what an
        UPDATE ... FROM joins to change many rows, each its own way, in one statement. PostgreSQL: one array per
        column through unnest, so the statement's text, and its plan, are the same for any number of rows; SQLite:
        a VALUES list."""
        names = [name for name, _ in columns]
        if self.name == "postgresql":
            arrays = ", ".join(f"CAST(? AS {kind}[])" for _, kind in columns)
            columns_of_rows = [list(column) for column in zip(*rows, strict=True)]
            return f"unnest({arrays}) AS {alias}({', '.join(names)})", columns_of_rows
        picked = ", ".join(f"column{number} AS {name}" for number, name in enumerate(names, start=1))
        values = ",".join(["(" + ",".join("?" * len(names)) + ")"] * len(rows))
        return f"(SELECT {picked} FROM (VALUES {values})) AS {alias}", [value for row in rows for value in row]

    def none_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if self.name == "postgresql":
            return f"{column} <> ALL(?)", [list(values)]
        return f"{column} NOT IN ({','.join('?' * len(values))})", list(values)

    def json_text(self, document: str, path: Sequence[str]) -> str:
        """A string member of a JSON document kept as text, at a path written in code (never a client's).

        Queries and expression indexes spell it alike: both stores use an index on an expression only for a query
        that repeats the expression exactly."""
        if self.name == "postgresql":
            return f"({document}::jsonb #>> '{{{','.join(path)}}}')"
        return f"json_extract({document}, '$.{'.'.join(path)}')"

    @property
    def now_millis(self) -> str:
        """The database's clock as epoch milliseconds, for stamps written inside SQL (change-feed tombstones)."""
        if self.name == "postgresql":
            return "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"
        return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    @property
    def explain(self) -> str:
        """The prefix that makes a query describe the plan the store chose for it instead of running."""
        return "EXPLAIN" if self.name == "postgresql" else "EXPLAIN QUERY PLAN"

    @property
    def scan_settings(self) -> tuple[str, ...]:
        """What a segment query sets in its transaction first. PostgreSQL: no JIT, whose compilation costs a few
        hundred milliseconds, more than it saves on the index plans segment queries run."""
        if self.name == "postgresql":
            return ("SET LOCAL jit = off",)
        return ()

    @property
    def begin_write(self) -> str:
        """SQLite: take the write lock up front, so a read-then-write never fails to upgrade under another process."""
        return "BEGIN IMMEDIATE" if self.name == "sqlite" else "BEGIN"

    @property
    def for_update(self) -> str:
        """Row locks matter only where several processes write (PostgreSQL); SQLite has one writer."""
        return " FOR UPDATE" if self.name == "postgresql" else ""


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


class Transaction:
    """A thin cursor facade: the store's query modules speak SQL through it, nothing else does."""

    __slots__ = ("_conn", "_recorded", "dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect
        self._recorded: list[object] | None = None  # the running write's domain events; None in a read

    def record(self, event: object) -> None:
        """A domain event this write causes: dispatched once the write has committed, dropped if it rolls back."""
        if self._recorded is None:
            raise RuntimeError("domain events are recorded by writes; this transaction only reads")
        self._recorded.append(event)
        if self.dialect.name == "postgresql":  # other processes hear of it with the commit (store/notices.py)
            payload = notices.encode(event)
            if payload is not None:
                self._conn.execute("SELECT pg_notify(%s, %s)", (notices.CHANNEL, payload))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = self._conn.execute(self.dialect.sql(sql), params)
        return cursor.rowcount

    def insert_rows(self, head: str, rows: Iterable[Sequence[Any]], tail: str = "") -> None:
        """`head VALUES (...), (...) tail` as one statement per chunk of rows.

        One multi-row statement is parsed and planned once; PostgreSQL plans every statement of an executemany.
        """
        rows = list(rows)
        if not rows:
            return
        width = len(rows[0])
        chunk = max(1, MAX_PARAMETERS // width)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            values = ",".join(["(" + ",".join("?" * width) + ")"] * len(part))
            params = [value for row in part for value in row]
            self._conn.execute(self.dialect.sql(f"{head} VALUES {values} {tail}"), params)

    def fetch_joined(
        self,
        sql: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        params: Sequence[Any] = (),
    ) -> list[Row]:
        """`sql`, whose `{rows}` stands for a table `v` of `rows` (`Dialect.rows_table`) and whose own parameters
        (`params`) all come after it, run once per chunk of rows that fits a statement; the rows it returns."""
        chunk = max(1, len(rows) if self.dialect.name == "postgresql" else MAX_PARAMETERS // len(columns))
        found: list[Row] = []
        for start in range(0, len(rows), chunk):
            table, values = self.dialect.rows_table("v", columns, rows[start : start + chunk])
            found += self.fetchall(sql.replace("{rows}", table), [*values, *params])
        return found

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self._conn.execute(self.dialect.sql(sql), params).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(self.dialect.sql(sql), params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def stream(self, sql: str, params: Sequence[Any] = (), chunk: int = 1000) -> Iterator[list[Row]]:
        """The rows in lists of up to `chunk`, never the whole result at once: PostgreSQL's rows come through a
        server-side cursor (a client cursor would hold them all in the client first)."""
        if self.dialect.name == "postgresql":
            with self._conn.cursor(name="clarion_stream") as cursor:
                cursor.execute(self.dialect.sql(sql), params)
                while rows := cursor.fetchmany(chunk):
                    yield rows
            return
        cursor = self._conn.execute(self.dialect.sql(sql), params)
        try:
            while rows := cursor.fetchmany(chunk):
                yield rows
        finally:
            cursor.close()


class Database(Protocol):
    dialect: Dialect

    async def read(self, work: Callable[[Transaction], T]) -> T: ...

    async def write(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` in the writer's transaction; once it has committed, dispatch the events it recorded."""
        ...

    def dispatch_events(self, dispatch: Dispatch) -> None:
        """Where committed writes' domain events go from now on (until then they are dropped)."""
        ...

    async def read_long(self, work: Callable[[Transaction], T]) -> T:
        """A read that may take long (segment evaluation): never on the event loop."""
        ...

    def listen_elsewhere(self, heard: notices.Heard) -> None:
        """Hand `heard` (from another thread) the shared events other processes' writes record, until closed."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Job:
    work: Callable[[Transaction], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    recorded: list[object] = field(default_factory=list)  # its domain events, kept only if it commits


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitWriter:
    """The single writer thread: drains waiting jobs, runs them in one transaction, commits, answers."""

    def __init__(
        self, connect: Callable[[], Any], dialect: Dialect, after_commit: Callable[[Any], None] | None = None
    ) -> None:
        self._connect = connect
        self._dialect = dialect
        self._after_commit = after_commit  # run by the writer thread with its connection, callers answered
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="clarion-writer", daemon=True)
        self._thread.start()
        self.dispatch: Dispatch | None = None

    async def submit(self, work: Callable[[Transaction], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[T, list[object]]] = loop.create_future()
        self._jobs.put(_Job(work, loop, future))
        result, recorded = await future
        if recorded and self.dispatch is not None:
            await self.dispatch(recorded)
        return result

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = self._connect()
        tx = Transaction(conn, self._dialect)
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_WRITES_PER_COMMIT:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            conn = self._commit_batch(conn, tx, batch)
            if self._after_commit is not None:
                self._after_commit(conn)
            tx = Transaction(conn, self._dialect)
        conn.close()

    def _commit_batch(self, conn: Any, tx: Transaction, batch: list[_Job]) -> Any:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute(self._dialect.begin_write)
            for job in batch:
                if len(batch) == 1:
                    outcomes.append(self._attempt(job, tx))
                    continue
                conn.execute("SAVEPOINT job")
                result, error = self._attempt(job, tx)
                conn.execute("ROLLBACK TO SAVEPOINT job" if error else "RELEASE SAVEPOINT job")
                outcomes.append((result, error))
            if len(batch) == 1 and outcomes[0][1] is not None:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
        except Exception as exc:  # the transaction itself failed: nobody's write is durable
            try:
                conn.execute("ROLLBACK")
            except Exception:
                conn = self._reconnect(conn)
            outcomes = [(None, exc)] * len(batch)
        for job, (result, error) in zip(batch, outcomes, strict=True):
            if error is not None:
                job.recorded.clear()  # its write did not happen, so neither did what it recorded
            job.loop.call_soon_threadsafe(_settle, job.future, (result, job.recorded), error)
        return conn

    @staticmethod
    def _attempt(job: _Job, tx: Transaction) -> tuple[Any, BaseException | None]:
        tx._recorded = job.recorded
        try:
            return job.work(tx), None
        except Exception as exc:
            return None, exc
        finally:
            tx._recorded = None

    def _reconnect(self, conn: Any) -> Any:
        with contextlib.suppress(Exception):
            conn.close()
        return self._connect()


# Each connection's page cache, in KiB. The writer and the inline reader walk the same indexes over and over; the
# long readers scan (change feeds, exports), where the OS's file cache serves as well. Four connections of 64 MB
# each were a third of the server's memory at a million endpoints (docs/benchmarks.md, "Server memory").
CACHE_KIB = 32_768
BUSY_TIMEOUT_MS = 10_000
SCAN_CACHE_KIB = 8_192


def connect_sqlite(path: Path, synchronous: str = "NORMAL", cache_kib: int = CACHE_KIB) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    # Segment date criteria read endpoint values as instants; SQLite gets the exact Python rule (clarion/instants.py).
    conn.create_function("clarion_instant_ms", 1, instant_ms, deterministic=True)
    return conn


class WalCheckpoints:
    """Keeps SQLite's WAL from growing without end while readers come one after another.

    SQLite checkpoints after commits (PASSIVE: it copies what no reader still needs) and writes the WAL from its
    start again only once a checkpoint has copied all of it and no reader is inside it. Readers that overlap (a
    stream shipper reading batch after batch, replica syncs, exports) can leave no such moment, and the WAL then
    grows by every commit, each read searching more of it (it reached 8.4 GB in the streams benchmark). Past
    `limit_bytes`, at most every `every_seconds`, the writer checkpoints it whole and truncates it (TRUNCATE),
    waiting at most `wait_ms` for the readers of older snapshots to finish (their transactions are short); one
    that does not finish in time leaves it for the next attempt.

    A busy attempt is normal beside another process on the same file (an API process and a shipper or worker):
    its readers are often inside the WAL at that moment, and the file, once past the limit, keeps its size while
    SQLite writes it from its start again. Every attempt is counted (`outcomes`); only a WAL that grows by another
    `limit_bytes` while every attempt since the first busy one stayed busy is logged, `wal_checkpoint_stuck` at
    warning (then nothing copies it back: a reader holds an old snapshot), at most every `quiet_seconds`, and
    `wal_checkpoint_recovered` once a truncation succeeds after it (docs/operations.md)."""

    def __init__(
        self,
        path: Path,
        limit_bytes: int = 64 << 20,
        every_seconds: float = 5.0,
        wait_ms: int = 200,
        quiet_seconds: float = 60.0,
    ) -> None:
        self.wal = path.with_name(path.name + "-wal")
        self.limit_bytes = limit_bytes
        self.every_seconds = every_seconds
        self.wait_ms = wait_ms
        self.quiet_seconds = quiet_seconds
        self._next = 0.0
        self.outcomes: Counter[str] = Counter()  # truncated, busy, failed: /metrics reports them (clarion/services.py)
        self._busy_since: float | None = None  # the first of the busy attempts in a row
        self._busy_attempts = 0
        self._warn_from = 0  # the WAL size past which the busy attempts in a row are a problem
        self._quiet_until = 0.0
        self._warned = False

    def after_commit(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        try:
            size = os.stat(self.wal).st_size
        except OSError:
            return
        if size < self.limit_bytes:
            return
        self._next = now + self.every_seconds
        conn.execute(f"PRAGMA busy_timeout={self.wait_ms}")
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as error:
            self.outcomes["failed"] += 1
            log.warning("wal_checkpoint_failed", wal_bytes=size, error=str(error))
            return
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if busy:
            self.outcomes["busy"] += 1
            self._busy(now, size, frames, copied)
        else:
            self.outcomes["truncated"] += 1
            self._truncated(now)

    def _busy(self, now: float, size: int, frames: int, copied: int) -> None:
        if self._busy_since is None:
            self._busy_since, self._warn_from = now, size + self.limit_bytes
        self._busy_attempts += 1
        if size < self._warn_from or now < self._quiet_until:
            log.debug("wal_checkpoint_busy", wal_bytes=size, frames=frames, copied=copied)
            return
        self._warn_from, self._quiet_until, self._warned = size + self.limit_bytes, now + self.quiet_seconds, True
        log.warning(
            "wal_checkpoint_stuck",
            wal_bytes=size,
            limit_bytes=self.limit_bytes,
            busy_attempts=self._busy_attempts,
            busy_seconds=round(now - self._busy_since, 1),
            frames=frames,
            copied=copied,
        )

    def _truncated(self, now: float) -> None:
        if self._warned and self._busy_since is not None:
            log.info(
                "wal_checkpoint_recovered",
                busy_attempts=self._busy_attempts,
                busy_seconds=round(now - self._busy_since, 1),
            )
        self._busy_since, self._busy_attempts, self._quiet_until, self._warned = None, 0, 0.0, False


class SqliteDatabase:
    """The embedded store: one file, one writer thread, reads inline on the event loop (WAL readers)."""

    dialect = SQLITE

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        # SQLite gives the WAL and shared-memory files the database file's mode: a 0600 database keeps all three
        # private (clarion/private_files.py).
        private_file(path)
        for companion in ("-wal", "-shm"):
            tighten(path.with_name(path.name + companion))
        self.path = path
        self._reader = connect_sqlite(path, synchronous)
        self.checkpoints = WalCheckpoints(path)
        self._writer = GroupCommitWriter(
            lambda: connect_sqlite(path, synchronous), SQLITE, after_commit=self.checkpoints.after_commit
        )
        self._synchronous = synchronous
        self._long_local = threading.local()
        self._long_readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clarion-long-reader")
        self._long_conns: list[sqlite3.Connection] = []

    async def read(self, work: Callable[[Transaction], T]) -> T:
        # A point read costs tens of microseconds: cheaper than a hop to a thread and back.
        self._reader.execute("BEGIN")
        try:
            return work(Transaction(self._reader, SQLITE))
        finally:
            self._reader.execute("COMMIT")

    async def write(self, work: Callable[[Transaction], T]) -> T:
        return await self._writer.submit(work)

    def dispatch_events(self, dispatch: Dispatch) -> None:
        self._writer.dispatch = dispatch

    async def read_long(self, work: Callable[[Transaction], T]) -> T:
        """A WAL reader of its own in a worker thread: a long scan does not stall every other request."""
        return await asyncio.get_running_loop().run_in_executor(self._long_readers, self._read_long_in_thread, work)

    def listen_elsewhere(self, heard: notices.Heard) -> None:
        """The embedded store serves one process: nothing is written elsewhere to hear of."""

    def _read_long_in_thread(self, work: Callable[[Transaction], T]) -> T:
        conn = getattr(self._long_local, "conn", None)
        if conn is None:
            conn = self._long_local.conn = connect_sqlite(self.path, self._synchronous, SCAN_CACHE_KIB)
            self._long_conns.append(conn)
        conn.execute("BEGIN")
        try:
            return work(Transaction(conn, SQLITE))
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        self._writer.close()
        self._long_readers.shutdown(wait=True)
        for conn in self._long_conns:
            conn.close()
        self._reader.close()


def connect_postgres(url: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    # psycopg prepares a statement on its fifth use and PostgreSQL may then keep a generic plan made while the
    # tables were empty (a full scan per endpoint lookup); planning each execution keeps lookups on the index.
    conn.execute("SET plan_cache_mode = force_custom_plan")
    return conn


class PostgresDatabase:
    """PostgreSQL: the same writer thread per process, reads on a small pool of reader threads."""

    dialect = POSTGRESQL

    def __init__(self, url: str, readers: int = 4) -> None:
        self.url = url
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="clarion-reader")
        self._reader_conns: list[Any] = []
        self._writer = GroupCommitWriter(lambda: connect_postgres(url), POSTGRESQL)
        self._listener: notices.Listener | None = None

    def _reader_conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = connect_postgres(self.url)
            self._reader_conns.append(conn)
        return conn

    def _read_in_thread(self, work: Callable[[Transaction], T]) -> T:
        conn = self._reader_conn()
        with conn.transaction():
            return work(Transaction(conn, POSTGRESQL))

    async def read(self, work: Callable[[Transaction], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_in_thread, work)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        return await self._writer.submit(work)

    def dispatch_events(self, dispatch: Dispatch) -> None:
        self._writer.dispatch = dispatch

    async def read_long(self, work: Callable[[Transaction], T]) -> T:
        return await self.read(work)  # reads already run on the reader threads

    def listen_elsewhere(self, heard: notices.Heard) -> None:
        self._listener = notices.Listener(lambda: connect_postgres(self.url), heard)
        self._listener.listening.wait(timeout=10)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._writer.close()
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
