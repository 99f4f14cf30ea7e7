"""The domain services one Clarion process runs, built once from Settings and shared by API and CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from clarion.analytics.engine import open_segment_engine
from clarion.campaigns.engine import BATCH, CampaignEngine
from clarion.campaigns.hooks import CampaignHooks
from clarion.campaigns.members import SegmentMembers
from clarion.channels.registry import TRANSPORTS, TransportRegistry
from clarion.channels.secrets import SecretBox, load_secret_box
from clarion.channels.service import channel_config, reseal_channels
from clarion.clock import Clock, SystemClock
from clarion.config import Settings
from clarion.endpoints.service import Endpoints
from clarion.events.service import Events
from clarion.jobs.locations import Locations
from clarion.jobs.service import Jobs
from clarion.jobs.workers import job_handlers
from clarion.messages.delivery import Messages
from clarion.messages.tracking import Tracker
from clarion.metrics import Metrics
from clarion.queue.work_queue import StoreQueue
from clarion.queue.worker import Handler, Worker
from clarion.segments.engine import SegmentEngine
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
    channel_secrets: SecretBox  # seals and opens stored channel credentials (clarion/channels/secrets.py)
    transports: TransportRegistry  # each project's open transports (clarion/channels/registry.py)
    messages: Messages  # direct sends, and delivery for campaigns and journeys (clarion/messages/delivery.py)
    campaigns: CampaignEngine  # schedules, plans and delivers campaigns (clarion/campaigns/engine.py)
    segments_engine: SegmentEngine  # segment membership: counts, member pages, samples (clarion/segments/engine.py)
    queue: StoreQueue  # the durable work queue (clarion/queue/, docs/queue.md)
    jobs: Jobs  # import and export jobs (clarion/jobs/)
    # Long-running loops (job runners, senders, schedulers) the process runs beside the API; the app starts
    # each as a task once the store is open and cancels them at shutdown.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called at shutdown, before the store closes (transports, engines).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # What the queue's workers run, by item kind; register handlers here before the app starts.
    queue_handlers: dict[str, Handler] = field(default_factory=dict)

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
    channel_secrets = load_secret_box(settings.delivery, settings.data_dir)
    db = open_database(settings)
    await db.write(migrate)
    await reseal_channels(db, channel_secrets)
    names = NameRegistry()
    endpoints = Endpoints(db, names)
    transports = TransportRegistry(
        settings.delivery, TRANSPORTS, lambda app_id, kind: channel_config(db, app_id, kind, channel_secrets)
    )
    clock = clock or SystemClock()
    queue = StoreQueue(db, clock)
    locations = Locations(settings.jobs, settings.data_dir, clock)
    segments = open_segment_engine(settings, db, clock)
    messages = Messages(db, transports, Tracker(settings.delivery.tracking))
    secret = settings.delivery.webhook.signing_secret
    hooks = CampaignHooks(settings.campaigns, secret.get_secret_value() if secret else None)
    members = SegmentMembers(segments.engine)
    campaigns = CampaignEngine(db, clock, queue, messages, members, settings.campaigns, hooks)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        names=names,
        endpoints=endpoints,
        events=Events(db, names, endpoints.writer),
        metrics=metrics or Metrics(),
        channel_secrets=channel_secrets,
        transports=transports,
        messages=messages,
        campaigns=campaigns,
        segments_engine=segments.engine,
        queue=queue,
        jobs=Jobs(db, queue, locations),
        closers=[transports.close, hooks.close, locations.aclose, *segments.closers],
    )
    services.queue_handlers.update(
        job_handlers(db, queue, locations, endpoints.writer, segments.engine, settings, clock)
    )
    services.queue_handlers.update(campaigns.handlers())
    services.events.listeners.append(campaigns.on_events)
    services.background.extend(segments.background)
    # Campaign batches have workers of their own that hold one batch at a time: a crash can then re-send at most
    # one batch per worker (docs/campaigns.md), whatever the general workers' lease size.
    general = {kind: handler for kind, handler in services.queue_handlers.items() if kind != BATCH}
    one_at_a_time = settings.queue.model_copy(update={"lease_batch": 1})
    for _ in range(settings.queue.workers):
        services.background.append(Worker(queue, general, settings.queue).run)
    for _ in range(settings.campaigns.delivery_workers if settings.queue.workers else 0):
        services.background.append(Worker(queue, {BATCH: campaigns.deliver_batch}, one_at_a_time).run)
    if settings.campaigns.scheduler:
        services.background.append(campaigns.run_scheduler)
    return services
