"""The `clarion` command: run the server, manage access keys, migrate the store, print the OpenAPI document."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import string
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from clarion import __version__
from clarion.config import AccessKey, Settings, load_settings

app = typer.Typer(
    help="Clarion: a self-hosted successor to Amazon Pinpoint. Point boto3, the AWS CLI or any AWS SDK at it "
    "with endpoint_url (or AWS_ENDPOINT_URL_PINPOINT) and keep your Pinpoint code.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage the access keys clients sign requests with.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
jobs_app = typer.Typer(help="Follow import and export jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
campaigns_app = typer.Typer(help="Follow campaigns as they run.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
queue_app = typer.Typer(help="Look at the background work queue of a running server.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (also CLARION_CONFIG).", exists=True)
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder for the embedded store and generated keys.")
]
DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="postgresql://... to use PostgreSQL instead of SQLite.")
]

KEYS_FILE = "access-keys.json"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keys_path(settings: Settings) -> Path:
    return settings.data_dir / KEYS_FILE


def _stored_keys(settings: Settings) -> list[AccessKey]:
    path = _keys_path(settings)
    if not path.exists():
        return []
    return [AccessKey(**item) for item in json.loads(path.read_text())]


def _save_keys(settings: Settings, keys: list[AccessKey]) -> None:
    path = _keys_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps([key.model_dump() for key in keys], indent=2))


def _new_key(**scope: Any) -> AccessKey:
    alphabet = string.ascii_uppercase + string.digits
    key_id = "CLRN" + "".join(secrets.choice(alphabet) for _ in range(16))
    return AccessKey(access_key_id=key_id, secret_access_key=secrets.token_urlsafe(30), **scope)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    settings = load_settings(config, **overrides)
    settings.access_keys = settings.access_keys + _stored_keys(settings)
    return settings


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on. [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on. [default: 8080]")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    insecure_any_credentials: Annotated[
        bool | None,
        typer.Option(
            "--insecure-any-credentials",
            help="DEVELOPMENT ONLY: accept any SigV4 credentials without checking signatures. Loopback only.",
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error. [default: info]")] = None,
    workers: Annotated[
        int, typer.Option(help="API processes sharing the port (several cores; best with PostgreSQL).", min=1)
    ] = 1,
) -> None:
    """Run the API server on the embedded store (default) or PostgreSQL: one process unless --workers."""
    from clarion.app import RESOLVED_SETTINGS_ENV, create_app
    from clarion.logs import configure_logging

    settings = _settings(
        config,
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        insecure_any_credentials=insecure_any_credentials,
        log_level=log_level,
    )
    if settings.insecure_any_credentials and not _is_loopback(settings.host):
        console.print(f"[red]Refusing --insecure-any-credentials on {settings.host}: it is for loopback only.[/red]")
        raise typer.Exit(2)
    if not settings.all_access_keys() and not settings.insecure_any_credentials:
        key = _new_key(description="admin key created by the first `clarion serve`")
        _save_keys(settings, [key])
        settings.access_keys.append(key)
        console.print(f"Created an admin access key in {_keys_path(settings)}")
    configure_logging(settings.log_level)
    url = f"http://{settings.host}:{settings.port}"
    store = "PostgreSQL" if settings.uses_postgres else f"SQLite at {settings.sqlite_path}"
    console.print(f"[bold]Clarion {__version__}[/bold] — Pinpoint API on [cyan]{url}[/cyan] (store: {store})")
    console.print(f"  health {url}/health · metrics {url}/metrics · OpenAPI {url}/openapi.json")
    if settings.insecure_any_credentials:
        console.print("  [yellow]INSECURE: any credentials are accepted (development mode)[/yellow]")
    else:
        first = settings.all_access_keys()[0]
        console.print("  Authenticate with SigV4 (service mobiletargeting), for example:")
        console.print(
            f"    export AWS_ENDPOINT_URL_PINPOINT={url} AWS_ACCESS_KEY_ID={first.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={first.secret_access_key} AWS_DEFAULT_REGION={settings.region}"
        )
        console.print("    aws pinpoint get-apps")
    server_options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **server_options)
        return
    os.environ[RESOLVED_SETTINGS_ENV] = settings.model_dump_json()
    console.print(f"  {workers} worker processes")
    uvicorn.run("clarion.app:create_app_from_environment", factory=True, workers=workers, **server_options)


@keys_app.command("create")
def keys_create(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    project: Annotated[
        list[str] | None, typer.Option(help="Limit the key to this project id (repeatable). Default: all.")
    ] = None,
    operation: Annotated[
        list[str] | None,
        typer.Option(help="Limit the key to this operation, e.g. SendMessages (repeatable). Default: all."),
    ] = None,
    allow_network: Annotated[
        list[str] | None, typer.Option(help="Accept the key only from this CIDR (repeatable). Default: anywhere.")
    ] = None,
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create an access key (stored in DATA_DIR/access-keys.json) and print it once."""
    settings = load_settings(config, data_dir=data_dir)
    scope: dict[str, Any] = {"description": description}
    if project:
        scope["projects"] = project
    if operation:
        scope["operations"] = operation
    if allow_network:
        scope["allow_networks"] = allow_network
    try:
        key = _new_key(**scope)
    except ValidationError as error:
        console.print(f"[red]{'; '.join(e['msg'] for e in error.errors())}[/red]")
        raise typer.Exit(2) from None
    _save_keys(settings, [*_stored_keys(settings), key])
    typer.echo(json.dumps(key.model_dump(), indent=2))


