"""Per-key API request rates held by the process group: two `clarion serve` processes on one PostgreSQL database
let a key through at its rate once, not once each (clarion/api/rate_limits.py), with the group's buckets in
PostgreSQL and, when `coordination.redis_url` is set, in Redis."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ADMIN, free_port, reset_postgres
from processes import ServerProcess, clean_env, serve_processes
from test_rate_buckets import REDIS_URL

from clarion.coordination.buckets import RedisBuckets

pytestmark = pytest.mark.postgres

BURST = 10  # and a refill of one request every ten seconds: the calls below take a few seconds


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    yield from serve_processes(tmp_path)


def _redis_or_skip() -> str:
    """The local Redis, without the key's bucket an earlier run left there (it outlives the processes)."""
    redis = pytest.importorskip("redis")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.delete(f"{RedisBuckets.PREFIX}api-key:{ADMIN.access_key_id}")
    except redis.ConnectionError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error}); start it or set CLARION_TEST_REDIS_URL")
    return REDIS_URL


def _wait_healthy(server: ServerProcess, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError as error:
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.process.kill()
                said = server.process.stderr.read()
                raise AssertionError(f"the server on port {port} never answered: {said}") from error
            time.sleep(0.2)


@pytest.mark.parametrize("home", ["postgresql", "redis"])
def test_two_processes_hold_one_key_to_its_rate(
    serve: Callable[..., ServerProcess], postgres_url: str, tmp_path: Path, home: str
) -> None:
    coordination = {"CLARION_COORDINATION__REDIS_URL": _redis_or_skip()} if home == "redis" else {}
    reset_postgres(postgres_url)
    env = clean_env(
        CLARION_ACCESS_KEY_ID=ADMIN.access_key_id,
        CLARION_SECRET_ACCESS_KEY=ADMIN.secret_access_key,
        CLARION_ACCESS_LOG="false",
        CLARION_RATE_LIMIT__REQUESTS_PER_SECOND="0.1",
        CLARION_RATE_LIMIT__BURST=str(BURST),
        **coordination,
    )
    ports = [free_port(), free_port()]
    for number, port in enumerate(ports):  # one after the other: the first migrates the database
        data = tmp_path / f"data-{number}"
        server = serve("--port", str(port), "--data-dir", str(data), "--database-url", postgres_url, env=env)
        _wait_healthy(server, port)
    clients = [
        boto3.client(
            "pinpoint",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=ADMIN.access_key_id,
            aws_secret_access_key=ADMIN.secret_access_key,
            config=Config(retries={"total_max_attempts": 1}),  # a refusal is an answer, not retried
        )
        for port in ports
    ]
    answered = {0: 0, 1: 0}
    refused = 0
    started = time.monotonic()
    for call in range(4 * BURST):  # alternating: each process alone would let BURST through
        try:
            clients[call % 2].get_apps()
            answered[call % 2] += 1
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            refused += 1
    seconds = time.monotonic() - started
    # The group's one bucket: its burst, what it refilled meanwhile, and at most a grant held by each process.
    allowed = BURST + int(seconds * 0.1) + 2
    assert BURST <= sum(answered.values()) <= allowed  # each process on its own would have let 2 x BURST through
    assert answered[0] > 0 and answered[1] > 0  # both processes drew from it
    assert refused == 4 * BURST - sum(answered.values())
