"""The `clarion` command: run the server, check and show its settings, manage access keys, migrate, back up and
restore the store, follow jobs, campaigns and journeys on a server, create journeys from blueprints, print the
OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
import uvicorn
from rich.console import Console

from clarion import __version__
from clarion.channels.config import DeliverySettings
from clarion.config import AccessKey, Settings, SettingsError, load_settings, redacted
from clarion.store.migrations import SchemaTooNew

if TYPE_CHECKING:
    from clarion.access_keys.service import AccessKeys
    from clarion.client import ApiClient
    from clarion.console.accounts import ConsoleAccounts
    from clarion.store.database import Database
    from clarion.watching import Reader

T = TypeVar("T")

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
analytics_app = typer.Typer(help="Export the who/when/what dataset for analysis.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")
journeys_app = typer.Typer(help="Create journeys from blueprints and follow them as they run.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")
users_app = typer.Typer(help="Manage the web console's users and their roles.", no_args_is_help=True)
app.add_typer(users_app, name="users")
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
HostOption = Annotated[str | None, typer.Option(help="Address to listen on. [default: 127.0.0.1]")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on. [default: 8080]")]
InsecureOption = Annotated[
    bool | None,
    typer.Option(
        "--insecure-any-credentials",
        help="DEVELOPMENT ONLY: accept any SigV4 credentials without checking signatures. Loopback only.",
    ),
]
LogLevelOption = Annotated[str | None, typer.Option(help="debug, info, warning or error. [default: info]")]
# Where the commands that call a running server (`watch`, `queue buried`) find it and the key: the AWS CLI's
# variables, so one export serves both; without them, the host, port and region of the settings.
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        envvar=["AWS_ENDPOINT_URL_PINPOINT", "AWS_ENDPOINT_URL"],
        help="The Clarion server (also AWS_ENDPOINT_URL_PINPOINT or AWS_ENDPOINT_URL). [default: the settings' "
        "host and port]",
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        help="Region to sign requests for. [default: the settings' region]",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        envvar="AWS_PROFILE",
        help="Profile of the shared credentials file; by default AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    ),
]
IntervalOption = Annotated[float, typer.Option(help="Seconds between looks.", min=0.05)]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.asynccontextmanager
async def _migrated_store(settings: Settings) -> AsyncIterator[Database]:
    """The store, created or migrated first (a store newer than this Clarion raises SchemaTooNew here)."""
    from clarion.services import open_database
    from clarion.store.migrations import migrate as run_migrations

    db = open_database(settings)
    try:
        await db.write(run_migrations)
        yield db
    finally:
        db.close()


async def _stored_keys(settings: Settings, db: Database) -> AccessKeys:
    """The store's access keys; keys an older Clarion kept in a file in the data folder move into it."""
    from clarion.access_keys.service import AccessKeys
    from clarion.channels.secrets import load_secret_box
    from clarion.clock import SystemClock

    keys = AccessKeys(db, load_secret_box(settings.delivery, settings.data_dir), SystemClock())
    await keys.adopt_key_file(settings.data_dir)
    return keys


async def _with_keys(settings: Settings, work: Callable[[AccessKeys], Awaitable[T]]) -> T:
    async with _migrated_store(settings) as db:
        return await work(await _stored_keys(settings, db))


async def _with_console(settings: Settings, work: Callable[[ConsoleAccounts], Awaitable[T]]) -> T:
    from clarion.clock import SystemClock
    from clarion.console.accounts import ConsoleAccounts

    async with _migrated_store(settings) as db:
        return await work(ConsoleAccounts(db, SystemClock()))


async def _prepare_to_serve(settings: Settings) -> tuple[AccessKey | None, bool, str | None]:
    """Before anything listens, on one connection to the store: migrate it, then the key the banner names (and
    whether it was just made) and the console admin's password when it was just made."""
    from clarion.clock import SystemClock
    from clarion.console.accounts import ConsoleAccounts

    async with _migrated_store(settings) as db:
        first_key: AccessKey | None = None
        created = False
        if not settings.insecure_any_credentials:
            first_key, created = await _first_key(settings, await _stored_keys(settings, db))
        return first_key, created, await _first_admin(ConsoleAccounts(db, SystemClock()))


