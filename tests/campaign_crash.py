"""The campaign crash scenario: a real `clarion serve` process is killed with SIGKILL while it delivers a campaign,
restarted on the same store, and must finish with every eligible endpoint messaged, at most one batch twice, and
those counted.

The messages go over SMTP to an aiosmtpd server in this process, which records every message it accepts; the kill
comes after a third of them have arrived. tests/test_campaign_crash.py runs it at a few thousand recipients on
both stores; bench/campaign_crash.py runs it at 100,000 (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinpoint_calls import immediate_campaign, project_with_email
from processes import pinpoint, start_server
from smtp_relay import Relay

from clarion.config import Settings

BATCH = 100


@dataclass(frozen=True)
class CrashRun:
    endpoints: int
    received_at_kill: int
    received: Counter[str]  # recipient -> messages it got
    activity: dict[str, Any]  # the run's activity after the restart
    seconds_to_complete: float  # from the restart until the campaign is COMPLETED

    @property
    def duplicates(self) -> int:
        return sum(self.received.values()) - len(self.received)

    @property
    def reported_duplicates(self) -> int:
        return int(self.activity["ExecutionMetrics"].get("PossibleDuplicates", "0"))


def env(port: int) -> dict[str, str]:
    return {
        "CLARION_DELIVERY__SMTP__HOST": "127.0.0.1",
        "CLARION_DELIVERY__SMTP__PORT": str(port),
        "CLARION_DELIVERY__SMTP__SECURITY": "none",
        "CLARION_CAMPAIGNS__BATCH_SIZE": str(BATCH),
        # A killed worker's batch comes back after its lease; keep the wait short for the test.
        "CLARION_QUEUE__VISIBILITY_SECONDS": "2",
    }


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_email_campaign(client: Any, name: str, endpoints: int) -> tuple[str, str]:
    """A project with `endpoints` email endpoints (e0@example.org, ...) and an IMMEDIATE campaign to all of them;
    (the project's id, the campaign's)."""
    app_id, segment_id = project_with_email(client, name, endpoints)
    return app_id, immediate_campaign(client, app_id, segment_id, Name=name)


def crash_and_restart(settings: Settings, relay: tuple[Relay, int], log: Path, endpoints: int) -> CrashRun:
    """Create an IMMEDIATE email campaign to `endpoints` recipients, kill the server a third of the way through,
    restart it, and wait (generously: the machine may be loaded) for the campaign to complete."""
    sink, smtp_port = relay
    kill_after = endpoints // 3
    process = start_server(settings, log, **env(smtp_port))
    try:
        client = pinpoint(settings.port)
        app_id, campaign_id = start_email_campaign(client, "crash", endpoints)
        wait_for(
            lambda: len(sink.received) >= kill_after, 120 + endpoints / 500, f"{kill_after} messages before the kill"
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        at_kill = len(sink.received)
    finally:
        if process.poll() is None:
            process.kill()

    process = start_server(settings, log, **env(smtp_port))
    restarted = time.monotonic()
    try:
        client = pinpoint(settings.port)

        def completed() -> bool:
            response = client.get_campaign(ApplicationId=app_id, CampaignId=campaign_id)
            return response["CampaignResponse"]["State"]["CampaignStatus"] == "COMPLETED"

        wait_for(completed, 180 + endpoints / 250, "the campaign to complete after the restart")
        elapsed = time.monotonic() - restarted
        activities = client.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)
        [activity] = activities["ActivitiesResponse"]["Item"]
    finally:
        process.kill()
        process.wait()
    return CrashRun(endpoints, at_kill, Counter(sink.recipients()), activity, elapsed)


def check_nothing_lost(run: CrashRun) -> None:
    """Every recipient got the message; duplicates are at most one batch, and every one was reported."""
    assert run.received_at_kill < run.endpoints, "the campaign finished before the kill; the run proves nothing"
    assert set(run.received) == {f"e{n}@example.org" for n in range(run.endpoints)}  # nobody missed
    assert run.duplicates <= BATCH  # one delivery worker holds one batch at a time
    assert run.duplicates <= run.reported_duplicates <= BATCH  # every duplicate is accounted for
    assert run.activity["State"] == "COMPLETED" and run.activity["TotalEndpointCount"] >= run.endpoints
