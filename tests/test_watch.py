"""`clarion jobs watch` and `clarion campaigns watch` follow a running server over its API, from another folder,
with nothing but an endpoint and a key: plain lines without a terminal, a progress bar with one."""

from __future__ import annotations

import os
import pty
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, REGION, RunningServer, free_port
from smtp_relay import Relay
from test_cli import clean_env
from test_import_export import HEADER, endpoint_rows, import_job, write_csv

from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings, SmtpSettings
from clarion.config import Settings
from clarion.jobs.config import JobSettings
from clarion.queue.config import QueueSettings
from clarion.queue.worker import Worker


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


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A folder far from the server's data: the watch must neither need nor create a store there."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == [], "a watch wrote into the folder it ran in"


class Following:
    """A watch running in the background; its lines are read as they come."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clarion", *args, "--interval", "0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, containing: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if containing in line:
                return line
        raise AssertionError(f"the watch never printed {containing!r}; it printed {self.seen}")

    def finish(self) -> int:
        status = self.process.wait(timeout=60)
        return status


def step(server: RunningServer) -> int:
    """Run one queue item on the server, so the test decides when the watched work moves on."""
    one_at_a_time = server.settings.queue.model_copy(update={"lease_batch": 1})
    return server.run(lambda services: Worker(services.queue, services.queue_handlers, one_at_a_time).run_once())


@pytest.fixture
def stepped_server(settings: Settings, relay: tuple[Relay, int]) -> Iterator[RunningServer]:
    """A server whose background work runs only when the test steps it, sending email to a real SMTP sink."""
    _, port = relay
    tuned = settings.model_copy(
        update={
            "queue": QueueSettings(workers=0),
            "jobs": JobSettings(import_batch_rows=500),
            "campaigns": CampaignSettings(scheduler=False, batch_size=20, plan_chunk=100),
            "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=port, security="none")),
        }
    )
    running = RunningServer(tuned).start()
    try:
        yield running
    finally:
        running.stop()


def test_a_job_is_followed_over_the_api_piece_by_piece(stepped_server: RunningServer, elsewhere: Path) -> None:
    server = stepped_server
    client = server.client()
    app_id = client.create_app(CreateApplicationRequest={"Name": "imports"})["ApplicationResponse"]["Id"]
    imports = server.settings.data_dir / "imports"
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
    assert following.finish() == 0
    assert all(line.split()[0].endswith("s") for line in following.seen), "each line starts with the seconds elapsed"


def test_a_failed_or_missing_job_sets_the_exit_status(
    server: RunningServer, client: Any, app_id: str, elsewhere: Path
) -> None:
    env = watch_env(server.url)
    imports = server.settings.data_dir / "imports"
    failed_id = import_job(client, app_id, str(imports / "absent.csv"))["Id"]
    failed = watch("jobs", "watch", app_id, failed_id, env=env, cwd=elsewhere)
    assert failed.returncode == 1
    assert "import FAILED" in failed.stdout and "absent.csv does not exist" in failed.stdout

    missing = watch("jobs", "watch", app_id, "no-such-job", env=env, cwd=elsewhere)
    assert missing.returncode == 2
    assert "No import or export job 'no-such-job'" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr


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
    imports = server.settings.data_dir / "imports"
    write_csv(imports / "t.csv", HEADER, endpoint_rows(500))
    job_id = import_job(client, app_id, str(imports / "t.csv"))["Id"]
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
    stepped_server: RunningServer, relay: tuple[Relay, int], elsewhere: Path
) -> None:
    server = stepped_server
    pinpoint = server.client()
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "watched"})["ApplicationResponse"]["Id"]
    pinpoint.update_email_channel(
        ApplicationId=app_id, EmailChannelRequest={"FromAddress": "news@example.com", "Identity": "example.com"}
    )
    items = [{"Id": f"ep-{n:03d}", "ChannelType": "EMAIL", "Address": f"ep-{n:03d}@example.org"} for n in range(60)]
    pinpoint.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    segment = pinpoint.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "all"})
    created = pinpoint.create_campaign(
        ApplicationId=app_id,
        WriteCampaignRequest={
            "Name": "watched",
            "SegmentId": segment["SegmentResponse"]["Id"],
            "Schedule": {"StartTime": "IMMEDIATE"},
            "MessageConfiguration": {"EmailMessage": {"Title": "Hello", "Body": "Hello there"}},
        },
    )["CampaignResponse"]

    env = watch_env(server.url)
    following = Following("campaigns", "watch", app_id, created["Id"], env=env, cwd=elsewhere)
    following.next_line("campaign SCHEDULED  0 endpoints  waiting for its first run")
    server.run(lambda services: services.campaigns.tick())  # the scheduler starts the run
    step(server)  # plans it: three batches of 20
    following.next_line("campaign EXECUTING  0 endpoints  0 targeted, 0 delivered")
    for delivered in (20, 40):
        step(server)
        following.next_line(f"campaign EXECUTING  {delivered} endpoints  {delivered} targeted, {delivered} delivered")
    step(server)
    following.next_line("campaign COMPLETED  60/60 endpoints  60 targeted, 60 delivered")
    assert following.finish() == 0
    assert len(relay[0].received) == 60

    missing = watch("campaigns", "watch", app_id, "no-such-campaign", env=env, cwd=elsewhere)
    assert missing.returncode == 2 and "No campaign 'no-such-campaign'" in missing.stdout
