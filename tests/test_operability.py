"""Every failure is visible: a campaign whose relay is down ends FAIL with log lines and metrics saying so, jobs
and shutdown log their end, and the dashboard and alert rules in deploy/ use only metrics a running server has.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from conftest import RunningServer
from pinpoint_calls import folder_of, import_job, wait_job
from prometheus_client.parser import text_string_to_metric_families
from smtp_relay import Relay, start_relay
from structlog.testing import capture_logs
from test_event_streams import drive_campaigns, wait_for

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings
from clarion.config import Settings
from clarion.queue.config import QueueSettings

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
EMAIL = {"EmailMessage": {"Title": "Hi", "Body": "Hello {{Attributes.name}}"}}


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics shows, by name and labels."""
    text = urllib3.request("GET", f"{server.url}/metrics").data.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exposed_names(server: RunningServer) -> set[str]:
    """The sample names /metrics can show: a family without samples yet (a labelled counter nothing has counted)
    still names itself in its HELP and TYPE lines."""
    text = urllib3.request("GET", f"{server.url}/metrics").data.decode()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture
def relay_down_server(migrated_settings: Settings) -> Iterator[RunningServer]:
    """A server whose SMTP relay was up once and has been shut down: its port refuses connections."""
    controller, port = start_relay(Relay())
    controller.stop()
    tuned = migrated_settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, max_retries=1),
            "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=port, security="none")),
        }
    )
    with RunningServer(tuned) as running:
        yield running


def test_a_campaign_whose_relay_is_down_ends_fail_and_says_so(relay_down_server: RunningServer) -> None:
    server, pinpoint = relay_down_server, relay_down_server.client()
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "down"})["ApplicationResponse"]["Id"]
    pinpoint.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    items = [
        {"Id": f"ep-{n}", "ChannelType": "EMAIL", "Address": f"ep-{n}@example.org", "Attributes": {"name": ["x"]}}
        for n in range(3)
    ]
    pinpoint.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    segment = pinpoint.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})
    body = {
        "Name": "down",
        "SegmentId": segment["SegmentResponse"]["Id"],
        "Schedule": {"StartTime": "IMMEDIATE"},
        "MessageConfiguration": EMAIL,
    }
    campaign_id = pinpoint.create_campaign(ApplicationId=app_id, WriteCampaignRequest=body)["CampaignResponse"]["Id"]
    with capture_logs() as logs:
        drive_campaigns(server)  # the first attempt fails and the three recipients are queued again
        server.clock.offset += timedelta(seconds=3)
        drive_campaigns(server)  # the retry fails too: given up, and the run ends

    [activity] = pinpoint.get_campaign_activities(ApplicationId=app_id, CampaignId=campaign_id)["ActivitiesResponse"][
        "Item"
    ]
    assert (activity["State"], activity["Result"]) == ("COMPLETED", "FAIL")
    assert (activity["TotalEndpointCount"], activity["SuccessfulEndpointCount"]) == (3, 0)
    assert activity["ExecutionMetrics"]["GaveUpEndpoints"] == "3"

    events = {line["event"]: line for line in logs}
    assert events["campaign_run_started"]["campaign_id"] == campaign_id
    assert (
        events["provider_error"]["status"] == "TEMPORARY_FAILURE"
        and "SMTP relay unavailable" in (events["provider_error"]["message"])
    )
    assert events["campaign_retry"]["endpoints"] == 3
    assert events["campaign_gave_up"]["endpoints"] == 3
    failed = events["campaign_run_failed"]
    assert failed["log_level"] == "error" and failed["campaign_id"] == campaign_id
    assert (failed["result"], failed["targeted"], failed["successful"]) == ("FAIL", 3, 0)
    assert "no message reached any of the 3 endpoints" in failed["reason"]

    samples = scrape(server)
    assert samples[("clarion_campaign_runs_total", (("result", "FAIL"),))] == 1
    assert samples[("clarion_messages_total", (("channel", "EMAIL"), ("status", "TEMPORARY_FAILURE")))] == 6
    assert samples[("clarion_provider_seconds_count", (("channel", "EMAIL"),))] == 6
    assert samples[("clarion_campaign_endpoint_retries_total", (("outcome", "gave_up"),))] == 3


