"""A journey survives SIGKILL: a real `clarion serve` process is killed while its participants are stepped through
an email, a wait and a second email, restarted on the same store, and the journey completes with every participant
sent each email — at most one step batch twice, and each of those counted as a possible duplicate. And an event
accepted by a process that is killed before any engine ran starts its journey once the engine runs again.

The messages go over SMTP to an aiosmtpd server in this process; the kill comes after a third of the first emails
have arrived. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from campaign_crash import wait_for
from processes import pinpoint, start_server
from smtp_relay import Relay

from clarion.config import Settings

ENDPOINTS = 300
BATCH = 25


def env(smtp_port: int) -> dict[str, str]:
    return {
        "CLARION_DELIVERY__SMTP__HOST": "127.0.0.1",
        "CLARION_DELIVERY__SMTP__PORT": str(smtp_port),
        "CLARION_DELIVERY__SMTP__SECURITY": "none",
        "CLARION_JOURNEYS__STEP_BATCH": str(BATCH),
        # A killed stepper's lease must run out before its participants are stepped again, and the killed
        # process's hold on the engine's leader lease before the restarted one runs it; keep both short here.
        "CLARION_JOURNEYS__LEASE_SECONDS": "2",
        "CLARION_COORDINATION__LEADER_LEASE_SECONDS": "2",
    }


def test_sigkill_while_stepping_loses_no_step_and_duplicates_at_most_a_batch(
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
        for name in ("first", "second"):
            client.create_email_template(
                TemplateName=f"crash-{name}", EmailTemplateRequest={"Subject": name, "TextPart": "x"}
            )
        for start in range(0, ENDPOINTS, 100):
            items = [
                {"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"e{n}@example.org"}
                for n in range(start, min(start + 100, ENDPOINTS))
            ]
            client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
        segment_id = client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})[
            "SegmentResponse"
        ]["Id"]
        activities = {
            "first": {"EMAIL": {"TemplateName": "crash-first", "NextActivity": "pause"}},
            "pause": {"Wait": {"WaitTime": {"WaitFor": "PT2S"}, "NextActivity": "second"}},
            "second": {"EMAIL": {"TemplateName": "crash-second"}},
        }
        journey_id = client.create_journey(
            ApplicationId=app_id,
            WriteJourneyRequest={
                "Name": "crash",
                "Activities": activities,
                "StartActivity": "first",
                "StartCondition": {"SegmentStartCondition": {"SegmentId": segment_id}},
                "State": "ACTIVE",
            },
        )["JourneyResponse"]["Id"]
        wait_for(lambda: len(sink.received) >= ENDPOINTS // 3, 120, "a third of the first emails before the kill")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        at_kill = len(sink.received)
    finally:
        if process.poll() is None:
            process.kill()

    process = start_server(settings, log, **env(smtp_port))
    try:
        client = pinpoint(settings.port)

        def completed() -> bool:
            journey = client.get_journey(ApplicationId=app_id, JourneyId=journey_id)["JourneyResponse"]
            return journey["State"] == "COMPLETED"

        wait_for(completed, 180, "the journey to complete after the restart")
        first = client.get_journey_execution_activity_metrics(
            ApplicationId=app_id, JourneyId=journey_id, JourneyActivityId="first"
        )["JourneyExecutionActivityMetricsResponse"]["Metrics"]
        metrics = client.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
    finally:
        process.kill()
        process.wait()
    time.sleep(0.2)  # the relay has every message the server handed over before it died
    assert at_kill < 2 * ENDPOINTS, "the journey finished before the kill; the run proves nothing"
    got = Counter((r.rcpt_tos[0], r.message()["Subject"]) for r in sink.received)
    expected = {(f"e{n}@example.org", subject) for n in range(ENDPOINTS) for subject in ("first", "second")}
    assert set(got) == expected  # every step of every participant happened
    duplicates = sum(got.values()) - len(got)
    assert duplicates <= BATCH  # only the batch in flight at the kill
    assert duplicates <= int(first.get("POSSIBLE_DUPLICATE", "0")) <= BATCH  # and every one of them was counted
    assert metrics["JourneyExecutionMetricsResponse"]["Metrics"]["ENDPOINT_LEFT"] == str(ENDPOINTS)


def _project(client: Any, name: str, endpoints: int) -> str:
    app_id = client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    client.create_email_template(TemplateName=f"{name}-thanks", EmailTemplateRequest={"Subject": name, "TextPart": "x"})
    items = [{"Id": f"e{n}", "ChannelType": "EMAIL", "Address": f"{name}{n}@example.org"} for n in range(endpoints)]
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    return app_id


def test_an_accepted_event_starts_its_journey_after_the_process_that_took_it_is_killed(
    settings: Settings, relay: tuple[Relay, int], tmp_path: Path
) -> None:
    sink, smtp_port = relay
    log = tmp_path / "server.log"
    endpoints = 40
    # The first process answers the API but runs no journey engine: whatever it accepted must outlive it.
    process = start_server(settings, log, CLARION_JOURNEYS__ENGINE="false", **env(smtp_port))
    try:
        client = pinpoint(settings.port)
        app_id = _project(client, "held", endpoints)
        event_filter = {"FilterType": "ENDPOINT", "Dimensions": {"EventType": {"Values": ["purchase"]}}}
        journey_id = client.create_journey(
            ApplicationId=app_id,
            WriteJourneyRequest={
                "Name": "thanks",
                "Activities": {"thanks": {"EMAIL": {"TemplateName": "held-thanks"}}},
                "StartActivity": "thanks",
                "StartCondition": {"EventStartCondition": {"EventFilter": event_filter}},
                "State": "ACTIVE",
            },
        )["JourneyResponse"]["Id"]
        accepted = 0
        for start in range(0, endpoints, 10):
            batch = {
                f"e{n}": {
                    "Endpoint": {},
                    "Events": {
                        "buy": {"EventType": "purchase", "Timestamp": "2026-11-23T10:00:00Z"},
                        "look": {"EventType": "view", "Timestamp": "2026-11-23T10:00:00Z"},
                    },
                }
                for n in range(start, start + 10)
            }
            results = client.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": batch})["EventsResponse"]
            accepted += sum(r["EventsItemResponse"]["buy"]["StatusCode"] == 202 for r in results["Results"].values())
        assert accepted == endpoints
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert sink.received == []

    process = start_server(settings, log, **env(smtp_port))
    try:
        client = pinpoint(settings.port)
        addresses = {f"held{n}@example.org" for n in range(endpoints)}

        def journey_metrics() -> dict[str, str]:
            response = client.get_journey_execution_metrics(ApplicationId=app_id, JourneyId=journey_id)
            return response["JourneyExecutionMetricsResponse"]["Metrics"]

        wait_for(lambda: journey_metrics().get("ENDPOINT_LEFT") == str(endpoints), 60, "every participant through")
        metrics = journey_metrics()
    finally:
        process.kill()
        process.wait()
    time.sleep(0.2)
    assert Counter(sink.recipients()) == dict.fromkeys(addresses, 1)  # each entry happened once
    assert metrics["ENDPOINT_ENTERED"] == str(endpoints) and "ACTIVE_ENDPOINT_REJECTED" not in metrics
