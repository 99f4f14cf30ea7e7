"""The `clarion` command: help, the loopback-only insecure mode, serving the real AWS CLI, migrations,
the OpenAPI document, and configuration precedence (flag > environment > TOML file > default)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import free_port
from processes import CLI_TIMEOUT as TIMEOUT
from processes import clarion, clean_env

from clarion import __version__
from clarion.api.extended import ROUTED_OPERATIONS
from clarion.config import Settings, load_settings

VENV_BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------------------------------------------
# Help


def test_help_lists_commands() -> None:
    result = clarion("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "keys", "migrate", "openapi", "version"):
        assert re.search(rf"^\W*{command}\b", result.stdout, re.MULTILINE), command


def test_serve_help_lists_options() -> None:
    result = clarion("serve", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--data-dir", "--database-url", "--insecure-any-credentials", "--config"):
        assert option in result.stdout, option


def test_version() -> None:
    result = clarion("version")
    assert (result.returncode, result.stdout.strip()) == (0, __version__)


# --------------------------------------------------------------------------------------------------------------
# Serving


def test_insecure_mode_is_loopback_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as held:  # were the server to try binding, it would fail differently, not hang
        held.bind(("0.0.0.0", 0))
        port = str(held.getsockname()[1])
        result = clarion(
            "serve", "--host", "0.0.0.0", "--port", port, "--insecure-any-credentials", "--data-dir", str(data)
        )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert "0.0.0.0" in result.stderr
    assert not data.exists(), "refused before creating anything"


def wait_healthy(url: str, deadline: float) -> dict[str, Any]:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def aws(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [str(VENV_BIN / "aws"), "pinpoint", *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_serve_then_the_real_aws_cli(tmp_path: Path, serve: Any) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = serve("--data-dir", str(data), "--port", str(port))
    deadline = time.monotonic() + TIMEOUT
    url = server.wait_for(r"Pinpoint API on (http://\S+)", deadline)[1]
    assert url == f"http://127.0.0.1:{port}"
    exports = server.wait_for(r"export (AWS_ENDPOINT_URL_PINPOINT=.*)$", deadline)[1]
    values = dict(item.split("=", 1) for item in exports.split())
    assert set(values) == {
        "AWS_ENDPOINT_URL_PINPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    assert values["AWS_ENDPOINT_URL_PINPOINT"] == url
    listed = clarion("keys", "list", "--data-dir", str(data))
    assert listed.stdout.startswith(values["AWS_ACCESS_KEY_ID"]) and "(store, created" in listed.stdout

    health = wait_healthy(url, deadline)
    assert health["status"] == "ok"
    assert health["store"] == "sqlite"

    env = clean_env(**values)
    created = aws("create-app", "--create-application-request", "Name=cli", env=env)["ApplicationResponse"]
    assert created["Name"] == "cli"
    assert created["Arn"] == f"arn:aws:mobiletargeting:{values['AWS_DEFAULT_REGION']}:000000000000:apps/{created['Id']}"
    apps = aws("get-apps", env=env)["ApplicationsResponse"]["Item"]
    assert [app["Id"] for app in apps] == [created["Id"]]

    refused = subprocess.run(
        [str(VENV_BIN / "aws"), "pinpoint", "get-apps"],
        capture_output=True,
        text=True,
        env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"},
        timeout=TIMEOUT,
    )
    assert refused.returncode != 0
    assert "ForbiddenException" in refused.stderr

    # the second start reuses the stored key and data
    server.process.terminate()
    server.process.wait(timeout=10)
    again = serve("--data-dir", str(data), "--port", str(port))
    deadline = time.monotonic() + TIMEOUT
    assert again.wait_for(r"AWS_ACCESS_KEY_ID=(\S+)", deadline)[1] == values["AWS_ACCESS_KEY_ID"]
    assert not any("Created an admin access key" in line for line in again.output)
    assert not any(values["AWS_SECRET_ACCESS_KEY"] in line for line in again.output), "a secret is printed once"
    wait_healthy(url, deadline)
    assert [app["Id"] for app in aws("get-apps", env=env)["ApplicationsResponse"]["Item"]] == [created["Id"]]


def test_serve_insecure_mode_with_environment_port(tmp_path: Path, serve: Any) -> None:
    port = free_port()
    server = serve(
        "--data-dir", str(tmp_path / "data"), "--insecure-any-credentials", env=clean_env(CLARION_PORT=str(port))
    )
    deadline = time.monotonic() + TIMEOUT
    url = server.wait_for(r"Pinpoint API on (http://\S+)", deadline)[1]
    assert url == f"http://127.0.0.1:{port}"
    server.wait_for("INSECURE", deadline)
    wait_healthy(url, deadline)
    env = clean_env(
        AWS_ENDPOINT_URL_PINPOINT=url,
        AWS_ACCESS_KEY_ID="anything",
        AWS_SECRET_ACCESS_KEY="at-all",
        AWS_DEFAULT_REGION="ap-southeast-2",
    )
    created = aws("create-app", "--create-application-request", "Name=dev", env=env)["ApplicationResponse"]
    assert created["Arn"].startswith("arn:aws:mobiletargeting:ap-southeast-2:")
    assert "No access keys" in clarion("keys", "list", "--data-dir", str(tmp_path / "data")).stderr


def test_the_start_banner_names_store_providers_tracking_and_workers(tmp_path: Path, serve: Any) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text(
        '[delivery.smtp]\nhost = "relay.example.com"\nsecurity = "tls"\nport = 465\n'
        '[delivery.sms]\nprovider = "http"\nhttp.url = "https://gateway.example.com/send"\n'
        '[delivery.tracking]\nbase_url = "https://mail.example.com"\nkey = "k"\n'
        "[queue]\nworkers = 2\n[campaigns]\nscheduler = false\n"
    )
    port = free_port()
    server = serve("--config", str(config), "--data-dir", "data", "--port", str(port), "--insecure-any-credentials")
    deadline = time.monotonic() + TIMEOUT
    server.wait_for(r"store: SQLite at data/clarion.sqlite3", deadline)
    server.wait_for(r"email: SMTP relay relay.example.com:465 \(tls\) · SMS: http · voice: none", deadline)
    server.wait_for(r"custom-channel webhooks: unsigned", deadline)
    server.wait_for(r"tracking: on at https://mail.example.com", deadline)
    server.wait_for(r"1 API process, each with 2 queue workers, 1 campaign delivery worker and no campaign", deadline)
    wait_healthy(f"http://127.0.0.1:{port}", deadline)


def test_serve_with_several_worker_processes(tmp_path: Path, serve: Any) -> None:
    port = free_port()
    server = serve(
        "--data-dir", str(tmp_path / "data"), "--port", str(port), "--workers", "2", "--insecure-any-credentials"
    )
    deadline = time.monotonic() + TIMEOUT
    url = server.wait_for(r"Pinpoint API on (http://\S+)", deadline)[1]
    server.wait_for("2 API processes", deadline)
    wait_healthy(url, deadline)
    children = [pid for pid in os.listdir("/proc") if pid.isdigit() and _parent_of(pid) == server.process.pid]
    client = boto3.client(
        "pinpoint", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    ids = {client.create_app(CreateApplicationRequest={"Name": f"p{n}"})["ApplicationResponse"]["Id"] for n in range(8)}
    listed = {app["Id"] for app in client.get_apps()["ApplicationsResponse"]["Item"]}
    assert ids <= listed, "every worker writes to the one store"
    assert len(children) >= 2, f"expected 2 worker processes under {server.process.pid}, found {children}"


def _parent_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------------------------
# Migrations and OpenAPI


def test_migrate_twice(settings: Settings) -> None:
    target = (
        ["--database-url", settings.database_url] if settings.uses_postgres else ["--data-dir", str(settings.data_dir)]
    )
    first = clarion("migrate", *target)
    assert first.returncode == 0, first.stderr
    assert "applied migrations: [1" in first.stdout
    second = clarion("migrate", *target)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "schema is up to date"
    if not settings.uses_postgres:
        assert settings.sqlite_path.exists()


def test_openapi_command() -> None:
    result = clarion("openapi")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"] == "3.1.0"
    operations = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(set(operations)) == len(operations)
    assert set(operations) == set(ROUTED_OPERATIONS)  # the 122 Pinpoint operations and Clarion's extensions
    assert document["info"]["version"] == __version__


# --------------------------------------------------------------------------------------------------------------
# Configuration precedence (in process)


def write_config(path: Path) -> Path:
    path.write_text(
        "port = 9001\n"
        'region = "eu-north-1"\n'
        "max_clock_skew_seconds = 60\n"
        "[[access_keys]]\n"
        'access_key_id = "AKIDFILE000000000001"\n'
        'secret_access_key = "file-secret"\n'
        'operations = ["SendMessages"]\n'
        'allow_networks = ["192.168.0.0/16"]\n'
        "[[access_keys]]\n"
        'access_key_id = "AKIDFILE000000000002"\n'
        'secret_access_key = "file-secret-2"\n'
    )
    return path


def test_defaults(isolated_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.region) == ("127.0.0.1", 8080, "us-east-1")
    assert settings.all_access_keys() == []
    assert settings.insecure_any_credentials is False
    assert not settings.uses_postgres


def test_config_file(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "clarion.toml"))
    assert (settings.port, settings.region, settings.max_clock_skew_seconds) == (9001, "eu-north-1", 60)
    first, second = settings.all_access_keys()
    assert (first.access_key_id, first.operations, first.allow_networks) == (
        "AKIDFILE000000000001",
        ["SendMessages"],
        ["192.168.0.0/16"],
    )
    assert (second.access_key_id, second.projects, second.operations) == ("AKIDFILE000000000002", ["*"], ["*"])
    assert settings.host == "127.0.0.1"  # not in the file: the default


def test_config_file_from_environment(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_env.setenv("CLARION_CONFIG", str(write_config(tmp_path / "clarion.toml")))
    assert load_settings().port == 9001


def test_precedence_flag_over_env_over_file(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(tmp_path / "clarion.toml")
    isolated_env.setenv("CLARION_PORT", "9002")
    isolated_env.setenv("CLARION_ACCESS_KEY_ID", "AKIDENV0000000000001")
    isolated_env.setenv("CLARION_SECRET_ACCESS_KEY", "env-secret")
    isolated_env.setenv("CLARION_DATABASE_URL", "postgresql://db.example/clarion")

    from_env = load_settings(config)
    assert from_env.port == 9002  # env beats the file
    assert from_env.region == "eu-north-1"  # only in the file
    assert from_env.uses_postgres
    ids = [key.access_key_id for key in from_env.all_access_keys()]
    assert ids == ["AKIDFILE000000000001", "AKIDFILE000000000002", "AKIDENV0000000000001"]
    env_key = from_env.all_access_keys()[-1]
    assert (env_key.secret_access_key, env_key.projects, env_key.operations) == ("env-secret", ["*"], ["*"])

    from_flags = load_settings(config, port=9003, host=None, region="ca-central-1")
    assert from_flags.port == 9003  # a flag beats everything
    assert from_flags.host == "127.0.0.1"  # a flag not given (None) does not override
    assert from_flags.region == "ca-central-1"


def test_access_keys_from_environment_json(isolated_env: pytest.MonkeyPatch) -> None:
    keys = [{"access_key_id": "AKIDJSON000000000001", "secret_access_key": "s", "projects": ["a"]}]
    isolated_env.setenv("CLARION_ACCESS_KEYS", json.dumps(keys))
    settings = load_settings()
    assert [(k.access_key_id, k.projects) for k in settings.all_access_keys()] == [("AKIDJSON000000000001", ["a"])]


def test_invalid_network_in_config_is_refused(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[access_keys]]\naccess_key_id = "A"\nsecret_access_key = "s"\nallow_networks = ["nope"]\n')
    with pytest.raises(ValueError, match="nope"):
        load_settings(config)