async def _first_admin(accounts: ConsoleAccounts) -> str | None:
    """With no console user yet, make the admin `admin` and return its password (shown this once)."""
    from clarion.console.accounts import generate_password
    from clarion.console.roles import Role
    from clarion.errors import Conflict

    if await accounts.any_users():
        return None
    password = generate_password()
    try:
        await accounts.create_user("admin", Role.ADMIN, password)
    except Conflict:  # another process of the group, started at the same moment, made it first
        return None
    return password


@app.command()
def serve(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    insecure_any_credentials: InsecureOption = None,
    log_level: LogLevelOption = None,
    workers: Annotated[
        int, typer.Option(help="API processes sharing the port (several cores; best with PostgreSQL).", min=1)
    ] = 1,
) -> None:
    """Run the API server on the embedded store (default) or PostgreSQL: one process unless --workers."""
    from clarion.app import WORKER_SETTINGS_ENV, create_app, server_options, write_worker_settings
    from clarion.logs import configure_logging

    settings = load_settings(
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
    first_key, created, admin_password = asyncio.run(_prepare_to_serve(settings))
    configure_logging(settings.log_level)
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"[bold]Clarion {__version__}[/bold] — Pinpoint API on [cyan]{url}[/cyan] (store: {_store(settings)})"
    )
    for line in _summary(settings, workers):
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"  health {url}/health · metrics {url}/metrics · OpenAPI {url}/openapi.json")
    console.print(f"  web console {url}/console/")
    if admin_password is not None:
        console.print(
            f"  Created the console user admin with password {admin_password} (shown only this once; "
            "`clarion users create` adds more)",
            markup=False,
            highlight=False,
        )
    if settings.insecure_any_credentials:
        console.print("  [yellow]INSECURE: any credentials are accepted (development mode)[/yellow]")
    elif first_key is not None:
        # A secret is printed once, when it is made; later starts name the key only.
        secret = first_key.secret_access_key if created else "<the secret shown when the key was created>"
        if created:
            console.print("  Created an admin access key; its secret is shown only this once")
        console.print("  Authenticate with SigV4 (service mobiletargeting), for example:")
        console.print(
            f"    export AWS_ENDPOINT_URL_PINPOINT={url} AWS_ACCESS_KEY_ID={first_key.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={settings.region}"
        )
        console.print("    aws pinpoint get-apps")
    options = {**server_options(settings), "loop": "uvloop", "http": "httptools"}
    if workers == 1:
        uvicorn.run(create_app(settings, migrated=True), **options)
        return
    # The workers read the settings from a private file: secrets never pass through their environment.
    worker_settings = write_worker_settings(settings)
    os.environ[WORKER_SETTINGS_ENV] = str(worker_settings)
    metrics_dir = _group_metrics_dir(settings)
    console.print(f"  {workers} worker processes; /metrics reports them together")
    try:
        uvicorn.run("clarion.app:create_app_from_worker_settings", factory=True, workers=workers, **options)
    finally:
        worker_settings.unlink(missing_ok=True)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _group_metrics_dir(settings: Settings) -> Path | None:
    """A fresh private folder where the workers write their metrics for any of them to sum (clarion/metrics.py);
    None when the operator named one (PROMETHEUS_MULTIPROC_DIR), which is then theirs to empty between runs."""
    from clarion.metrics import GROUP_DIR_ENV
    from clarion.private_files import private_folder

    if os.environ.get(GROUP_DIR_ENV):
        return None
    folder = settings.data_dir / f".metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    private_folder(folder)
    os.environ[GROUP_DIR_ENV] = str(folder)
    return folder


async def _first_key(settings: Settings, keys: AccessKeys) -> tuple[AccessKey | None, bool]:
    """The key the start banner names, and whether it was just created: with no key configured or stored, the
    first start creates an admin key in the store."""
    configured = settings.all_access_keys()
    if configured:
        return configured[0], False
    stored = await keys.stored()
    if stored:
        return stored[0].key, False
    from clarion.access_keys.service import generate_key

    admin = generate_key(description="admin key created by the first `clarion serve`")
    return await keys.create(admin, known_operations=()), True


