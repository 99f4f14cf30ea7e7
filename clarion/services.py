"""The composition root: the parts one Clarion process runs, built once from Settings and shared by API and CLI.

Domain operations are functions in their packages that take what they need (the store first); what lives as long
as the process is built here once: the store, the queue, the transports, the send path, the campaign scheduler,
planner and delivery. This is also the one place where domain event subscribers are registered
(clarion/domain_events.py): whatever must follow a committed write is wired below, not in the code that writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clarion.access_keys.service import AccessKeys, KeyRing
from clarion.analytics.dataset import EXPORT_KIND, ScheduledExport
from clarion.analytics.engine import open_segment_engine
from clarion.analytics.kpis import KpiRunner
from clarion.analytics.retention import RetentionPruner
from clarion.campaigns.completion import count_buried
from clarion.campaigns.delivery import CampaignDelivery
from clarion.campaigns.hooks import CampaignHooks
from clarion.campaigns.members import SegmentMembers
from clarion.campaigns.planner import CampaignPlanner
from clarion.campaigns.runs import BATCH, PLAN
from clarion.campaigns.scheduler import CampaignScheduler
from clarion.campaigns.triggers import EventTriggers
from clarion.channels.cache import ChannelCache
from clarion.channels.delivery import ProviderReport
from clarion.channels.email.bounces import BounceListener
from clarion.channels.outcomes import report
from clarion.channels.registry import TRANSPORTS, TransportRegistry
from clarion.channels.secrets import SecretBox, load_secret_box
from clarion.channels.service import channel_config, reseal_channels
from clarion.clock import Clock, SystemClock
from clarion.config import Settings
from clarion.console.accounts import ConsoleAccounts
from clarion.context import CallContext
from clarion.coordination.buckets import Buckets, open_buckets
from clarion.coordination.leader import Leadership, process_name
from clarion.domain_events import (
    AccessKeysChanged,
    AppChanged,
    CampaignChanged,
    CampaignRunFinished,
    CampaignRunStarted,
    Change,
    ChannelChanged,
    EventsIngested,
    EventStreamChanged,
    JobFinished,
    JourneyChanged,
    JourneyEntriesHeld,
    MessagesSent,
    NamesAdded,
    OutcomesReported,
    SegmentChanged,
    Subscriptions,
)
from clarion.endpoints.service import EndpointWriter
from clarion.jobs.locations import Locations
from clarion.jobs.workers import job_handlers
from clarion.journeys.engine import JourneyEngine
from clarion.journeys.steps import Steps
from clarion.journeys.zones import PostalZones, ZoneEstimator
from clarion.messages.delivery import Delivery
from clarion.messages.tracking import Tracker
from clarion.metrics import Metrics
from clarion.outbound.client import OutboundClient
from clarion.queue.work_queue import StoreQueue
from clarion.queue.worker import Handler, Worker
from clarion.recommenders.engine import Recommendations
from clarion.reporting import WorkReports
from clarion.segments.engine import SegmentEngine
from clarion.store.database import Database, PostgresDatabase, SqliteDatabase
from clarion.store.migrations import migrate as migrate_store
from clarion.store.names import NameRegistry
from clarion.streams.shipper import ShipperParts, StreamShipper
from clarion.streams.sink import SinkContext
from clarion.templates.budget import EXCEEDED


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics
    subscriptions: Subscriptions  # who reacts to domain events (registered in open_services only)
    names: NameRegistry  # the custom names each project has used (attribute, metric and event quotas)
    endpoint_writer: EndpointWriter  # the endpoint upsert every endpoint write goes through
    channel_secrets: SecretBox  # seals and opens stored channel credentials (clarion/channels/secrets.py)
    transports: TransportRegistry  # each project's open transports (clarion/channels/registry.py)
    tracker: Tracker  # signed open, click and unsubscribe links (clarion/messages/tracking.py)
    delivery: Delivery  # the one send path: direct sends, campaigns, journeys (clarion/messages/delivery.py)
    buckets: Buckets  # rate buckets shared by the process group: MessagesPerSecond, API request rates
    segments_engine: SegmentEngine  # segment membership: counts, member pages, samples (clarion/segments/engine.py)
    kpis: KpiRunner  # KPI counters, on the segment engine's store (clarion/analytics/kpis.py)
    retention: RetentionPruner  # removes rows past their retention (clarion/analytics/retention.py)
    queue: StoreQueue  # the durable work queue (clarion/queue/, docs/queue.md)
    locations: Locations  # where import and export jobs read and write files (clarion/jobs/locations.py)
    campaign_scheduler: CampaignScheduler  # starts due campaign runs (clarion/campaigns/scheduler.py)
    journey_engine: JourneyEngine  # lets participants in and moves them on (clarion/journeys/engine.py)
    scheduler_leadership: Leadership  # runs the scheduler in one process of the group at a time
    key_ring: KeyRing  # the access keys requests are checked against (clarion/access_keys/service.py)
    stream_shipper: StreamShipper  # ships events to their projects' stream sinks (clarion/streams/shipper.py)
    console: ConsoleAccounts  # web console users and sessions (clarion/console/)
    # Long-running loops (job runners, senders, schedulers) the process runs beside the API; the app starts
    # each as a task once the store is open and cancels them at shutdown.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called at shutdown, before the store closes (transports, engines).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # What the queue's workers run, by item kind; register handlers here before the app starts.
    queue_handlers: dict[str, Handler] = field(default_factory=dict)

    async def record_outcomes(self, reports: Sequence[ProviderReport]) -> int:
        """Record what providers and recipients reported (webhooks, tracking links, the bounce listener); the number
        of reports that found their message."""
        ctx = CallContext(str(uuid.uuid4()), self.settings.region, self.settings.account_id, self.clock.now())
        return await report(self.db, self.endpoint_writer, ctx, reports)

    async def aclose(self) -> None:
        for closer in reversed(self.closers):
            await closer()

    def close(self) -> None:
        self.db.close()


def open_database(settings: Settings) -> Database:
    if settings.uses_postgres:
        return PostgresDatabase(settings.database_url)
    return SqliteDatabase(settings.sqlite_path, settings.sqlite_synchronous)


async def open_services(
    settings: Settings, clock: Clock | None = None, metrics: Metrics | None = None, *, migrate: bool = True
) -> Services:
    """Everything the server runs, on the store (migrated first unless `migrate` is False: the caller did)."""
    channel_secrets = load_secret_box(settings.delivery, settings.data_dir)
    db = open_database(settings)
    if migrate:
        await db.write(migrate_store)
    await reseal_channels(db, channel_secrets)
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    metrics.count_tally(
        "clarion_template_budget_exceeded", "Message renders stopped by a template budget", "budget", EXCEEDED
    )
    if isinstance(db, SqliteDatabase):
        metrics.count_tally(
            "clarion_sqlite_wal_checkpoints",
            "Checkpoints of an oversized SQLite WAL by the writer, by outcome (busy: readers held it; tried again)",
            "outcome",
            db.checkpoints.outcomes,
        )
    subscriptions = Subscriptions(metrics.subscriber_failures)
    db.dispatch_events(subscriptions.dispatch)
    _hear_other_processes(db, subscriptions)
    names = NameRegistry()
    writer = EndpointWriter(names)
    outbound = OutboundClient(settings.outbound, metrics)  # every request to a tenant URL or a message provider
    channels = ChannelCache(lambda app_id, kind: channel_config(db, app_id, kind, channel_secrets))
    transports = TransportRegistry(settings.delivery, TRANSPORTS, channels.get, outbound)
    queue = StoreQueue(db, clock, metrics)
    locations = Locations(settings.jobs, settings.data_dir, clock, outbound)
    segments = open_segment_engine(settings, db, clock, metrics)
    tracker = Tracker(settings.delivery.tracking)
    secret = settings.delivery.webhook.signing_secret
    signing_secret = secret.get_secret_value() if secret else None
    recommendations = Recommendations(db, outbound, settings.recommenders, clock, metrics, signing_secret)
    buckets = open_buckets(settings.coordination, db, clock)
    delivery = Delivery(db, transports, tracker, recommendations, metrics, buckets, clock)
    hooks = CampaignHooks(settings.campaigns, signing_secret, outbound)
    members = SegmentMembers(segments.engine)
    scheduler = CampaignScheduler(db, clock, queue, settings.campaigns)
    leadership = Leadership(
        db, clock, metrics, "campaign-scheduler", settings.coordination.leader_lease_seconds, process_name()
    )
    key_ring = KeyRing(settings.all_access_keys(), AccessKeys(db, channel_secrets, clock))
    planner = CampaignPlanner(db, clock, queue, members, settings.campaigns)
    campaign_delivery = CampaignDelivery(db, clock, queue, delivery, members, hooks, settings.campaigns, metrics)
    triggers = EventTriggers(db, clock, queue, members)
    steps = Steps(
        db, delivery, members, segments.engine, ZoneEstimator(PostalZones.load(settings.journeys.postal_code_zones))
    )
    journeys = JourneyEngine(db, clock, steps, members, outbound, settings.journeys, metrics)
    journey_leadership = Leadership(
        db, clock, metrics, "journey-engine", settings.coordination.leader_lease_seconds, process_name()
    )
    sink_context = SinkContext(outbound, clock, settings.data_dir, settings.jobs.s3)
    shipper = StreamShipper(ShipperParts(db, settings.streams, settings.account_id, clock, metrics, sink_context))
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        metrics=metrics,
        subscriptions=subscriptions,
        names=names,
        endpoint_writer=writer,
        channel_secrets=channel_secrets,
        transports=transports,
        tracker=tracker,
        delivery=delivery,
        buckets=buckets,
        segments_engine=segments.engine,
        kpis=segments.kpis,
        retention=RetentionPruner(db, clock, settings.retention, metrics, segments.prune_replica),
        queue=queue,
        locations=locations,
        campaign_scheduler=scheduler,
        journey_engine=journeys,
        scheduler_leadership=leadership,
        key_ring=key_ring,
        stream_shipper=shipper,
        console=ConsoleAccounts(db, clock),
        closers=[transports.close, outbound.close, locations.aclose, buckets.aclose, *segments.closers],
    )

    def forget_deleted_project(event: AppChanged) -> None:
        if event.change is Change.DELETED:
            names.forget(event.app_id)

    # Domain event subscribers: what follows a committed write. Those registered `everywhere` keep a cache or wake
    # a loop in every process, so they also hear what other processes' writes record.
    subscriptions.on(CampaignChanged, scheduler.campaign_changed, everywhere=True)
    subscriptions.on(CampaignChanged, triggers.campaign_changed, everywhere=True)
    subscriptions.on(EventsIngested, triggers.events_ingested)
    subscriptions.on(AppChanged, forget_deleted_project, everywhere=True)
    subscriptions.on(ChannelChanged, channels.channel_changed, everywhere=True)
    subscriptions.on(AppChanged, channels.app_changed, everywhere=True)
    subscriptions.on_missed(channels.clear)
    subscriptions.on(NamesAdded, names.names_added, everywhere=True)
    subscriptions.on(AccessKeysChanged, key_ring.keys_changed, everywhere=True)
    subscriptions.on_missed(names.clear)
    subscriptions.on_missed(triggers.clear)
    subscriptions.on_missed(key_ring.refresh)
    subscriptions.on(JourneyChanged, journeys.wake, everywhere=True)
    subscriptions.on(JourneyEntriesHeld, journeys.wake, everywhere=True)
    subscriptions.on(SegmentChanged, journeys.segment_changed)
    subscriptions.on(EventsIngested, shipper.events_ingested)
    subscriptions.on(MessagesSent, shipper.messages_sent)
    subscriptions.on(OutcomesReported, shipper.outcomes_reported)
    subscriptions.on(EventStreamChanged, shipper.stream_changed)
    reports = WorkReports(metrics)  # log lines and metrics of runs, jobs and sends (clarion/reporting.py)
    subscriptions.on(CampaignRunStarted, reports.run_started)
    subscriptions.on(CampaignRunFinished, reports.run_finished)
    subscriptions.on(JobFinished, reports.job_finished)
    subscriptions.on(MessagesSent, reports.messages_sent)
    subscriptions.on(OutcomesReported, reports.outcomes_reported)

    if settings.delivery.bounces.port:  # bounces and complaints by mail (clarion/channels/email/bounces.py)
        bounces = BounceListener(settings.delivery.bounces, services.record_outcomes)
        await bounces.start()
        services.closers.append(bounces.close)

    services.queue_handlers.update(job_handlers(db, queue, locations, writer, segments.engine, settings, clock))
    services.queue_handlers[PLAN] = planner.plan
    services.queue_handlers[BATCH] = campaign_delivery.deliver_batch
    queue.on_buried(PLAN, count_buried)
    queue.on_buried(BATCH, count_buried)
    if settings.analytics.export_dir:  # the scheduled Parquet export (docs/analytics.md)
        analytics = settings.analytics
        folder = Path(analytics.export_dir)
        export = ScheduledExport(
            db, queue, clock, folder, analytics.export_hour, analytics.export_days, analytics.threads
        )
        services.queue_handlers[EXPORT_KIND] = export.handle
        # One process of the group looks for the day's export (any worker runs it): the others would only find it
        # enqueued already.
        exporting = Leadership(
            db, clock, metrics, "dataset-export", settings.coordination.leader_lease_seconds, process_name()
        )
        services.background.append(lambda: exporting.run(export.run))
    services.background.extend(segments.background)
    # Campaign batches have workers of their own that hold one batch at a time: a crash can then re-send at most
    # one batch per worker (docs/campaigns.md), whatever the general workers' concurrency.
    general = {kind: handler for kind, handler in services.queue_handlers.items() if kind != BATCH}
    one_at_a_time = settings.queue.model_copy(update={"concurrency": 1})
    for _ in range(settings.queue.workers):
        services.background.append(Worker(queue, general, settings.queue).run)
    for _ in range(settings.campaigns.delivery_workers if settings.queue.workers else 0):
        services.background.append(Worker(queue, {BATCH: campaign_delivery.deliver_batch}, one_at_a_time).run)
    if settings.campaigns.scheduler:  # one process of the group schedules at a time; the others stand by
        services.background.append(lambda: leadership.run(scheduler.run))
    services.background.append(key_ring.follow)
    if settings.journeys.engine:  # one process of the group runs journeys at a time, like the scheduler
        services.background.append(lambda: journey_leadership.run(journeys.run))
    if settings.streams.shipper:
        services.background.append(shipper.run)
    # The store's rows are pruned by one process of the group; each process prunes the replica it keeps itself.
    retention_leadership = Leadership(
        db, clock, metrics, "retention", settings.coordination.leader_lease_seconds, process_name()
    )
    services.background.append(lambda: retention_leadership.run(services.retention.run))
    if segments.prune_replica is not None:
        services.background.append(services.retention.run_replica)
    return services


def _hear_other_processes(db: Database, subscriptions: Subscriptions) -> None:
    """Other processes' shared events (clarion/store/notices.py) reach this process's subscribers on its loop."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def dispatch(event: object | None) -> None:
        work = subscriptions.dispatch_elsewhere([event]) if event is not None else subscriptions.missed()
        task = loop.create_task(work)
        pending.add(task)  # keep a reference until it finishes
        task.add_done_callback(pending.discard)

    def heard(event: object | None) -> None:  # on the listener's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: the process is stopping
            loop.call_soon_threadsafe(dispatch, event)

    db.listen_elsewhere(heard)
