"""/metrics of `clarion serve --workers 2` on PostgreSQL reports the process group, whichever worker answers
(clarion/metrics.py, docs/operations.md#health-metrics-logs)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import ADMIN, free_port, reset_postgres
from processes import ServerProcess, clean_env, serve_processes
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.postgres

CALLS = 12  # at least; more until both workers have answered
ROUND = 6


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    yield from serve_processes(tmp_path)


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One /metrics answer on a new connection (so any worker may answer): (name, labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _get_apps(port: int) -> None:
    """One GetApps from a client of its own (a session each: boto3's default one is not for threads)."""
    client = boto3.session.Session().client(
        "pinpoint",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=ADMIN.access_key_id,
        aws_secret_access_key=ADMIN.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )
    client.get_apps()


def _counter_writers(folder: Path) -> list[str]:
    """The process ids that have written a counter file in the multiprocess metrics folder."""
    return sorted({re.sub(r"\D", "", file.stem.rsplit("_", 1)[-1]) for file in folder.glob("counter_*.db")})


def test_metrics_of_two_workers_are_reported_together(
    serve: Callable[..., ServerProcess], postgres_url: str, tmp_path: Path
) -> None:
    reset_postgres(postgres_url)
    port, data = free_port(), tmp_path / "data"
    env = clean_env(
        CLARION_ACCESS_KEY_ID=ADMIN.access_key_id,
        CLARION_SECRET_ACCESS_KEY=ADMIN.secret_access_key,
        CLARION_ACCESS_LOG="false",
    )
    server = serve(
        "--workers", "2", "--port", str(port), "--data-dir", str(data), "--database-url", postgres_url, env=env
    )
    server.wait_for(r"2 worker processes", time.monotonic() + 60)
    deadline = time.monotonic() + 60
    while True:
        try:
            _scrape(port)
            break
        except OSError:
            assert time.monotonic() < deadline, "the workers never answered"
            time.sleep(0.2)
    [folder] = data.glob(".metrics-*")
    made, deadline = 0, time.monotonic() + 60
    # Which worker accepts a connection is the kernel's choice, and an idle one is often chosen again and again:
    # calls go in concurrent rounds, each on a connection of its own, until both workers have answered some.
    with ThreadPoolExecutor(max_workers=ROUND) as pool:
        while made < CALLS or len(_counter_writers(folder)) < 2:
            assert time.monotonic() < deadline, f"both workers write their counters: {_counter_writers(folder)}"
            list(pool.map(lambda _: _get_apps(port), range(ROUND)))
            made += ROUND

    calls = ("clarion_requests_total", (("operation", "GetApps"), ("status", "200")))
    leader = ("clarion_leader", (("role", "campaign-scheduler"),))
    deadline = time.monotonic() + 15
    while _scrape(port).get(leader) != 1.0:  # the first lease is taken within a second of the start
        assert time.monotonic() < deadline, "no worker took the scheduler's lease"
        time.sleep(0.2)
    for _ in range(8):  # whichever worker answers, it reports both
        scraped = _scrape(port)
        assert scraped[calls] == made
        assert scraped[leader] == 1.0  # one scheduler in the group
    assert "process_cpu_seconds_total" not in {name for name, _ in scraped}  # per-process figures do not sum