def _store(settings: Settings) -> str:
    if not settings.uses_postgres:
        return f"SQLite at {settings.sqlite_path}"
    return f"PostgreSQL at {redacted(settings)['database_url']}"


def _summary(settings: Settings, processes: int = 1) -> list[str]:
    """What a server on these settings will do: delivery providers, tracking, background work, what it lets in and
    out (the start banner)."""
    delivery = settings.delivery
    if delivery.dry_run:
        providers = ["delivery: DRY RUN, every channel writes to the log instead of a provider"]
    else:
        smtp, api = delivery.smtp, delivery.email_api
        if smtp.host:
            email = f"SMTP relay {smtp.host}:{smtp.port} ({smtp.security})"
            email += f" (delivery.email_api.provider {api.provider!r} unused)" if api.provider else ""
        else:
            email = f"{api.provider} API" if api.provider else "none (email sends fail)"
        webhooks = "signed" if delivery.webhook.signing_secret else "unsigned"
        providers = [
            f"email: {email} · SMS: {delivery.sms.provider or 'none'} · voice: {delivery.voice.provider or 'none'}",
            f"push: APNs and FCM with each project's channel credentials · custom-channel webhooks: {webhooks}",
        ]
    tracking = delivery.tracking
    queue_workers = settings.queue.workers
    senders = settings.campaigns.delivery_workers if queue_workers else 0
    scheduler = "the campaign scheduler" if settings.campaigns.scheduler else "no campaign scheduler"
    return [
        *providers,
        f"tracking: on at {tracking.base_url}" if tracking.base_url else "tracking: off (delivery.tracking unset)",
        _bounces(delivery),
        f"{_count(processes, 'API process', 'API processes')}, each with {_count(queue_workers, 'queue worker')}, "
        f"{_count(senders, 'campaign delivery worker')} and {scheduler}",
        f"segments: {settings.analytics.segment_engine} engine",
        _edge(settings),
    ]


def _bounces(delivery: DeliverySettings) -> str:
    listener = delivery.bounces
    heard = f"SMTP listener on {listener.host}:{listener.port}" if listener.port else "no listener (delivery.bounces)"
    domain = delivery.smtp.return_path_domain
    return f"bounces and complaints by mail: {heard} · return path: {f'bounce+ID@{domain}' if domain else 'From'}"


def _edge(settings: Settings) -> str:
    limit = settings.rate_limit
    rate = f"{limit.requests_per_second:g}/s, burst {limit.burst}" if limit.requests_per_second else "unlimited"
    proxies = ", ".join(settings.trusted_proxies) or "none"
    networks = ", ".join(str(network) for network in settings.outbound.allow_networks)
    reach = f"public addresses and {networks}" if networks else "public addresses only"
    return f"requests: {rate} per access key · proxies trusted: {proxies} · outbound (tenant URLs, providers): {reach}"


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="The name the person signs in with.")],
    role: Annotated[
        str, typer.Option(help="admin (everything), marketer (audiences, templates, campaigns) or analyst (read-only).")
    ] = "admin",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a console user with a generated password, printed this once."""
    from clarion.console.accounts import generate_password, parse_role
    from clarion.errors import PinpointError

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    password = generate_password()
    try:
        user = asyncio.run(
            _with_console(settings, lambda accounts: accounts.create_user(username, parse_role(role), password))
        )
    except PinpointError as refused:
        console.print(f"[red]{refused.message}[/red]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"username": user.username, "role": user.role.value, "password": password}, indent=2))


@users_app.command("list")
def users_list(
    config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None
) -> None:
    """List console users and their roles."""
    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    for user in asyncio.run(_with_console(settings, lambda accounts: accounts.users())):
        typer.echo(f"{user.username}\t{user.role.value}\t{user.created_at}")


@users_app.command("delete")
def users_delete(
    username: str, config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None
) -> None:
    """Remove a console user; their sessions end at once in every server process."""
    from clarion.errors import PinpointError

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    try:
        asyncio.run(_with_console(settings, lambda accounts: accounts.delete_user(username)))
    except PinpointError as refused:
        console.print(f"[red]{refused.message}[/red]")
        raise typer.Exit(2) from None


@keys_app.command("create")
def keys_create(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
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
    requests_per_second: Annotated[
        float | None, typer.Option(help="This key's request rate (0: unlimited). Default: rate_limit's.", min=0)
    ] = None,
    burst: Annotated[int | None, typer.Option(help="Requests the key may make at once. Default: rate_limit's.")] = None,
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create an access key in the store and print it once; running servers accept it within seconds."""
    from clarion.access_keys.service import KeyRefused, generate_key
    from clarion.api.extended import ROUTED_OPERATIONS

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    scope: dict[str, Any] = {"description": description, "requests_per_second": requests_per_second, "burst": burst}
    if project:
        scope["projects"] = project
    if operation:
        scope["operations"] = operation
    if allow_network:
        scope["allow_networks"] = allow_network
    try:
        key = generate_key(**scope)
        asyncio.run(_with_keys(settings, lambda keys: keys.create(key, known_operations=ROUTED_OPERATIONS)))
    except KeyRefused as refused:
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps(key.model_dump(exclude_none=True), indent=2))


