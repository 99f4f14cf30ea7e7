"""`clarion jobs watch`, `clarion campaigns watch` and `clarion journeys watch` follow a running server over its API,
from another folder, with nothing but an endpoint and a key: plain lines without a terminal, a progress bar with
one.

The server's background work runs only when a test steps it, so each test decides what the watch sees next."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, REGION, RunningServer, free_port
from pinpoint_calls import email_project, everyone, folder_of, import_job
from processes import ServerProcess, clean_env
from smtp_relay import Relay
from test_campaign_engine import add_endpoints, campaign
from test_import_export import HEADER, endpoint_rows, write_csv

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings
from clarion.config import Settings
from clarion.journeys.config import JourneySettings
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker

pytestmark = pytest.mark.migrated_store  # tests/conftest.py: PostgreSQL's schema comes migrated


@pytest.fixture
def settings(settings: Settings, relay: tuple[Relay, int]) -> Settings:
    """No background workers or scheduler (the tests step them), email to a real SMTP sink."""
    return settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "campaigns": CampaignSettings(scheduler=False, batch_size=10, plan_chunk=25),
            "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=relay[1], security="none")),
        }
    )


def step(server: RunningServer) -> int:
    """Run one queue item on the server."""
    one_at_a_time = server.settings.queue.model_copy(update={"concurrency": 1})
    return server.run(lambda services: Worker(services.queue, services.queue_handlers, one_at_a_time).run_once())


def watch_env(url: str, secret: str = ADMIN.secret_access_key) -> dict[str, str]:
    return clean_env(
        AWS_ENDPOINT_URL_PINPOINT=url,
        AWS_ACCESS_KEY_ID=ADMIN.access_key_id,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION=REGION,
    )


def watch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clarion", *args, "--interval", "0.1"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=cwd,
    )


class Following(ServerProcess):
    """A watch running in the background, its lines read as they come."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path) -> None:
        command = [sys.executable, "-m", "clarion", *args, "--interval", "0.05"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
        )
        super().__init__(process, process.stdout)

    def next_line(self, text: str) -> None:
        self.wait_for(re.escape(text), time.monotonic() + 60)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A folder far from the server's data: the watch must neither need nor create a store there."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == [], "a watch wrote into the folder it ran in"


def test_a_job_is_followed_over_the_api_piece_by_piece(
    server: RunningServer, client: Any, app_id: str, elsewhere: Path
) -> None:
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "a.csv", HEADER, endpoint_rows(1500))
    write_csv(imports / "b.csv", HEADER, endpoint_rows(1500))
    job_id = import_job(client, app_id, str(imports))["Id"]

    following = Following("jobs", "watch", app_id, job_id, env=watch_env(server.url), cwd=elsewhere)
    following.next_line("import CREATED  0 pieces  0 rows, 0 failed")
    step(server)  # lists the files: one piece each
    following.next_line("import PROCESSING  0/2 pieces  0 rows, 0 failed")
    step(server)
    following.next_line("import PROCESSING  1/2 pieces  1,500 rows, 0 failed")
    step(server)
    following.next_line("import COMPLETED  2/2 pieces  3,000 rows, 0 failed")
    assert following.process.wait(timeout=60) == 0
    assert all(re.match(r"^ *\d+\.\ds  ", line) for line in following.output), "lines start with the seconds elapsed"


def test_a_failed_or_missing_job_sets_the_exit_status(
    server: RunningServer, client: Any, app_id: str, elsewhere: Path
) -> None:
    env = watch_env(server.url)
    failed_id = import_job(client, app_id, str(folder_of(server.settings, app_id) / "absent.csv"))["Id"]
    step(server)
    failed = watch("jobs", "watch", app_id, failed_id, env=env, cwd=elsewhere)
    assert failed.returncode == 1
    assert "import FAILED" in failed.stdout and "absent.csv does not exist" in failed.stdout

    missing = watch("jobs", "watch", app_id, "no-such-job", env=env, cwd=elsewhere)
    assert missing.returncode == 2
    assert "No import or export job 'no-such-job'" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr


