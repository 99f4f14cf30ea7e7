"""Poison work is buried, not retried forever: what was given up on is listed by the ClarionGetBuriedWork extension
and `clarion queue buried`, and the job or campaign it belonged to reports the failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import ADMIN, REGION, RunningServer, free_port
from pinpoint_calls import email_project, immediate_campaign, import_job, wait_job
from smtp_relay import Relay
from web_recorder import serving

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings
from clarion.config import AccessKey, Settings
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker


class _Down(BaseHTTPRequestHandler):
    """A file server that is always down (503): every delivery of the import fails the same way."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def down_url() -> Iterator[str]:
    with serving(_Down) as url:
        yield f"{url}/people.csv"


def cli(server: RunningServer, key: AccessKey, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "clarion", "queue", "buried", "--endpoint-url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_a_failing_import_is_buried_listed_and_its_job_fails(settings: Settings, down_url: str) -> None:
    tuned = settings.model_copy(
        update={
            "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),
            "queue": QueueSettings(max_attempts=2, retry_delay_seconds=0.05, poll_seconds=0.05),
        }
    )
    with RunningServer(tuned) as server:
        client = server.client()
        mine, other = (
            client.create_app(CreateApplicationRequest={"Name": name})["ApplicationResponse"]["Id"]
            for name in ("mine", "other")
        )
        job = wait_job(client, mine, import_job(client, mine, down_url)["Id"])
        status, listed = server.signed_request("GET", "/v1/clarion/buried-work", {})
        _, only_other = server.signed_request("GET", f"/v1/clarion/buried-work?application-id={other}", {})
        as_json = cli(server, ADMIN, "--json")
        as_table = cli(server, ADMIN)
    reason = f"TransferError: GET {down_url} answered 503"
    assert job["JobStatus"] == "FAILED" and job["Failures"] == [f"{down_url}: gave up after 2 attempts: {reason}"]
    assert status == 200 and only_other == {"Item": []}
    [item] = listed["Item"]
    assert {key: item[key] for key in ("Kind", "ApplicationId", "Attempts", "Reason")} == {
        "Kind": "import.piece",
        "ApplicationId": mine,
        "Attempts": 2,
        "Reason": reason,
    }
    assert item["Payload"] == {"app_id": mine, "job_id": job["Id"], "piece": 0} and item["BuriedDate"]
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == listed
    assert as_table.returncode == 0 and "import.piece" in as_table.stdout and "answered 503" in as_table.stdout


def test_only_a_key_for_every_project_lists_every_projects_buried_work(settings: Settings) -> None:
    with RunningServer(settings) as first:
        mine = first.client().create_app(CreateApplicationRequest={"Name": "mine"})["ApplicationResponse"]["Id"]
    key = AccessKey(access_key_id="AKIDPROJECTMINE00001", secret_access_key="mine", projects=[mine])
    with RunningServer(settings.model_copy(update={"access_keys": [ADMIN, key], "port": free_port()})) as server:
        everything = cli(server, key, "--json")
        own = cli(server, key, "--json", "--application-id", mine)
    assert everything.returncode == 1 and "limited to projects" in everything.stderr
    assert own.returncode == 0 and json.loads(own.stdout) == {"Item": []}


@pytest.fixture
def engine_server(migrated_settings: Settings, relay: tuple[Relay, int]) -> Iterator[RunningServer]:
    """No background loops: the test drives the scheduler and the queue, and moves the server's clock."""
    _, port = relay
    tuned = migrated_settings.model_copy(
        update={
            "queue": QueueSettings(workers=0, max_attempts=2),
            "max_clock_skew_seconds": 86_400,
            "campaigns": CampaignSettings(scheduler=False, batch_size=10),
            "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=port, security="none")),
        }
    )
    with RunningServer(tuned) as running:
        yield running


def start_campaign(server: RunningServer, endpoints: int) -> tuple[str, str]:
    client = server.client()
    app_id = email_project(client, "p", endpoints)
    campaign_id = immediate_campaign(client, app_id)

    async def plan(services: Any) -> None:
        await services.campaign_scheduler.tick()
        await Worker(
            services.queue, {"campaign.plan": services.queue_handlers["campaign.plan"]}, QueueSettings()
        ).run_once()

    server.run(plan)
    return app_id, campaign_id


def lose_deliveries(server: RunningServer, times: int) -> None:
    """The first batch is handed out and its process dies, `times` times over (a batch that freezes the server)."""
    for _ in range(times):
        leased = server.run(lambda services: services.queue.lease(["campaign.batch"], 1, 60))
        assert len(leased) == 1
        server.clock.offset += timedelta(seconds=61)


def drive(server: RunningServer) -> None:
    async def work(services: Any) -> None:
        worker = Worker(services.queue, services.queue_handlers, services.settings.queue)
        while await worker.run_once():
            pass

    server.run(work)


def activity_of(server: RunningServer, app_id: str, campaign_id: str) -> dict[str, Any]:
    [activity] = server.client().get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)[
        "ActivitiesResponse"
    ]["Item"]
    return activity


def test_a_campaign_whose_only_batch_is_buried_finishes_and_fails(
    engine_server: RunningServer, relay: tuple[Relay, int]
) -> None:
    sink, _ = relay
    app_id, campaign_id = start_campaign(engine_server, 5)
    lose_deliveries(engine_server, 2)
    drive(engine_server)
    activity = activity_of(engine_server, app_id, campaign_id)
    assert (activity["State"], activity["Result"]) == ("COMPLETED", "FAIL")
    assert activity["ExecutionMetrics"]["FailedBatches"] == "1" and sink.received == []
    campaign = engine_server.client().get_campaign(ApplicationId=app_id, CampaignId=campaign_id)["CampaignResponse"]
    assert campaign["State"]["CampaignStatus"] == "COMPLETED"
    _, listed = engine_server.signed_request("GET", f"/v1/clarion/buried-work?application-id={app_id}", {})
    [item] = listed["Item"]
    assert item["Kind"] == "campaign.batch" and item["Attempts"] == 3 and "without finishing" in item["Reason"]


def test_a_campaign_that_lost_one_batch_of_two_still_succeeds_and_says_so(
    engine_server: RunningServer, relay: tuple[Relay, int]
) -> None:
    sink, _ = relay
    app_id, campaign_id = start_campaign(engine_server, 15)  # two batches: 10 and 5
    lose_deliveries(engine_server, 2)
    drive(engine_server)
    activity = activity_of(engine_server, app_id, campaign_id)
    assert (activity["State"], activity["Result"]) == ("COMPLETED", "SUCCESS")
    assert activity["ExecutionMetrics"]["FailedBatches"] == "1"
    assert len(sink.received) == activity["SuccessfulEndpointCount"] == 5