@keys_app.command("list")
def keys_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List access keys and their scope (secrets are not shown)."""
    settings = _settings(config, data_dir=data_dir)
    for key in settings.all_access_keys():
        typer.echo(
            f"{key.access_key_id}  projects={','.join(key.projects)}  operations={','.join(key.operations)}  "
            f"networks={','.join(key.allow_networks)}  {key.description}"
        )


@keys_app.command("revoke")
def keys_revoke(access_key_id: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Remove a key from DATA_DIR/access-keys.json; restart the server for it to take effect."""
    settings = load_settings(config, data_dir=data_dir)
    keys = _stored_keys(settings)
    remaining = [key for key in keys if key.access_key_id != access_key_id]
    if len(remaining) == len(keys):
        console.print(f"[red]No stored key {access_key_id}[/red]")
        raise typer.Exit(1)
    _save_keys(settings, remaining)
    typer.echo(f"revoked {access_key_id}")


@app.command()
def migrate(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Create or upgrade the store's schema (the server also does this when it starts)."""
    from clarion.services import open_database
    from clarion.store.migrations import migrate as run_migrations

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)

    async def run() -> list[int]:
        db = open_database(settings)
        try:
            return await db.write(run_migrations)
        finally:
            db.close()

    applied = asyncio.run(run())
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


@jobs_app.command("watch")
def jobs_watch(
    application_id: str,
    job_id: str,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the job.")] = 1.0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show an import or export job's progress until it ends; exit 0 if it COMPLETED, 1 if it FAILED."""
    from clarion.jobs.watch import job_reader
    from clarion.watching import watch

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    missing = f"No import or export job {job_id!r} in application {application_id!r}"
    raise typer.Exit(watch(settings, job_reader(application_id, job_id), interval, Console(stderr=False), missing))


@campaigns_app.command("watch")
def campaigns_watch(
    application_id: str,
    campaign_id: str,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the campaign.")] = 1.0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Follow a campaign's current run batch by batch until the campaign stops executing; exit 0 on success."""
    from clarion.campaigns.watch import campaign_reader
    from clarion.watching import watch

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    missing = f"No campaign {campaign_id!r} in application {application_id!r}"
    reader = campaign_reader(application_id, campaign_id)
    raise typer.Exit(watch(settings, reader, interval, Console(stderr=False), missing))


@queue_app.command("buried")
def queue_buried(
    application_id: Annotated[str | None, typer.Option(help="Only this project's items.")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="The server's URL (else AWS_ENDPOINT_URL_PINPOINT, else host and port).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """List work the queue gave up on and why (ClarionGetBuriedWork), signed with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY: all projects' with a key for every project, else --application-id's."""
    from rich.table import Table

    from clarion.api.client import ApiClient, ApiError

    settings = load_settings(config)
    try:
        client = ApiClient.from_environment(endpoint_url, f"http://{settings.host}:{settings.port}", settings.region)
        answer = client.get("/v1/clarion/buried-work", {"application-id": application_id} if application_id else {})
    except ApiError as error:
        console.print(f"[red]{error}[/red]", markup=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(answer, indent=1))
        return
    table = Table("Id", "Kind", "Project", "Attempts", "Buried", "Reason")
    for item in answer["Item"]:
        table.add_row(
            str(item["Id"]),
            item["Kind"],
            item.get("ApplicationId", ""),
            str(item["Attempts"]),
            item["BuriedDate"],
            item["Reason"],
        )
    Console(stderr=False, soft_wrap=True).print(table)


@app.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 document of the API (generated from botocore's Pinpoint model)."""
    from clarion.api.openapi import openapi_document

    json.dump(openapi_document(__version__), sys.stdout, indent=1)
    sys.stdout.write("\n")


@app.command()
def version() -> None:
    """Print Clarion's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
