"""Backup and restore, and stores newer than the binary: `clarion backup` while a server writes, `clarion restore`
into a fresh data directory, a server on it answering what the original answered; pg_dump / pg_restore as
docs/operations.md writes them; `serve` and `migrate` refusing a store a newer Clarion has migrated."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, RunningServer, free_port, reset_postgres, running
from processes import clarion, clean_env

from clarion.config import AccessKey, Settings
from clarion.store.migrations import LATEST

BATCH = 10  # endpoints per write; each write is one user's endpoints, so a user is all there or not at all
GCM = {"ApiKey": "gcm-api-key-that-is-sealed", "Enabled": True}


def fill(client: Any) -> str:
    """A project with state of every kind an operator would miss: endpoints, a segment, a template, a sealed
    channel secret."""
    app_id = client.create_app(CreateApplicationRequest={"Name": "shop"})["ApplicationResponse"]["Id"]
    client.update_application_settings(
        ApplicationId=app_id, WriteApplicationSettingsRequest={"Limits": {"Daily": 3, "MessagesPerSecond": 50}}
    )
    for start in range(0, 3000, 100):
        items = [
            {"Id": f"base-{n}", "ChannelType": "EMAIL", "Address": f"base-{n}@example.org", "Attributes": {"n": ["x"]}}
            for n in range(start, start + 100)
        ]
        client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})
    client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "everyone"})
    client.create_email_template(
        TemplateName="welcome", EmailTemplateRequest={"Subject": "Hi {{User.UserId}}", "HtmlPart": "<p>Hello</p>"}
    )
    client.update_gcm_channel(ApplicationId=app_id, GCMChannelRequest=GCM)
    return app_id


def write_batch(client: Any, app_id: str, number: int) -> None:
    items = [
        {
            "Id": f"b{number}-{n}",
            "ChannelType": "EMAIL",
            "Address": f"b{number}-{n}@example.org",
            "User": {"UserId": f"batch-{number}"},
        }
        for n in range(BATCH)
    ]
    client.update_endpoints_batch(ApplicationId=app_id, EndpointBatchRequest={"Item": items})


class Writers:
    """Writes numbered batches one after another until stopped, remembering which were acknowledged."""

    def __init__(self, client: Any, app_id: str) -> None:
        self.client, self.app_id = client, app_id
        self.acknowledged: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writers:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            try:
                write_batch(self.client, self.app_id, number)
            except Exception as error:
                self.errors.append(error)
                return
            self.acknowledged.append(number)
            number += 1


def users_present(client: Any, app_id: str, upto: int) -> list[int]:
    """Which batch users a server holds, checking each is whole (all of its endpoints or none)."""
    present = []
    for number in range(upto):
        try:
            found = client.get_user_endpoints(ApplicationId=app_id, UserId=f"batch-{number}")["EndpointsResponse"]
        except client.exceptions.NotFoundException:
            continue
        assert len(found["Item"]) == BATCH, f"batch {number} restored in part"
        present.append(number)
    return present


def clean(response: dict[str, Any]) -> dict[str, Any]:
    """An answer without its per-request ids."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def visible_state(client: Any, app_id: str) -> dict[str, Any]:
    """What the API shows of the project."""
    endpoints = [client.get_endpoint(ApplicationId=app_id, EndpointId=f"base-{n}") for n in (0, 1234, 2999)]
    return {
        "apps": clean(client.get_apps()),
        "settings": clean(client.get_application_settings(ApplicationId=app_id)),
        "segments": clean(client.get_segments(ApplicationId=app_id)),
        "templates": clean(client.list_templates()),
        "template": clean(client.get_email_template(TemplateName="welcome")),
        "channels": clean(client.get_channels(ApplicationId=app_id)),
        "gcm": clean(client.get_gcm_channel(ApplicationId=app_id)),
        "endpoints": [clean(endpoint) for endpoint in endpoints],
    }


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=free_port(), access_keys=[ADMIN], access_log=False)


@pytest.fixture
def live(sqlite_settings: Settings) -> Iterator[RunningServer]:
    with running(sqlite_settings) as server:
        yield server


def test_a_backup_taken_while_writing_restores_to_the_same_api_visible_state(
    live: RunningServer, tmp_path: Path
) -> None:
    client = live.client()
    app_id = fill(client)
    keys = clarion("keys", "create", "--data-dir", str(live.settings.data_dir), "--description", "kept")
    assert keys.returncode == 0, keys.stderr
    before = visible_state(client, app_id)
    backup = tmp_path / "backup"

    with Writers(client, app_id) as writers:
        while len(writers.acknowledged) < 5 and not writers.errors:  # writing is under way before the backup
            threading.Event().wait(0.05)
        acknowledged_before = len(writers.acknowledged)
        made = clarion("backup", str(backup), "--data-dir", str(live.settings.data_dir), cwd=tmp_path)
        acknowledged_after = len(writers.acknowledged)
        while len(writers.acknowledged) < acknowledged_after + 3 and not writers.errors:  # and goes on after it
            threading.Event().wait(0.05)
    assert not writers.errors, f"the server refused writes during the backup: {writers.errors[:1]}"
    assert made.returncode == 0, made.stderr
    assert "The DuckDB segment replica is not copied" in made.stdout
    assert sorted(path.name for path in backup.iterdir()) == [
        "backup.json",
        "channel-secrets.key",
        "clarion.sqlite3",
    ]
    assert all(path.stat().st_mode & 0o077 == 0 for path in backup.iterdir()), "backup files are private"
    assert json.loads((backup / "backup.json").read_text())["schema_version"] == LATEST

    restored_dir = tmp_path / "restored"
    restored = clarion("restore", str(backup), "--data-dir", str(restored_dir), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    kept = AccessKey.model_validate_json(keys.stdout)  # stored in the store, sealed with the channel-secrets key

    settings = live.settings.model_copy(update={"data_dir": restored_dir, "port": free_port()})
    with running(settings) as copy:
        copied = copy.client()
        assert visible_state(copied, app_id) == before
        assert copy.client(kept).get_apps()["ApplicationsResponse"]["Item"], "the stored key opens on the copy"
        present = users_present(copied, app_id, len(writers.acknowledged))
        assert present == list(range(len(present))), "the copy holds a prefix of the writes: one moment in time"
        assert acknowledged_before <= len(present) <= acknowledged_after
        for number in (0, len(present) - 1):
            endpoint = f"b{number}-7"
            assert clean(copied.get_endpoint(ApplicationId=app_id, EndpointId=endpoint)) == clean(
                client.get_endpoint(ApplicationId=app_id, EndpointId=endpoint)
            )
        # The channel secret opens: the key that sealed it came along (a partial update re-seals it).
        updated = copied.update_gcm_channel(ApplicationId=app_id, GCMChannelRequest={"Enabled": False})
        assert updated["GCMChannelResponse"]["Enabled"] is False


def test_restore_wants_a_fresh_data_dir_and_an_intact_backup(live: RunningServer, tmp_path: Path) -> None:
    fill(live.client())
    backup = tmp_path / "backup"
    assert clarion("backup", str(backup), "--data-dir", str(live.settings.data_dir)).returncode == 0
    again = clarion("backup", str(backup), "--data-dir", str(live.settings.data_dir))
    assert again.returncode == 2 and "already exists" in again.stderr

    in_use = clarion("restore", str(backup), "--data-dir", str(live.settings.data_dir))
    assert in_use.returncode == 2 and "fresh data directory" in in_use.stderr and "clarion.sqlite3" in in_use.stderr

    altered = tmp_path / "altered"
    shutil.copytree(backup, altered)
    with (altered / "clarion.sqlite3").open("r+b") as store:
        store.seek(5000)
        store.write(b"\xff" * 16)
    damaged = clarion("restore", str(altered), "--data-dir", str(tmp_path / "fresh"))
    assert damaged.returncode == 2 and "altered" in damaged.stderr
    assert not (tmp_path / "fresh").exists(), "nothing is written before every file checks out"

    nothing = clarion("backup", str(tmp_path / "b2"), "--data-dir", str(tmp_path / "empty"))
    assert nothing.returncode == 2 and "no store" in nothing.stderr
    assert "Traceback" not in again.stderr + in_use.stderr + damaged.stderr + nothing.stderr


@pytest.mark.postgres
def test_postgresql_is_backed_up_with_pg_dump_as_documented(postgres_url: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed (Debian: postgresql-client)")
    import psycopg

    refused = clarion("backup", str(tmp_path / "b"), "--database-url", postgres_url)
    assert refused.returncode == 2 and "pg_dump" in refused.stderr

    reset_postgres(postgres_url)
    settings = Settings(
        data_dir=tmp_path / "data", port=free_port(), access_keys=[ADMIN], access_log=False, database_url=postgres_url
    )
    with running(settings) as original:
        app_id = fill(original.client())
        before = visible_state(original.client(), app_id)

    # The commands of docs/operations.md, "Backup and restore".
    dump = tmp_path / "clarion.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", postgres_url], check=True, timeout=120)
    target = postgres_url.rsplit("/", 1)[0] + f"/{postgres_url.rsplit('/', 1)[1]}_restored"
    name = target.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={target}", str(dump)], check=True, timeout=120)
        with running(settings.model_copy(update={"database_url": target, "port": free_port()})) as copy:
            assert visible_state(copy.client(), app_id) == before
            updated = copy.client().update_gcm_channel(ApplicationId=app_id, GCMChannelRequest={"Enabled": False})
            assert updated["GCMChannelResponse"]["Enabled"] is False  # the data_dir key file opens the copy too
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_store_newer_than_this_clarion_is_refused_by_serve_and_migrate(settings: Settings) -> None:
    target = ["--database-url", settings.database_url] if settings.uses_postgres else []
    target += ["--data-dir", str(settings.data_dir)]
    assert clarion("migrate", *target).returncode == 0
    newer = LATEST + 1
    if settings.uses_postgres:
        import psycopg

        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, 'later')", (newer,))
    else:
        import sqlite3

        with sqlite3.connect(settings.sqlite_path) as conn:
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'later')", (newer,))

    for command in (["migrate"], ["serve", "--port", str(settings.port), "--insecure-any-credentials"]):
        result = subprocess.run(
            [sys.executable, "-m", "clarion", *command, *target],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"schema is version {newer}" in result.stderr and f"its newest is version {LATEST}" in result.stderr
        assert "up to date" not in result.stdout and "Traceback" not in result.stderr
