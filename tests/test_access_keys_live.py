"""Access keys kept in the store: `clarion keys create/list/revoke` check what they are given, and running servers
(two processes on one PostgreSQL store included) take a new or revoked key within seconds, without a restart."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ADMIN, RunningServer, free_port, reset_postgres, running
from processes import clarion, clean_env, start_server

from clarion.access_keys.service import LEGACY_KEY_FILE
from clarion.config import AccessKey, Settings

DEADLINE_SECONDS = 20  # keys apply within about a second; the machine may be busy


def client_for(url: str, key: dict[str, Any] | AccessKey) -> Any:
    key_id, secret = (
        (key["access_key_id"], key["secret_access_key"])
        if isinstance(key, dict)
        else (key.access_key_id, key.secret_access_key)
    )
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


def accepted(client: Any) -> bool:
    try:
        client.get_apps()
        return True
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ForbiddenException", error.response
        return False


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for a condition the servers reach on their own (a key poll), with a generous deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_SECONDS} s: {what}")
        time.sleep(0.1)


def created(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------------------------------
# One server on the embedded store, the CLI beside it


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), access_keys=[ADMIN], access_log=False)
    with running(settings) as server:
        yield server


def test_create_list_revoke_apply_while_the_server_runs(sqlite_server: RunningServer) -> None:
    data = ["--data-dir", str(sqlite_server.settings.data_dir)]
    app_id = sqlite_server.client().create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    key = created(
        clarion(
            "keys", "create", *data, "--project", app_id, "--operation", "GetApps", "--operation", "GetApp",
            "--allow-network", "127.0.0.0/8", "--requests-per-second", "50", "--burst", "100",
            "--description", "reader",
        )
    )  # fmt: skip
    assert (key["projects"], key["operations"]) == ([app_id], ["GetApps", "GetApp"])
    assert key["allow_networks"] == ["127.0.0.0/8"]
    assert (key["requests_per_second"], key["burst"]) == (50, 100)
    assert len(key["secret_access_key"]) >= 30

    client = client_for(sqlite_server.url, key)
    eventually(lambda: accepted(client), "the new key is accepted")
    assert [app["Id"] for app in client.get_apps()["ApplicationsResponse"]["Item"]] == [app_id]

    listed = clarion("keys", "list", *data)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key["access_key_id"]))
    assert f"projects={app_id}" in line and "operations=GetApps,GetApp" in line and "rate=50/s  burst=100" in line
    assert "(store, created" in line and "reader" in line
    assert key["secret_access_key"] not in listed.stdout

    revoked = clarion("keys", "revoke", key["access_key_id"], *data)
    assert revoked.returncode == 0, revoked.stderr
    eventually(lambda: not accepted(client), "the revoked key is refused")
    assert key["access_key_id"] not in clarion("keys", "list", *data).stdout

    again = clarion("keys", "revoke", key["access_key_id"], *data)
    assert again.returncode == 1 and "already revoked" in again.stderr


def test_stored_secrets_are_sealed(sqlite_server: RunningServer) -> None:
    key = created(clarion("keys", "create", "--data-dir", str(sqlite_server.settings.data_dir)))
    raw = sqlite_server.settings.sqlite_path.read_bytes() + _wal(sqlite_server.settings.sqlite_path)
    assert key["access_key_id"].encode() in raw
    assert key["secret_access_key"].encode() not in raw


def _wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


# --------------------------------------------------------------------------------------------------------------
# What the CLI refuses


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--operation", "SendMesages"], "Unknown operation 'SendMesages'; did you mean SendMessages?"),
        (["--operation", "DeleteEverything"], "Unknown operation 'DeleteEverything'"),
        (["--project", "no-such-project"], "No project 'no-such-project'"),
        (["--allow-network", "10.1.2.0/33"], "10.1.2.0/33"),
        (["--allow-network", "banana"], "banana"),
    ],
)
def test_create_refuses_what_does_not_exist(tmp_path: Path, arguments: list[str], says: str) -> None:
    data = tmp_path / "data"
    result = clarion("keys", "create", "--data-dir", str(data), *arguments)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert "No access keys" in clarion("keys", "list", "--data-dir", str(data)).stderr


def test_extension_operations_are_known(tmp_path: Path) -> None:
    key = created(clarion("keys", "create", "--data-dir", str(tmp_path), "--operation", "ClarionPreviewSegment"))
    assert key["operations"] == ["ClarionPreviewSegment"]


def test_list_without_config_says_when_there_are_none(tmp_path: Path) -> None:
    """No --config and no store where the default data folder would be: a clear sentence, and nothing created."""
    result = clarion("keys", "list", cwd=tmp_path)
    assert result.returncode == 0
    assert "No access keys" in result.stderr and "clarion-data" in result.stderr
    assert not (tmp_path / "clarion-data").exists()


def test_list_shows_keys_from_the_settings_and_the_default_data_folder(tmp_path: Path) -> None:
    stored = created(clarion("keys", "create", "--description", "made here", cwd=tmp_path))
    config = tmp_path / "clarion.toml"
    config.write_text(
        '[[access_keys]]\naccess_key_id = "AKIDFROMTOMLFILE0001"\nsecret_access_key = "toml-secret"\n'
        'projects = ["p1", "p2"]\n'
    )
    env = clean_env(CLARION_ACCESS_KEY_ID="AKIDFROMENVIRON00001", CLARION_SECRET_ACCESS_KEY="env-secret")
    result = clarion("keys", "list", "--config", str(config), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "AKIDFROMTOMLFILE0001  projects=p1,p2" in result.stdout and "(settings)" in result.stdout
    assert "AKIDFROMENVIRON00001" in result.stdout
    assert stored["access_key_id"] in result.stdout and "made here" in result.stdout
    for secret in ("toml-secret", "env-secret", stored["secret_access_key"]):
        assert secret not in result.stdout + result.stderr


def test_revoke_refuses_unknown_and_configured_keys(tmp_path: Path) -> None:
    result = clarion("keys", "revoke", "CLRNNOSUCHKEY0000000", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "No stored access key 'CLRNNOSUCHKEY0000000'" in result.stderr
    env = clean_env(CLARION_ACCESS_KEY_ID="AKIDFROMENVIRON00001", CLARION_SECRET_ACCESS_KEY="env-secret")
    result = clarion("keys", "revoke", "AKIDFROMENVIRON00001", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 1 and "comes from the settings" in result.stderr


def test_keys_from_the_old_key_file_move_into_the_store(tmp_path: Path) -> None:
    """Older Clarions kept keys, secrets in plain text, in a file in the data folder; it is adopted and removed."""
    data = tmp_path / "data"
    data.mkdir()
    old = {"access_key_id": "CLRNOLDFILEKEY000001", "secret_access_key": "old-secret", "projects": ["*"]}
    (data / LEGACY_KEY_FILE).write_text(json.dumps([old]))
    listed = clarion("keys", "list", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    assert "CLRNOLDFILEKEY000001" in listed.stdout and "(store, created" in listed.stdout
    assert not (data / LEGACY_KEY_FILE).exists()
    assert b"old-secret" not in (data / "clarion.sqlite3").read_bytes() + _wal(data / "clarion.sqlite3")


# --------------------------------------------------------------------------------------------------------------
# Two server processes on one PostgreSQL store


@pytest.mark.postgres
def test_a_key_revoked_through_one_process_is_refused_by_another(postgres_url: str, tmp_path: Path) -> None:
    reset_postgres(postgres_url)
    # Stored secrets are sealed: every process and the CLI share the sealing key, as channel secrets require.
    shared = {"CLARION_DELIVERY__SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    processes = []
    urls = []
    try:
        for name in ("first", "second"):
            settings = Settings(data_dir=tmp_path / name, port=free_port(), database_url=postgres_url)
            processes.append(start_server(settings, tmp_path / f"{name}.log", **shared))
            urls.append(f"http://127.0.0.1:{settings.port}")
        cli_env = clean_env(**shared)
        target = ["--database-url", postgres_url, "--data-dir", str(tmp_path / "cli")]
        key = created(clarion("keys", "create", *target, "--description", "shared", env=cli_env))
        clients = [client_for(url, key) for url in urls]
        for number, client in enumerate(clients, 1):
            eventually(lambda client=client: accepted(client), f"server {number} accepts the new key")

        assert clarion("keys", "revoke", key["access_key_id"], *target, env=cli_env).returncode == 0
        for number, client in enumerate(clients, 1):
            eventually(lambda client=client: not accepted(client), f"server {number} refuses the revoked key")
        for url in urls:  # the keys from the settings are untouched
            assert accepted(client_for(url, ADMIN))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