def test_a_failed_job_and_shutdown_are_logged_and_counted(settings: Settings) -> None:
    server = RunningServer(settings).start()
    try:
        client = server.client()
        app_id = client.create_app(CreateApplicationRequest={"Name": "jobs"})["ApplicationResponse"]["Id"]
        with capture_logs() as logs:
            job = import_job(client, app_id, str(folder_of(settings, app_id) / "missing.csv"))
            assert wait_job(client, app_id, job["Id"])["JobStatus"] == "FAILED"
            # The line and the count are reported after the job's end is committed, so a reader can see FAILED first.
            wait_for(lambda: any(line["event"] == "job_failed" for line in logs), "the job_failed line")
        samples = scrape(server)
    finally:
        with capture_logs() as stopping:
            server.stop()
    [failed] = [line for line in logs if line["event"] == "job_failed"]
    assert (failed["job_id"], failed["job_type"], failed["log_level"]) == (job["Id"], "IMPORT", "error")
    assert "does not exist" in failed["failures"][0]
    assert samples[("clarion_jobs_total", (("status", "FAILED"), ("type", "IMPORT")))] == 1
    assert [line["event"] for line in stopping if line["event"].startswith("shutdown")] == [
        "shutdown_started",
        "shutdown_complete",
    ]


def test_queue_depth_and_the_oldest_due_item_are_metrics(server: RunningServer) -> None:
    async def queue_two(services: Any) -> None:
        due = services.clock.now() - timedelta(seconds=90)
        await services.db.write(lambda tx: services.queue.enqueue_in(tx, "test.idle", {"n": 1}, due_at=due))
        await services.db.write(lambda tx: services.queue.enqueue_in(tx, "test.idle", {"n": 2}))

    server.run(queue_two)
    samples = scrape(server)
    assert samples[("clarion_queue_depth", (("kind", "test.idle"),))] == 2
    assert 90 <= samples[("clarion_queue_oldest_age_seconds", (("kind", "test.idle"),))] < 120
    assert samples[("clarion_queue_buried_items", (("kind", "test.idle"),))] == 0


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: Clarion's, and those of the process collectors. (`up` is
    Prometheus's own, about the scrape.)"""
    return set(re.findall(r"\b(?:clarion|process|python)_[a-zA-Z0-9_]+", expression))


def test_the_dashboard_and_alert_rules_use_only_metrics_the_server_has(server: RunningServer) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "clarion.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in promql_metric_names(target["expr"])
    }
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    used_by_alerts = {name for rule in alerts for name in promql_metric_names(rule["expr"])}
    exposed = exposed_names(server)
    assert used - exposed == set() and used_by_alerts - exposed == set()
    # Both cover what an operator must see: sends, provider latency, the queue, runs, jobs and the processes.
    for wanted in (
        "clarion_messages_total",
        "clarion_provider_seconds_bucket",
        "clarion_queue_depth",
        "clarion_queue_oldest_age_seconds",
        "clarion_campaign_runs_total",
        "clarion_jobs_total",
        "clarion_message_outcomes_total",
        "process_resident_memory_bytes",
    ):
        assert wanted in used | used_by_alerts
    assert {"process_cpu_seconds_total", "process_open_fds", "python_info", "python_gc_collections_total"} <= exposed
    assert all(rule["alert"] and rule["annotations"]["summary"] for rule in alerts)


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool (Prometheus's rule checker, Debian package prometheus) is not installed",
)
def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    rules = DEPLOY / "prometheus"
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        checked = subprocess.run(["promtool", *command], cwd=rules, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
