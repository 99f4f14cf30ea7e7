"""Real `clarion` processes: the command run as a user runs it, `clarion serve` for tests that kill it, and a boto3
client for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from conftest import ADMIN

from clarion.config import Settings

CLI_TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any CLARION_* / AWS_* setting that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARION_", "AWS_"))}
    env.update(COLUMNS="200", NO_COLOR="1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(extra)
    return env


def clarion(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `clarion` command as a user would, in a clean environment unless told otherwise."""
    return subprocess.run(
        [sys.executable, "-m", "clarion", *args],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=cwd,
        timeout=CLI_TIMEOUT,
    )


def start_server(settings: Settings, log: Path, **env_overrides: str) -> subprocess.Popen[bytes]:
    """Start `clarion serve` on the settings' port, data dir and database; CLARION_* overrides go in the env."""
    env = {
        **os.environ,
        **env_overrides,
        "CLARION_ACCESS_KEY_ID": ADMIN.access_key_id,
        "CLARION_SECRET_ACCESS_KEY": ADMIN.secret_access_key,
        "CLARION_ACCESS_LOG": "false",
    }
    args = [
        sys.executable,
        "-m",
        "clarion",
        "serve",
        "--port",
        str(settings.port),
        "--data-dir",
        str(settings.data_dir),
    ]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    process = subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"clarion serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("clarion serve did not become healthy")


def pinpoint(port: int) -> Any:
    return boto3.client(
        "pinpoint",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=ADMIN.access_key_id,
        aws_secret_access_key=ADMIN.secret_access_key,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )
