"""Secrets stay where they belong: a key's secret is printed once, when it is made; worker processes get their
settings from a private file, never from their environment; the store's files and keys are readable by their
owner only."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from conftest import ADMIN, RunningServer, free_port
from processes import clarion

from clarion.app import write_worker_settings
from clarion.channels.config import DeliverySettings
from clarion.config import Settings
from clarion.outbound.config import OutboundSettings

TIMEOUT = 60


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def deadline() -> float:
    return time.monotonic() + TIMEOUT


def config_with_secrets(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    found = {
        "key": "config-key-secret-" + secrets.token_hex(8),
        "sealing": base64.b64encode(secrets.token_bytes(32)).decode(),
        "smtp": "smtp-password-" + secrets.token_hex(8),
    }
    config = tmp_path / "clarion.toml"
    config.write_text(
        f'[[access_keys]]\naccess_key_id = "AKIDCONFIGFILEKEY001"\nsecret_access_key = "{found["key"]}"\n'
        f'[delivery]\nsecret_key = "{found["sealing"]}"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nusername = "u"\npassword = "{found["smtp"]}"\n'
    )
    return config, found


def get_apps(url: str, key_id: str, secret: str) -> int:
    client = boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )
    return client.get_apps()["ResponseMetadata"]["HTTPStatusCode"]


def wait_serving(url: str, key_id: str, secret: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            assert get_apps(url, key_id, secret) == 200
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --------------------------------------------------------------------------------------------------------------
# Printed once


def test_a_configured_key_secret_is_never_printed(tmp_path: Path, serve: Any) -> None:
    config, found = config_with_secrets(tmp_path)
    server = serve("--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    line = server.wait_for(r"export AWS_ENDPOINT_URL_PINPOINT=.*", deadline()).group(0)
    assert "AWS_ACCESS_KEY_ID=AKIDCONFIGFILEKEY001" in line
    assert found["key"] not in "".join(server.output)


def test_a_generated_admin_key_secret_is_printed_only_when_made(tmp_path: Path, serve: Any) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    first = serve(*data, "--port", str(free_port()))
    secret = first.wait_for(r"AWS_SECRET_ACCESS_KEY=(\S+)", deadline())[1]
    assert any("shown only this once" in line for line in first.output)
    first.process.terminate()
    first.process.wait(timeout=20)
    again = serve(*data, "--port", str(free_port()))
    again.wait_for(r"AWS_ACCESS_KEY_ID=", deadline())
    assert secret not in "".join(again.output)
    listed = clarion("keys", "list", *data)
    assert secret not in listed.stdout + listed.stderr


# --------------------------------------------------------------------------------------------------------------
# Worker processes


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as status:
                parent = int(status.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


def test_worker_processes_get_no_secret_in_their_environment(tmp_path: Path, serve: Any) -> None:
    config, found = config_with_secrets(tmp_path)
    port = free_port()
    server = serve("--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", str(port), "--workers", "2")
    server.wait_for("2 worker processes", deadline())
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, "AKIDCONFIGFILEKEY001", found["key"])  # the workers did get the key's secret

    workers = [pid for pid in children_of(server.process.pid) if Path(f"/proc/{pid}/environ").exists()]
    assert workers, "no worker process found"
    settings_files = set()
    for pid in workers:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in found.values():
            assert secret.encode() not in environ, f"a secret is in the environment of worker {pid}"
        variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
        if b"CLARION_WORKER_SETTINGS_FILE" in variables:
            settings_files.add(Path(variables[b"CLARION_WORKER_SETTINGS_FILE"].decode()))
    (settings_file,) = settings_files
    assert settings_file.parent == tmp_path / "data"
    assert mode(settings_file) == 0o600
    server.process.terminate()
    server.process.wait(timeout=20)
    assert not settings_file.exists(), "the settings file goes when the server does"


def test_the_worker_settings_file_gives_the_workers_every_setting(tmp_path: Path) -> None:
    """Secrets, paths and networks all make the trip (a network once stopped `serve --workers` at start)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        trusted_proxies=["10.0.0.1/32"],
        outbound=OutboundSettings(allow_networks=["10.20.0.0/16", "fd00::/8"]),
        delivery=DeliverySettings(secret_key=base64.b64encode(secrets.token_bytes(32)).decode()),
    )
    written = write_worker_settings(settings)
    assert mode(written) == 0o600
    assert Settings.model_validate_json(written.read_bytes()) == settings


# --------------------------------------------------------------------------------------------------------------
# Files


def test_store_files_are_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), access_keys=[ADMIN], access_log=False)
    server = RunningServer(settings).start()
    try:
        server.client().create_app(CreateApplicationRequest={"Name": "p"})
        data = settings.data_dir
        assert mode(data) == 0o700
        names = ["clarion.sqlite3", "clarion.sqlite3-wal", "clarion.sqlite3-shm", "channel-secrets.key"]
        for name in names:
            assert mode(data / name) == 0o600, name
    finally:
        server.stop()


def test_files_left_readable_by_an_older_install_are_tightened(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), access_keys=[ADMIN], access_log=False)
    RunningServer(settings).start().stop()
    for name in ("clarion.sqlite3", "channel-secrets.key"):
        os.chmod(settings.data_dir / name, 0o644)
    server = RunningServer(settings.model_copy(update={"port": free_port()})).start()
    try:
        for name in ("clarion.sqlite3", "channel-secrets.key"):
            assert mode(settings.data_dir / name) == 0o600, name
    finally:
        server.stop()
