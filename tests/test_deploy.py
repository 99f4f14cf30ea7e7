"""The files in deploy/ stay true to Clarion: the settings the compose file, the Dockerfile and the systemd unit hand
to `clarion` pass `clarion config check`, and the image copies everything the wheel is built from.

What this machine cannot run (a container engine, systemd as init) is checked as docs/operations.md describes."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml
from processes import clarion, clean_env

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ROOT = DEPLOY.parent


def substituted(value: str) -> str:
    """Compose's `${NAME:-default}` with the default taken."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_compose_settings_pass_config_check(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    clarion_service = compose["services"]["clarion"]
    environment = {name: substituted(str(value)) for name, value in clarion_service["environment"].items()}
    assert set(compose["services"]) == {"clarion", "postgres", "mail"}
    assert clarion_service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    checked = clarion("config", "check", env=clean_env(**environment), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "store: PostgreSQL at postgresql://clarion:********@postgres:5432/clarion" in checked.stdout
    assert "email: SMTP relay mail:1025 (none)" in checked.stdout
    postgres = compose["services"]["postgres"]["environment"]
    assert environment["CLARION_DATABASE_URL"].startswith(
        f"postgresql://{postgres['POSTGRES_USER']}:{substituted(postgres['POSTGRES_PASSWORD'])}@postgres:5432/"
    )


def test_the_image_settings_pass_config_check_and_the_image_has_what_the_wheel_needs(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    environment = dict(re.findall(r"(CLARION_[A-Z_]+)=(\S+)", dockerfile))
    assert environment == {"CLARION_HOST": "0.0.0.0", "CLARION_DATA_DIR": "/var/lib/clarion/data"}
    checked = clarion("config", "check", env=clean_env(**environment), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert 'CMD ["clarion", "serve"]' in dockerfile

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {project["readme"], *project["license-files"], "pyproject.toml"}
    copied = " ".join(re.findall(r"^COPY (?!--from)(.*)$", dockerfile, re.MULTILINE))
    allowed = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for path in needed:
        assert path in copied or (path.startswith("clarion/") and "COPY clarion" in dockerfile), path
        assert f"!{path}" in allowed or (path.startswith("clarion/") and "!clarion/" in allowed), path


def test_the_systemd_unit_runs_commands_clarion_has(tmp_path: Path) -> None:
    unit = (DEPLOY / "clarion.service").read_text()
    commands = [shlex.split(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith("ExecStart")]
    assert [command[1:3] for command in commands] == [["config", "check"], ["serve", "--config"]]
    config = tmp_path / "clarion.toml"
    config.write_text('host = "0.0.0.0"\n')
    for command in commands:
        arguments = [config.as_posix() if part.endswith("clarion.toml") else part for part in command[1:]]
        help_run = clarion(*arguments[: arguments.index("--config")], "--help")
        assert help_run.returncode == 0 and "--config" in help_run.stdout
    checked = clarion("config", "check", "--config", str(config), env=clean_env(CLARION_DATA_DIR="/var/lib/clarion"))
    assert checked.returncode == 0, checked.stderr
