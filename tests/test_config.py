"""Settings an operator can trust: unknown keys and half-made settings refused with the key named, `clarion config
check` and `clarion config show` (secrets hidden)."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from processes import clarion, clean_env
from pydantic import BaseModel

from clarion.app import WORKER_SETTINGS_ENV
from clarion.config import Settings, SettingsError, load_settings, settings_table
from clarion.settings_model import SettingsModel


def problems_of(config: Path | None = None, **overrides: typing.Any) -> list[str]:
    with pytest.raises(SettingsError) as refused:
        load_settings(config, **overrides)
    return refused.value.problems


def test_a_misspelt_table_is_refused_naming_the_key_and_the_closest_one(
    isolated_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text('[delivery.smpt]\nhost = "relay.example.com"\n')
    assert problems_of(config) == ["delivery.smpt: unknown setting; did you mean delivery.smtp?"]


def test_unknown_keys_are_refused_at_every_depth(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text(
        "prot = 9000\n"
        "[delivery.smtp]\nhots = 'relay'\n"
        "[delivery.smtp.dkim]\ndomain = 'example.com'\nselector = 's1'\nprivate_key = 'PEM'\nsigner = 'x'\n"
        "[[access_keys]]\naccess_key_id = 'A'\nsecret_access_key = 's'\noperatons = ['SendMessages']\n"
    )
    assert sorted(problems_of(config)) == [
        "access_keys[0].operatons: unknown setting; did you mean access_keys[0].operations?",
        "delivery.smtp.dkim.signer: unknown setting",
        "delivery.smtp.hots: unknown setting; did you mean delivery.smtp.host?",
        "prot: unknown setting; did you mean port?",
    ]


def test_a_misspelt_nested_environment_variable_is_refused(isolated_env: pytest.MonkeyPatch) -> None:
    isolated_env.setenv("CLARION_QUEUE__WORKRES", "4")
    assert problems_of() == ["queue.workres: unknown setting; did you mean queue.workers?"]


def test_the_variables_clarion_itself_sets_are_not_settings(isolated_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`serve --workers` names the worker settings file in CLARION_WORKER_SETTINGS_FILE; that is no typo."""
    isolated_env.setenv(WORKER_SETTINGS_ENV, str(tmp_path / ".worker-settings-1.json"))
    assert load_settings().port == 8080


def test_every_settings_table_refuses_unknown_keys() -> None:
    """Walks the whole settings tree, so a table added later cannot silently accept typos."""
    seen: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = [Settings]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", f"{model.__name__} accepts unknown keys"
        assert model is Settings or issubclass(model, SettingsModel), f"{model.__name__} is not a SettingsModel"
        pending.extend(found for field in model.model_fields.values() if (found := settings_table(field.annotation)))
    assert len(seen) > 15  # the walk reached the nested tables (delivery.smtp.dkim, access keys, ...)


@pytest.mark.parametrize(
    ("tracking", "problem"),
    [
        ({"base_url": "https://mail.example.com"}, "base_url is set but key is empty"),
        ({"key": "k"}, "key is set but base_url is empty"),
        ({"base_url": "mail.example.com", "key": "k"}, "must be an http(s) URL"),
    ],
)
def test_half_made_tracking_is_refused_instead_of_turning_tracking_off(
    isolated_env: pytest.MonkeyPatch, tracking: dict[str, str], problem: str
) -> None:
    [found] = problems_of(delivery={"tracking": tracking})
    assert found.startswith("delivery.tracking: ") and problem in found


def test_a_database_url_that_is_not_postgresql_is_refused(isolated_env: pytest.MonkeyPatch) -> None:
    [found] = problems_of(database_url="mysql://clarion:pw@db/clarion")
    assert "postgresql://" in found and "'mysql'" in found and "pw" not in found