@keys_app.command("list")
def keys_list(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """List access keys, configured and stored, with their scope (secrets are never shown)."""
    from clarion.access_keys.service import LEGACY_KEY_FILE

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    listed = [(key, "settings") for key in settings.all_access_keys()]
    # Listing creates no store, unless keys an older Clarion kept in a file are waiting to move into one.
    if settings.uses_postgres or settings.sqlite_path.exists() or (settings.data_dir / LEGACY_KEY_FILE).exists():
        stored = asyncio.run(_with_keys(settings, lambda keys: keys.stored()))
        listed += [(item.key, f"store, created {item.created_at}") for item in stored]
    if not listed:
        console.print(
            f"No access keys: none in the settings and none stored ({_store(settings)}); "
            "`clarion keys create` makes one, and `clarion serve` makes an admin key on its first start"
        )
        return
    for key, source in listed:
        rate = "" if key.requests_per_second is None else f"  rate={key.requests_per_second:g}/s"
        rate += "" if key.burst is None else f"  burst={key.burst}"
        typer.echo(
            f"{key.access_key_id}  projects={','.join(key.projects)}  operations={','.join(key.operations)}  "
            f"networks={','.join(key.allow_networks)}{rate}  ({source})  {key.description}"
        )


@keys_app.command("revoke")
def keys_revoke(
    access_key_id: str, config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None
) -> None:
    """Revoke a stored key; running servers refuse it within seconds."""
    from clarion.access_keys.service import KeyRefused

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    if any(key.access_key_id == access_key_id for key in settings.all_access_keys()):
        console.print(f"[red]{access_key_id} comes from the settings (file or environment); remove it there[/red]")
        raise typer.Exit(1)
    try:
        asyncio.run(_with_keys(settings, lambda keys: keys.revoke(access_key_id)))
    except KeyRefused as refused:
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(1) from None
    typer.echo(f"revoked {access_key_id}")


@app.command()
def migrate(config: ConfigOption = None, data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Create or upgrade the store's schema (the server also does this when it starts)."""
    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    applied = _migrate(settings)
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


def _migrate(settings: Settings) -> list[int]:
    from clarion.services import open_database
    from clarion.store.migrations import migrate as run_migrations

    async def run() -> list[int]:
        db = open_database(settings)
        try:
            return await db.write(run_migrations)
        finally:
            db.close()

    return asyncio.run(run())


@app.command("config")
def config_command(
    action: Annotated[
        Literal["check", "show"],
        typer.Argument(
            help="check: validate the settings (unknown keys, values, consistency, files they name) and say what a "
            "server would run. show: print the resolved settings as JSON, secrets hidden."
        ),
    ],
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Check or show the settings a server would start with (flags over environment over TOML file over defaults),
    without opening the store."""
    settings = load_settings(
        config, host=host, port=port, data_dir=data_dir, database_url=database_url, log_level=log_level
    )
    if action == "show":
        typer.echo(json.dumps(redacted(settings), indent=2))
        return
    missing = [f"{key}: no file {path}" for key, path in _named_files(settings) if not Path(path).is_file()]
    if missing:
        raise SettingsError(missing)
    typer.echo(f"Settings are valid. A server would start with store: {_store(settings)}")
    for line in _summary(settings):
        typer.echo(f"  {line}")


def _named_files(settings: Settings) -> list[tuple[str, str]]:
    """Files the settings point at, which the server would otherwise find missing only when it first sends."""
    delivery = settings.delivery
    named = [
        ("delivery.smtp.ca_file", delivery.smtp.ca_file),
        ("delivery.push.ca_file", delivery.push.ca_file or ""),
        ("delivery.sms.ca_file", delivery.sms.ca_file),
        ("delivery.voice.ca_file", delivery.voice.ca_file),
    ]
    if delivery.smtp.dkim is not None:
        named.append(("delivery.smtp.dkim.private_key_path", delivery.smtp.dkim.private_key_path))
    return [(key, path) for key, path in named if path]


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="A new folder to write the backup into.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Back up the embedded store while the server runs: a consistent copy (stored access keys included) and the
    channel-secrets key that opens its secrets.

    PostgreSQL is backed up with pg_dump (docs/operations.md).
    """
    from clarion.access_keys.service import LEGACY_KEY_FILE
    from clarion.backup import back_up
    from clarion.channels.secrets import KEY_FILE

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    if settings.uses_postgres:
        console.print(
            "[red]clarion backup copies the embedded SQLite store; this configuration uses PostgreSQL. Back it up "
            'with pg_dump (docs/operations.md, "Backup and restore").[/red]'
        )
        raise typer.Exit(2)
    # A key file an older Clarion kept is copied too while no server has moved it into the store yet.
    keys = [settings.data_dir / KEY_FILE, settings.data_dir / LEGACY_KEY_FILE]
    made = _backup_step(lambda: back_up(settings.sqlite_path, keys, target))
    files = ", ".join(f"{name} ({size:,} bytes)" for name, size in made.files.items())
    typer.echo(f"Backed up schema version {made.schema_version} to {made.folder}: {files}")
    if settings.delivery.secret_key is not None:
        typer.echo(
            "  The channel-secrets key is delivery.secret_key in your settings: keep it with this backup "
            "(it opens channel credentials and stored access keys)."
        )
    typer.echo("  The DuckDB segment replica is not copied: it is rebuilt from the store after a restore.")


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `clarion backup`.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Restore a backup into a fresh data directory (the server must not be running on it)."""
    from clarion.backup import restore as restore_backup

    settings = load_settings(config, data_dir=data_dir)
    if settings.uses_postgres:
        console.print("[red]This configuration uses PostgreSQL: restore it with pg_restore (docs/operations.md).[/red]")
        raise typer.Exit(2)
    replica = _replica_file(settings)
    made = _backup_step(lambda: restore_backup(source, settings.data_dir, replica))
    typer.echo(f"Restored schema version {made.schema_version} into {made.folder}: {', '.join(made.files)}")


def _replica_file(settings: Settings) -> Path | None:
    """The DuckDB replica file a server on these settings keeps (a stale one must not meet a restored store)."""
    path = settings.analytics.replica_path
    if path == "memory":
        return None
    return Path(path) if path else settings.data_dir / "analytics.duckdb"


def _backup_step(work: Any) -> Any:
    from clarion.backup import BackupError
    from clarion.store.backup import DamagedCopy

    try:
        return work()
    except (BackupError, DamagedCopy) as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None


@jobs_app.command("watch")
def jobs_watch(
    application_id: str,
    job_id: str,
    interval: IntervalOption = 1.0,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Follow an import or export job on a server until it ends; exit 0 if it COMPLETED, 1 if it FAILED."""
    from clarion.watching import CANNOT_WATCH, job_reader

    client = _server_client(config, endpoint_url, region, profile, refused_status=CANNOT_WATCH)
    _follow(job_reader(client, application_id, job_id), interval)


@campaigns_app.command("watch")
def campaigns_watch(
    application_id: str,
    campaign_id: str,
    interval: IntervalOption = 1.0,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Follow a campaign's latest run on a server until the campaign stops executing; exit 0 unless it failed."""
    from clarion.watching import CANNOT_WATCH, campaign_reader

    client = _server_client(config, endpoint_url, region, profile, refused_status=CANNOT_WATCH)
    _follow(campaign_reader(client, application_id, campaign_id), interval)


@journeys_app.command("watch")
def journeys_watch(
    application_id: str,
    journey_id: str,
    interval: IntervalOption = 1.0,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Follow a journey's participants per activity until it is COMPLETED or CANCELLED; exit 0 if it COMPLETED."""
    from clarion.watching import CANNOT_WATCH, journey_reader

    client = _server_client(config, endpoint_url, region, profile, refused_status=CANNOT_WATCH)
    _follow(journey_reader(client, application_id, journey_id), interval)


@journeys_app.command("create-cascade")
def journeys_create_cascade(
    application_id: str,
    segment_id: Annotated[
        str | None, typer.Option(help="Enter this segment's members instead of creating the blueprint's segment.")
    ] = None,
    activate: Annotated[bool, typer.Option(help="Create the journey ACTIVE (it starts at once), not DRAFT.")] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Create the re-engagement cascade (push → 1 day → not opened → email → 2 days → not clicked → SMS) with its
    "active users" segment and templates, from clarion/journeys/blueprints/re-engagement.json."""
    from clarion.blueprints import CASCADE, create_from_blueprint, load_blueprint
    from clarion.client import ApiError, Unreachable

    client = _server_client(config, endpoint_url, region, profile, refused_status=1)
    try:
        created = create_from_blueprint(
            client, application_id, load_blueprint(CASCADE), segment_id=segment_id, activate=activate
        )
    except (ApiError, Unreachable) as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    journey = created.journey
    typer.echo(f"Journey {journey['Id']} ({journey['Name']}) is {journey['State']}")
    typer.echo(f"  segment {created.segment_id}; templates created: {', '.join(created.templates) or 'none'}")


def _follow(reader: Reader, interval: float) -> None:
    """Watch what `reader` reads from the server; exits with the watch's status."""
    from clarion.watching import watch

    raise typer.Exit(watch(reader, interval, Console(stderr=False)))


def _server_client(
    config: Path | None, endpoint_url: str | None, region: str | None, profile: str | None, *, refused_status: int
) -> ApiClient:
    """A signed client for the server the command follows; without a key to sign with, exit with `refused_status`."""
    from clarion.client import ApiClient, find_credentials

    credentials = find_credentials(profile)
    if credentials is None:
        where = f"profile {profile!r} of the shared credentials file" if profile else "AWS_ACCESS_KEY_ID"
        console.print(
            f"No access key to sign with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (looked for {where}).",
            style="red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(refused_status)
    if endpoint_url is None or region is None:
        settings = load_settings(config)
        endpoint_url = endpoint_url or f"http://{settings.host}:{settings.port}"
        region = region or settings.region
    return ApiClient(endpoint_url, credentials, region)


@queue_app.command("buried")
def queue_buried(
    application_id: Annotated[str | None, typer.Option(help="Only this project's items.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """List work the queue gave up on and why (ClarionGetBuriedWork): all projects' with a key for every project,
    else --application-id's."""
    from rich.table import Table

    from clarion.client import ApiError, Unreachable

    client = _server_client(config, endpoint_url, region, profile, refused_status=1)
    try:
        answer = client.get(
            "clarion", "buried-work", query={"application-id": application_id} if application_id else None
        )
    except (ApiError, Unreachable) as error:
        console.print(str(error), style="red", markup=False, highlight=False)
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
def costs(
    month: Annotated[str | None, typer.Option(help="The calendar month, YYYY-MM (UTC). Default: this month.")] = None,
    application_id: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")] = False,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """What each project used in a month and what it costs (ClarionGetCosts): at Amazon Pinpoint's published prices
    and at the operator's own provider prices."""
    from rich.table import Table

    from clarion.analytics.costs import PUSH_CHANNELS as _PUSH
    from clarion.client import ApiError, Unreachable

    client = _server_client(config, endpoint_url, region, profile, refused_status=1)
    query = {"month": month, "application-id": application_id}
    try:
        answer = client.get("clarion", "costs", query={k: v for k, v in query.items() if v is not None})
    except (ApiError, Unreachable) as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(answer, indent=1))
        return
    pinpoint, provider = answer["Total"]["Pinpoint"], answer["Total"]["Provider"]
    table = Table(
        "Project", "Month", "Email", "SMS (parts)", "Push", "Other", "Audience (MTA)", "Events",
        f"Pinpoint {pinpoint['Currency']}", f"Provider {provider['Currency']}",
        title=f"Costs {answer['Month']} ({answer['Start']} to {answer['End']})",
    )  # fmt: skip
    rows = [(item["Name"] or item["ApplicationId"], item) for item in answer["Projects"]]
    for label, item in [*rows, ("All projects (Pinpoint's free tier applied)", answer["Total"])]:
        usage, messages = item["Usage"], item["Usage"]["Messages"]
        push = sum(count for channel, count in messages.items() if channel in _PUSH)
        other = sum(count for channel, count in messages.items() if channel not in {"EMAIL", "SMS", *_PUSH})
        parts = sum(sms["Parts"] for sms in usage["Sms"])
        table.add_row(
            label, answer["Month"], str(messages.get("EMAIL", 0)), f"{messages.get('SMS', 0)} ({parts})", str(push),
            str(other), str(usage["MonthlyTargetedAudience"]), str(usage["EventsCollected"]),
            _bill_total(item["Pinpoint"]), _bill_total(item["Provider"]),
        )  # fmt: skip
    out = Console(stderr=False, soft_wrap=True)
    out.print(table)
    at_provider = {line["Country"]: line for line in provider["Lines"] if line["Meter"] == "SMS"}
    sms_lines = [line for line in pinpoint["Lines"] if line["Meter"] == "SMS"]
    if sms_lines:
        by_country = Table("Country", "Parts", "Pinpoint", "Provider", title="SMS by country (all projects)")
        for line in sms_lines:
            paid = at_provider[line["Country"]].get("Amount", "unpriced")
            by_country.add_row(line["Country"], str(line["Quantity"]), line.get("Amount", "unpriced"), paid)
        out.print(by_country)


def _bill_total(bill: dict[str, Any]) -> str:
    """The total, flagged when some lines had no price."""
    return bill["Total"] if bill["Complete"] else f"{bill['Total']} + unpriced"


@analytics_app.command("export")
def analytics_export(
    folder: Annotated[Path, typer.Argument(help="Where the Parquet files go (created if missing).")],
    day: Annotated[
        str | None, typer.Option(help="One day (YYYY-MM-DD, UTC). Default: yesterday.", show_default=False)
    ] = None,
    first_day: Annotated[str | None, typer.Option("--from", help="First day of a range (YYYY-MM-DD).")] = None,
    last_day: Annotated[str | None, typer.Option("--to", help="Last day of a range (YYYY-MM-DD), inclusive.")] = None,
    application_id: Annotated[list[str] | None, typer.Option(help="Only this project (repeatable).")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write people, events, messages and outcomes as Parquet, partitioned by project and day, from the store
    (a running server may keep running); docs/analytics.md lists the tables and their columns."""
    from datetime import UTC, date, datetime, timedelta

    from rich.table import Table

    from clarion.analytics.dataset import export_dataset
    from clarion.clock import SystemClock
    from clarion.services import open_database
    from clarion.store.migrations import migrate as run_migrations

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    try:
        yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        first = date.fromisoformat(day or first_day or yesterday)
        last = date.fromisoformat(day or last_day or yesterday)
    except ValueError as error:
        console.print(f"[red]Days are written YYYY-MM-DD: {error}[/red]")
        raise typer.Exit(2) from None
    if last < first:
        console.print(f"[red]--to {last} is before --from {first}[/red]")
        raise typer.Exit(2)

    async def run() -> Any:
        db = open_database(settings)
        try:
            await db.write(run_migrations)
            return await export_dataset(
                db, folder, first, last, SystemClock(), application_id or None, settings.analytics.threads
            )
        finally:
            db.close()

    report = asyncio.run(run())
    table = Table("Table", "Rows", title=f"Exported {first} to {last} into {folder}")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}")
    Console(stderr=False, soft_wrap=True).print(table)
    typer.echo(f"{report.files:,} Parquet files, {report.bytes:,} bytes, {report.seconds:.1f} s")


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
    try:
        app()
    except SettingsError as error:
        console.print("[red]Clarion cannot use these settings:[/red]")
        for problem in error.problems:
            console.print(f"  {problem}", markup=False, highlight=False)
        raise SystemExit(2) from None
    except SchemaTooNew as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
