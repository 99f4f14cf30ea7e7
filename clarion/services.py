"""The domain services one Clarion process runs, built once from Settings and shared by API and CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from clarion.clock import Clock, SystemClock
from clarion.config import Settings
from clarion.endpoints.service import Endpoints
from clarion.events.service import Events
from clarion.metrics import Metrics
from clarion.store.database import Database, PostgresDatabase, SqliteDatabase
from clarion.store.migrations import migrate
from clarion.store.names import NameRegistry


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    names: NameRegistry
    endpoints: Endpoints
    events: Events
    metrics: Metrics
    # Long-running loops (job runners, senders, schedulers) the process runs beside the API; the app starts
    # each as a task once the store is open and cancels them at shutdown.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called at shutdown, before the store closes (transports, engines).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for closer in reversed(self.closers):
            await closer()

    def close(self) -> None:
        self.db.close()


def open_database(settings: Settings) -> Database:
    if settings.uses_postgres:
        return PostgresDatabase(settings.database_url)
    return SqliteDatabase(settings.sqlite_path, settings.sqlite_synchronous)


async def open_services(settings: Settings, clock: Clock | None = None, metrics: Metrics | None = None) -> Services:
    db = open_database(settings)
    await db.write(migrate)
    names = NameRegistry()
    endpoints = Endpoints(db, names)
    return Services(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        names=names,
        endpoints=endpoints,
        events=Events(db, names, endpoints.writer),
        metrics=metrics or Metrics(),
    )
