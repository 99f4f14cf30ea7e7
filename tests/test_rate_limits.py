"""Per-key rate limits: a token bucket per access key, refused with Pinpoint's TooManyRequestsException (429),
which boto3 retries; other keys are untouched, 0 means unlimited, and every refusal is counted and logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ADMIN, RunningServer, free_port
from structlog.testing import capture_logs

from clarion.config import AccessKey, RateLimitSettings, Settings

# One token per 100 s: no token comes back by itself while a test runs, however slow the machine.
SLOW = AccessKey(access_key_id="AKIDRATELIMITED00001", secret_access_key="slow", requests_per_second=0.01, burst=3)
UNLIMITED = AccessKey(access_key_id="AKIDUNLIMITEDKEY0001", secret_access_key="free", requests_per_second=0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        port=free_port(),
        access_keys=[ADMIN, SLOW, UNLIMITED],
        access_log=False,
        rate_limit=RateLimitSettings(requests_per_second=0.01, burst=5),  # the default every other key gets
    )
    running = RunningServer(settings).start()
    try:
        yield running
    finally:
        running.stop()


def client_for(server: RunningServer, key: AccessKey, attempts: int = 1) -> Any:
    """A boto3 client that makes `attempts` attempts in all (1: no retry) in botocore's standard retry mode."""
    return server.client(key, retries={"total_max_attempts": attempts, "mode": "standard"})


def throttled(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["Error"]["Code"] == "TooManyRequestsException", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    return response


def refusals(server: RunningServer, key: AccessKey) -> float:
    registry = server.services.metrics.registry
    return registry.get_sample_value("clarion_rate_limited_total", {"key": key.access_key_id}) or 0.0


def test_a_key_over_its_burst_is_refused_until_tokens_come_back(server: RunningServer) -> None:
    client = client_for(server, SLOW)
    for _ in range(3):
        client.get_apps()
    with capture_logs() as logs:
        response = throttled(client.get_apps)
        throttled(client.get_apps)
    message = response["Error"]["Message"]
    assert SLOW.access_key_id in message and "0.01 requests per second" in message
    assert refusals(server, SLOW) == 2
    episodes = [entry for entry in logs if entry["event"] == "rate_limited"]
    assert len(episodes) == 1 and episodes[0]["key"] == SLOW.access_key_id  # one line per episode, not per request

    server.clock.offset = timedelta(seconds=200)  # two tokens' worth of time (still within the signature skew)
    client.get_apps()
    client.get_apps()
    throttled(client.get_apps)


def test_other_keys_keep_their_own_buckets(server: RunningServer) -> None:
    for _ in range(3):
        client_for(server, SLOW).get_apps()
    throttled(client_for(server, SLOW).get_apps)
    admin = client_for(server, ADMIN)
    for _ in range(5):  # the default burst
        admin.get_apps()
    throttled(admin.get_apps)
    unlimited = client_for(server, UNLIMITED)
    for _ in range(30):
        unlimited.get_apps()
    assert refusals(server, UNLIMITED) == 0


def test_boto3_retries_a_throttled_call(server: RunningServer) -> None:
    """429 TooManyRequestsException is in botocore's throttling list: the SDK backs off and tries again."""
    client = client_for(server, SLOW, attempts=3)
    for _ in range(3):
        client.get_apps()
    response = throttled(client.get_apps)
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert refusals(server, SLOW) == 3


def test_rate_limit_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RateLimitSettings(burst=0)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        AccessKey(access_key_id="A", secret_access_key="s", requests_per_second=-1)
