"""Prometheus metrics, one registry per process (tests build their own).

A process group started by `clarion serve --workers N` reports as one: the command points every worker at one
folder (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`), each worker writes its values there,
and whichever worker answers /metrics sums them all (docs/operations.md#health-metrics-logs).
"""

from __future__ import annotations

import os
import re
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, Metric

# Where the workers of one `clarion serve --workers N` keep their values (prometheus_client reads it at import).
GROUP_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


class _Tally:
    """A counter family kept as a plain tally by a part of Clarion that imports nothing of the metrics (the template
    engine's budget stops, the SQLite writer's WAL checkpoints): this reads it when /metrics is scraped."""

    def __init__(self, name: str, documentation: str, label: str, tally: Tally[str]) -> None:
        self.name, self.documentation, self.label, self.tally = name, documentation, label, tally

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in sorted(self.tally.items()):
            family.add_metric([value], count)
        yield family


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.group_dir = os.environ.get(GROUP_DIR_ENV) or None
        self._tallies: list[_Tally] = []
        # What every Prometheus client reports of its process: CPU, memory, open files (process_*), the Python
        # version (python_info) and garbage collections (python_gc_*). A group's /metrics sums what the workers
        # wrote, and per-process figures do not sum: a group reports them per worker only through its own logs.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "clarion_requests", "Pinpoint API requests answered", ["operation", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "clarion_request_seconds",
            "Time to answer a Pinpoint API request",
            ["operation"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "clarion_auth_failures", "Requests refused before any work", ["reason"], registry=self.registry
        )
        self.rate_limited = Counter(
            "clarion_rate_limited",
            "Requests refused with 429 because their key was over its rate",
            ["key"],
            registry=self.registry,
        )
        self.endpoints_ingested = Counter(
            "clarion_endpoints_ingested", "Endpoints written by UpdateEndpoint(sBatch)", registry=self.registry
        )
        self.events_ingested = Counter(
            "clarion_events_ingested", "Events accepted by PutEvents", registry=self.registry
        )
        self.subscriber_failures = Counter(
            "clarion_subscriber_failures",
            "Domain event subscribers that raised (clarion/domain_events.py)",
            ["event"],
            registry=self.registry,
        )
        self.console_audit_failures = Counter(
            "clarion_console_audit_failures",
            "Console changes done but not written to the audit log (the server log has each one)",
            registry=self.registry,
        )
        self.outbound_refused = Counter(
            "clarion_outbound_refused",
            "Requests to tenant-supplied URLs refused before connecting, by kind of address",
            ["kind"],
            registry=self.registry,
        )
        self.queue_failures = Counter(
            "clarion_queue_item_failures",
            "Queue item deliveries that raised or timed out",
            ["kind", "cause"],
            registry=self.registry,
        )
        self.queue_buried = Counter(
            "clarion_queue_items_buried", "Queue items given up on and set aside", ["kind"], registry=self.registry
        )
        self.recommender_failures = Counter(
            "clarion_recommender_failures",
            "Recommendations that could not be had (their recipients are not sent to), by stage and reason",
            ["stage", "reason"],
            registry=self.registry,
        )
        self.otp_outcomes = Counter(
            "clarion_otp_outcomes",
            "SendOTPMessage and VerifyOTPMessage outcomes (sent, rate_limited, valid, wrong, expired, ...)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.stream_records = Counter(
            "clarion_event_stream_records",
            "Event stream records their sink acknowledged",
            ["sink"],
            registry=self.registry,
        )
        self.stream_failures = Counter(
            "clarion_event_stream_failures",
            "Event stream batches their sink failed to acknowledge (each is retried)",
            ["sink"],
            registry=self.registry,
        )
        # Per project with a stream this process ships (at most one stream per project).
        self.stream_lag_seconds = Gauge(
            "clarion_event_stream_lag_seconds",
            "Age of the oldest event its stream's sink has not acknowledged (0: caught up)",
            ["application_id"],
            registry=self.registry,
            multiprocess_mode="mostrecent",  # the worker shipping the stream now
        )
        self.stream_lag_records = Gauge(
            "clarion_event_stream_lag_records",
            "Events committed but not yet acknowledged by their stream's sink",
            ["application_id"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

        # The send path and what it leads to (clarion/reporting.py counts most of these from domain events).
        self.messages = Counter(
            "clarion_messages",
            "Messages by channel and DeliveryStatus as the send decided them (sent, refused, failed)",
            ["channel", "status"],
            registry=self.registry,
        )
        self.message_outcomes = Counter(
            "clarion_message_outcomes",
            "What providers and recipients reported about messages afterwards, by event: deliveries, bounces, "
            "complaints, opens, clicks, unsubscribes, inbound STOP/START",
            ["event_type"],
            registry=self.registry,
        )
        self.provider_seconds = Histogram(
            "clarion_provider_seconds",
            "Time a transport took to hand one message to its provider (SMTP relay, SMS gateway, APNs, ...)",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.campaign_runs = Counter(
            "clarion_campaign_runs", "Campaign runs ended, by activity Result", ["result"], registry=self.registry
        )
        self.campaign_endpoint_retries = Counter(
            "clarion_campaign_endpoint_retries",
            "Campaign recipients whose THROTTLED or TEMPORARY_FAILURE message was queued again (retried) or not "
            "any more (gave_up)",
            ["outcome"],
            registry=self.registry,
        )
        self.journey_step_failures = Counter(
            "clarion_journey_step_failures",
            "Journey participants whose step raised: to be tried again later (retried) or given up on (gave_up)",
            ["outcome"],
            registry=self.registry,
        )
        self.journey_contact_center = Counter(
            "clarion_journey_contact_center",
            "Journey participants handed to the contact-center webhook (successful), to be tried again later after "
            "a failed call (retried), or counted FAILED after the last try (failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "clarion_jobs",
            "Import and export jobs ended, by type and status",
            ["type", "status"],
            registry=self.registry,
        )
        # Read from the store when /metrics is scraped: the queue's state, the same from every process sharing it.
        self.queue_depth = Gauge(
            "clarion_queue_depth",
            "Queue items waiting or running, by kind",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.queue_oldest_seconds = Gauge(
            "clarion_queue_oldest_age_seconds",
            "How long the longest-waiting due item of each kind has waited since it became due",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.queue_buried_now = Gauge(
            "clarion_queue_buried_items",
            "Queue items given up on and kept, by kind",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.retention_pruned = Counter(
            "clarion_retention_pruned",
            "Rows removed past their retention: events, messages, tombstones",
            ["kind"],
            registry=self.registry,
        )
        self.retention_failures = Counter(
            "clarion_retention_failures", "Retention prune passes that failed", registry=self.registry
        )
        self.rollup_rows_merged = Counter(
            "clarion_kpi_rollup_rows_merged",
            "PostgreSQL KPI rollup rows folded away by merging each ended hour into one row per key",
            registry=self.registry,
        )
        self.rollup_merge_failures = Counter(
            "clarion_kpi_rollup_merge_failures", "KPI rollup merge passes that failed", registry=self.registry
        )
        self.leader = Gauge(
            "clarion_leader",
            "1 while this process holds the role's leader lease (one process of a group at a time)",
            ["role"],
            registry=self.registry,
            multiprocess_mode="livesum",  # a group's /metrics: how many live workers hold it (1)
        )

    def count_tally(self, name: str, documentation: str, label: str, tally: Tally[str]) -> None:
        """Report a tally kept in memory elsewhere (clarion/templates/budget.py, clarion/store/database.py) as a
        counter family, by `label`."""
        collector = _Tally(name, documentation, label, tally)
        self._tallies.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """What /metrics answers: this process's metrics, or in a group every worker's summed (counters and
        histograms add up; the leader gauge counts live holders; stream lags are the latest value written)."""
        if self.group_dir is None:
            return generate_latest(self.registry)
        _forget_dead_workers(Path(self.group_dir))
        group = CollectorRegistry()
        multiprocess.MultiProcessCollector(group, path=self.group_dir)
        for collector in self._tallies:
            group.register(collector)  # kept in this worker's memory: this worker's only
        return generate_latest(group)


def _forget_dead_workers(folder: Path) -> None:
    """A worker killed without a clean stop leaves its live gauges behind; drop those of processes gone."""
    for file in folder.glob("gauge_live*.db"):
        found = _LIVE_FILE.fullmatch(file.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))
        except PermissionError:  # alive, another user's
            continue