def test_serve_refuses_a_typo_before_creating_anything(tmp_path: Path) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text('[delivery.smpt]\nhost = "relay.example.com"\n')
    result = clarion("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "1")
    assert result.returncode == 2
    assert "delivery.smpt: unknown setting; did you mean delivery.smtp?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_config_check_names_missing_files_and_summarises_valid_settings(tmp_path: Path) -> None:
    config = tmp_path / "clarion.toml"
    config.write_text(
        '[delivery.smtp]\nhost = "relay.example.com"\nport = 2525\nca_file = "/nonexistent/ca.pem"\n'
        '[delivery.tracking]\nbase_url = "https://mail.example.com"\nkey = "k"\n'
    )
    refused = clarion("config", "check", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 2
    assert "delivery.smtp.ca_file: no file /nonexistent/ca.pem" in refused.stderr

    config.write_text(config.read_text().replace("/nonexistent/ca.pem", str(config)))
    env = clean_env(CLARION_QUEUE__WORKERS="3", CLARION_DELIVERY__SMS__PROVIDER="twilio")
    env.update(CLARION_DELIVERY__SMS__TWILIO__ACCOUNT_SID="AC1", CLARION_DELIVERY__SMS__TWILIO__AUTH_TOKEN="t")
    checked = clarion("config", "check", "--config", str(config), "--data-dir", "elsewhere", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "store: SQLite at elsewhere/clarion.sqlite3" in checked.stdout
    assert "email: SMTP relay relay.example.com:2525 (starttls) · SMS: twilio · voice: none" in checked.stdout
    assert "tracking: on at https://mail.example.com" in checked.stdout
    assert "bounces and complaints by mail: no listener (delivery.bounces) · return path: From" in checked.stdout
    assert "3 queue workers" in checked.stdout
    assert not (tmp_path / "elsewhere").exists(), "checking opens no store"


def test_config_show_resolves_every_source_and_hides_every_secret(tmp_path: Path) -> None:
    secrets = {
        "smtp-password",
        "tracking-key",
        "toml-key-secret",
        "env-key-secret",
        "pg-password",
        "twilio-token",
        "Bearer gateway-token",
        "s3-secret",
        "webhook-hmac",
        "hook-secret",
    }
    config = tmp_path / "clarion.toml"
    config.write_text(
        "port = 9100\n"
        'database_url = "postgresql://clarion:pg-password@db.internal:5432/clarion"\n'
        '[[access_keys]]\naccess_key_id = "AKIDTOML"\nsecret_access_key = "toml-key-secret"\n'
        '[delivery.smtp]\nhost = "relay.example.com"\nusername = "mailer"\npassword = "smtp-password"\n'
        '[delivery.tracking]\nbase_url = "https://mail.example.com"\nkey = "tracking-key"\n'
        '[delivery.webhook]\nsigning_secret = "hook-secret"\n'
        '[delivery.sms]\nprovider = "http"\n'
        '[delivery.sms.http]\nurl = "https://gateway.example.com/send"\nwebhook_secret = "webhook-hmac"\n'
        'headers = { Authorization = "Bearer gateway-token" }\n'
        '[delivery.voice.twilio]\naccount_sid = "AC1"\nauth_token = "twilio-token"\n'
        '[jobs.s3]\naccess_key_id = "AKIDS3"\nsecret_access_key = "s3-secret"\n'
    )
    data = tmp_path / "data"
    env = clean_env(CLARION_ACCESS_KEY_ID="AKIDENV", CLARION_SECRET_ACCESS_KEY="env-key-secret", CLARION_PORT="9200")
    result = clarion("config", "show", "--config", str(config), "--data-dir", str(data), "--host", "0.0.0.0", env=env)
    assert result.returncode == 0, result.stderr
    for secret in secrets:
        assert secret not in result.stdout, f"{secret} was printed"
    shown = json.loads(result.stdout)
    assert (shown["host"], shown["port"]) == ("0.0.0.0", 9200)  # flag, then environment over the file
    assert shown["database_url"] == "postgresql://clarion:********@db.internal:5432/clarion"
    assert [key["access_key_id"] for key in shown["access_keys"]] == ["AKIDTOML"]  # stored keys: `clarion keys list`
    assert not data.exists(), "showing the settings opens no store"
    assert shown["access_key_id"] == "AKIDENV" and shown["secret_access_key"] == "********"
    assert shown["delivery"]["smtp"]["username"] == "mailer"
    assert shown["delivery"]["sms"]["http"]["url"] == "https://gateway.example.com/send"
    assert shown["delivery"]["tracking"]["base_url"] == "https://mail.example.com"
    assert shown["jobs"]["s3"]["access_key_id"] == "AKIDS3"