@pytest.mark.parametrize("store", ["sqlite"])  # the watch reads only the API; the engine runs on both elsewhere
def test_a_journey_is_followed_per_activity_and_its_cancel_sets_the_exit_status(
    settings: Settings, elsewhere: Path
) -> None:
    with RunningServer(settings.model_copy(update={"journeys": JourneySettings(engine=False)})) as server:
        client = server.client()
        app_id = email_project(client, "watched", 3)
        client.create_email_template(TemplateName="hello", EmailTemplateRequest={"Subject": "Hi", "TextPart": "Hi"})
        activities = {
            "mail": {"EMAIL": {"TemplateName": "hello", "NextActivity": "day"}},
            "day": {"Wait": {"WaitTime": {"WaitFor": "P1D"}}},
        }
        start = {"SegmentStartCondition": {"SegmentId": everyone(client, app_id)}}
        body = {"Name": "watched", "Activities": activities, "StartActivity": "mail", "StartCondition": start}
        journey = client.create_journey(ApplicationId=app_id, WriteJourneyRequest={**body, "State": "ACTIVE"})
        journey_id = journey["JourneyResponse"]["Id"]
        env = watch_env(server.url)

        following = Following("journeys", "watch", app_id, journey_id, env=env, cwd=elsewhere)
        following.next_line("journey ACTIVE  0 participants done  0 in the journey")
        server.run(lambda services: services.journey_engine.tick())  # they enter, are sent the email and wait
        following.next_line(
            "journey CLOSED  0/3 participants done  3 in the journey · mail SUCCESSFUL=3 · day ENTERED=3"
        )
        cancel = {"State": "CANCELLED"}
        client.update_journey_state(ApplicationId=app_id, JourneyId=journey_id, JourneyStateRequest=cancel)
        following.next_line("journey CANCELLED  3/3 participants done  0 in the journey")
        following.next_line("CANCELLED: 3")
        assert following.process.wait(timeout=60) == 1  # CANCELLED: not what the journey was for

        missing = watch("journeys", "watch", app_id, "no-such-journey", env=env, cwd=elsewhere)
        assert missing.returncode == 2 and f"No journey 'no-such-journey' in application '{app_id}'" in missing.stdout


def test_a_watch_refused_or_unanswered_says_why(server: RunningServer, app_id: str, elsewhere: Path) -> None:
    refused = watch("jobs", "watch", app_id, "j", env=watch_env(server.url, secret="wrong"), cwd=elsewhere)
    assert refused.returncode == 2 and "ForbiddenException" in refused.stdout

    nobody = f"http://127.0.0.1:{free_port()}"
    unanswered = watch("campaigns", "watch", app_id, "c", env=watch_env(nobody), cwd=elsewhere)
    assert unanswered.returncode == 2 and f"no answer from {nobody}" in unanswered.stdout

    keyless = clean_env(AWS_ENDPOINT_URL_PINPOINT=server.url)
    unsigned = watch("jobs", "watch", app_id, "j", env=keyless, cwd=elsewhere)
    assert unsigned.returncode == 2 and "AWS_ACCESS_KEY_ID" in unsigned.stderr
    assert "Traceback" not in refused.stdout + unanswered.stdout + unsigned.stderr


def test_a_terminal_gets_a_progress_bar(server: RunningServer, client: Any, app_id: str, elsewhere: Path) -> None:
    imports = folder_of(server.settings, app_id)
    write_csv(imports / "t.csv", HEADER, endpoint_rows(500))
    job_id = import_job(client, app_id, str(imports / "t.csv"))["Id"]
    while step(server):
        pass
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "clarion", "jobs", "watch", app_id, job_id, "--interval", "0.1"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**watch_env(server.url), "TERM": "xterm", "COLUMNS": "160"},
        cwd=elsewhere,
    )
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closes when the watch exits
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    text = screen.decode(errors="replace")
    assert "━" in text, "rich draws a bar on a terminal"
    assert "import COMPLETED" in text and "500 rows, 0 failed" in text


def test_a_campaign_is_followed_over_the_api_batch_by_batch(
    server: RunningServer, client: Any, relay: tuple[Relay, int], elsewhere: Path
) -> None:
    project = client.create_app(CreateApplicationRequest={"Name": "watched"})["ApplicationResponse"]["Id"]
    client.update_email_channel(
        ApplicationId=project, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    add_endpoints(client, project, 50)
    created = campaign(client, project, everyone(client, project))

    env = watch_env(server.url)
    following = Following("campaigns", "watch", project, created["Id"], env=env, cwd=elsewhere)
    following.next_line("campaign SCHEDULED  0 endpoints  waiting for its first run")
    server.run(lambda services: services.campaign_scheduler.tick())  # the scheduler starts the run
    step(server)  # plans it: per 25 members read, batches of 10, 10 and 5
    following.next_line("campaign EXECUTING  0 endpoints  0 targeted, 0 delivered")
    for sent in (10, 20, 25, 35, 45):
        step(server)
        following.next_line(f"campaign EXECUTING  {sent} endpoints  {sent} targeted, {sent} delivered")
    step(server)
    following.next_line("campaign COMPLETED  50/50 endpoints  50 targeted, 50 delivered")
    assert following.process.wait(timeout=60) == 0
    assert len(relay[0].received) == 50

    missing = watch("campaigns", "watch", project, "no-such-campaign", env=env, cwd=elsewhere)
    assert missing.returncode == 2 and "No campaign 'no-such-campaign'" in missing.stdout
