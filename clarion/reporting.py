"""What the process tells its operator about the work it did: one log line and a metric for each campaign run that
starts or ends and each job that ends, and metrics of each send's outcomes and of what providers and recipients
reported later (bounces, complaints, ...), taken from the domain events those writes recorded.

Reporting after the commit, from the events, means a line or a count is never written for something that rolled
back, and the code that runs campaigns and jobs stays free of it. Subscribed in clarion/services.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from clarion.domain_events import (
    CampaignRunFinished,
    CampaignRunStarted,
    JobFinished,
    MessagesSent,
    OutcomesReported,
)
from clarion.logs import get_logger
from clarion.metrics import Metrics

log = get_logger("clarion.reporting")


class WorkReports:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # The sent-messages counter's children by (channel, status), a few dozen at most: every send reports here,
        # and labels() takes a lock and builds its key on each call.
        self._sent: dict[tuple[str, str], Any] = {}

    def run_started(self, event: CampaignRunStarted) -> None:
        log.info("campaign_run_started", app_id=event.app_id, campaign_id=event.campaign_id, run=event.run_key)

    def run_finished(self, event: CampaignRunFinished) -> None:
        self.metrics.campaign_runs.labels(event.result).inc()
        fields = {
            "app_id": event.app_id,
            "campaign_id": event.campaign_id,
            "run": event.run_key,
            "result": event.result,
            "targeted": event.targeted,
            "successful": event.successful,
        }
        if event.reason:
            log.error("campaign_run_failed", **fields, reason=event.reason)
        else:
            log.info("campaign_run_finished", **fields)

    def job_finished(self, event: JobFinished) -> None:
        self.metrics.jobs.labels(event.job_type, event.status).inc()
        fields = {"app_id": event.app_id, "job_id": event.job_id, "job_type": event.job_type, "status": event.status}
        if event.status == "FAILED":
            log.error("job_failed", **fields, failures=list(event.failures[:5]))
        else:
            log.info("job_finished", **fields)

    def messages_sent(self, event: MessagesSent) -> None:
        for key, count in Counter((m.channel or "NONE", m.status) for m in event.messages).items():
            child = self._sent.get(key)
            if child is None:
                child = self._sent[key] = self.metrics.messages.labels(*key)
            child.inc(count)

    def outcomes_reported(self, event: OutcomesReported) -> None:
        for event_type, count in Counter(outcome.event_type for outcome in event.outcomes).items():
            self.metrics.message_outcomes.labels(event_type).inc(count)
