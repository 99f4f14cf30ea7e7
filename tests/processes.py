"""Real `clarion` processes: the command run as a user runs it, `clarion serve` for tests that kill it, and a boto3
client for it."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
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


class ServerProcess:
    """A `clarion` process whose output (stderr, the start banner, unless told) is read line by line as it comes."""

    def __init__(self, process: subprocess.Popen, stream: Any = None) -> None:
        self.process = process
        self.stream = stream or process.stderr
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.stream:
            self.lines.put(line)

    def wait_for(self, pattern: str, deadline: float) -> re.Match[str]:
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"the server never printed {pattern!r}; it said:\n{''.join(self.output)}")


def serve_processes(cwd: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `clarion serve` processes in `cwd` (clean environment unless given one); all are stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "clarion", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or clean_env(),
            cwd=cwd,
        )
        started.append(process)
        return ServerProcess(process)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_server(
    settings: Settings, log: Path, *, timeout: float = 30, **env_overrides: str
) -> subprocess.Popen[bytes]:
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
    deadline = time.monotonic() + timeout
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
