"""A campaign survives SIGKILL: a real `clarion serve` process is killed while it delivers, restarted on the same
store, and finishes with every eligible endpoint messaged — at most one batch twice, and those counted.

The campaign has 100,000 recipients (CLARION_CRASH_ENDPOINTS changes it), the kill comes after a third of them
have arrived, and the messages go over SMTP to an aiosmtpd server in the test process, which records every
message it accepts.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from processes import pinpoint, start_server
from smtp_relay import Relay

from clarion.config import Settings

ENDPOINTS = int(os.environ.get("CLARION_CRASH_ENDPOINTS", "100000"))
BATCH = 100
KILL_AFTER = ENDPOINTS // 3


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


def test_sigkill_during_delivery_loses_nothing_and_duplicates_at_most_a_batch(
    settings: Settings, relay: tuple[Relay, int], tmp_path: Path
) -> None:
    sink, smtp_port = relay
    log = tmp_path / "server.log"
    process = start_server(settings, log, **env(smtp_port))
    try:
        client = pinpoint(settings.port)
        app_id = client.create_app(CreateApplicationRequest={"Name": "crash"})["ApplicationResponse"]["Id"]
        client.update_email_channel(
            ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
        )
        for start in range(0, ENDPOINTS, 100):
            items = [
                {"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"e{n}@example.org"}
                for n in range(start, start + 100)
            ]
            client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
        segment = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})
        campaign = client.create_campaign(
            ApplicationId=app_id,
            WriteCampaignRequest={
                "Name": "crash",
                "SegmentId": segment["SegmentResponse"]["Id"],
                "Schedule": {"StartTime": "IMMEDIATE"},
                "MessageConfiguration": {"EmailMessage": {"Title": "Hello", "Body": "Hi"}},
            },
        )["CampaignResponse"]
        wait_for(lambda: len(sink.received) >= KILL_AFTER, 120, f"{KILL_AFTER} messages before the kill")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        at_kill = len(sink.received)
        assert at_kill < ENDPOINTS, "the campaign finished before the kill; the test proves nothing"
    finally:
        if process.poll() is None:
            process.kill()

    process = start_server(settings, log, **env(smtp_port))
    try:
        client = pinpoint(settings.port)

        def completed() -> bool:
            response = client.get_campaign(ApplicationId=app_id, CampaignId=campaign["Id"])
            return response["CampaignResponse"]["State"]["CampaignStatus"] == "COMPLETED"

        wait_for(completed, 180, "the campaign to complete after the restart")
        activities = client.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign["Id"])
        [activity] = activities["ActivitiesResponse"]["Item"]
    finally:
        process.kill()
        process.wait()

    received = Counter(sink.recipients())
    assert set(received) == {f"e{n}@example.org" for n in range(ENDPOINTS)}  # nobody missed
    duplicates = sum(received.values()) - len(received)
    reported = int(activity["ExecutionMetrics"].get("PossibleDuplicates", "0"))
    assert duplicates <= BATCH  # one delivery worker holds one batch at a time
    assert duplicates <= reported <= BATCH  # every duplicate is accounted for
    assert activity["State"] == "COMPLETED" and activity["TotalEndpointCount"] >= ENDPOINTS
