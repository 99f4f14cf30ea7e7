"""Shared fixtures: a real Clarion server on a real socket, on SQLite and on PostgreSQL, and boto3 clients for it.

Every test that takes `server` (or `client`) runs twice, once per store. PostgreSQL tests use a throw-away
database on the local service (CLARION_TEST_POSTGRES_URL); they skip, saying why, only where it is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import urllib3
import uvicorn
from botocore.config import Config
from hypothesis import settings as hypothesis_settings

from clarion.app import create_app, server_options
from clarion.config import AccessKey, Settings
from clarion.services import Services, open_database
from clarion.store.apps import PROJECT_TABLES
from clarion.store.migrations import migrate

T = TypeVar("T")
pytest_plugins = ["console_browser"]  # the console's browser fixtures: browser, console, korean_console

# Property tests are not timed: timings belong in bench/, and here other tests share the two cores, so Hypothesis's
# 200 ms per-example deadline failed examples that a pause elsewhere had slowed.
hypothesis_settings.register_profile("clarion", deadline=None)
hypothesis_settings.load_profile("clarion")

POSTGRES_URL = os.environ.get("CLARION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN = AccessKey(access_key_id="AKIDCLARIONADMIN0001", secret_access_key="admin-secret/with+odd=chars")
REGION = "eu-west-1"


class OffsetClock:
    """Real time plus an offset the test can move (signatures need a clock near the client's)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@contextmanager
def analysed_database(settings: Settings, load: Callable[[Any], None]) -> Iterator[Any]:
    """A store on `settings`, migrated, filled by `load` (given the write's transaction) and ANALYZEd, so that the
    planners weigh indexes with real statistics; closed after."""
    database = open_database(settings)

    def fill(tx: Any) -> None:
        migrate(tx)
        load(tx)
        tx.execute("ANALYZE")

    asyncio.run(database.write(fill))
    try:
        yield database
    finally:
        database.close()


_EPHEMERAL_FLOOR = 32768  # Linux's default ip_local_port_range starts here
_BLOCK = 250
_next_port = itertools.count()


def free_port() -> int:
    """A port below the ephemeral range, from a block of this xdist worker's own.

    A port the kernel hands out (bind to 0) is free only until the next outgoing connection of any test process
    takes it as its source port; ports below the ephemeral range are never taken that way, and each worker
    drawing from its own block keeps two workers from picking the same one.
    """
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    base = _EPHEMERAL_FLOOR - _BLOCK * (worker + 1)
    for _ in range(_BLOCK):
        port = base + next(_next_port) % _BLOCK
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}..{base + _BLOCK - 1}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the local PostgreSQL, dropped at the end of the session."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({error}); start it or set CLARION_TEST_POSTGRES_URL"
        )
    name = f"clarion_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {name}")
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def reset_postgres(url: str) -> None:
    """An empty schema: nothing migrated (tests of migrations themselves, and of several processes sharing it)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


# What a freshly migrated schema holds, per database: its shape, the rows the migrations wrote, its sequences.
_MIGRATED: dict[str, tuple[str, dict[str, list[tuple[Any, ...]]], dict[str, tuple[int, bool]]]] = {}
_SHAPE_SQL = """
    SELECT md5(coalesce(string_agg(c.relname || ':' || c.relkind::text || ':' || coalesce(a.attname, '') || ':'
                                   || coalesce(a.atttypid::text, ''), ',' ORDER BY c.relname, a.attnum), ''))
    FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'public'::regnamespace"""


def migrated_postgres(url: str) -> None:
    """A schema as `migrate` leaves an empty store, without migrating again for every test.

    Migrating takes about 0.4 s on PostgreSQL and most tests start a server on it. The first call migrates an empty
    schema and remembers what that left; later calls find the same tables and only put their rows and sequences
    back. A schema of another shape (a test reset or changed it) is rebuilt from empty.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        shape = conn.execute(_SHAPE_SQL).fetchone()[0]
        known = _MIGRATED.get(url)
        if known is not None and known[0] == shape:
            _, rows, sequences = known
            with conn.transaction():
                for table, seed in rows.items():
                    conn.execute(f'DELETE FROM "{table}"')
                    if seed:
                        marks = ", ".join(["%s"] * len(seed[0]))
                        conn.cursor().executemany(f'INSERT INTO "{table}" VALUES ({marks})', seed)
                for sequence, (value, called) in sequences.items():
                    conn.execute("SELECT setval(%s::regclass, %s, %s)", (f'"{sequence}"', value, called))
            return
    reset_postgres(url)

    async def apply() -> None:
        db = open_database(Settings(database_url=url))
        try:
            await db.write(migrate)
        finally:
            db.close()

    asyncio.run(apply())
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        ).fetchall()
        rows = {name: conn.execute(f'SELECT * FROM "{name}"').fetchall() for (name,) in tables}
        sequences = {
            name: tuple(conn.execute(f'SELECT last_value, is_called FROM "{name}"').fetchone())
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'"
            ).fetchall()
        }
        _MIGRATED[url] = (conn.execute(_SHAPE_SQL).fetchone()[0], rows, sequences)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CLARION_* variables from outside; CLARION_CONFIG (which load_settings sets) is restored afterwards."""
    for name in list(os.environ):
        if name.startswith("CLARION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLARION_CONFIG", "")
    return monkeypatch


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "port": free_port(),
        "access_keys": [ADMIN],
        "access_log": False,
    }
    if store == "postgres":
        url = request.getfixturevalue("postgres_url")
        # A test that starts a server (the `server` fixture, its own from `migrated_settings`, or any test of a module
        # marked `migrated_store`) gets the schema that server would migrate to; others start from empty.
        starts = {"server", "migrated_settings"} & set(request.fixturenames)
        if starts or request.node.get_closest_marker("migrated_store"):
            migrated_postgres(url)
        else:
            reset_postgres(url)
        values["database_url"] = url
    return Settings(**values)


@pytest.fixture
def migrated_settings(settings: Settings) -> Settings:
    """`settings`, for a fixture that starts its own server from them: asking for this name rather than `settings`
    has PostgreSQL's schema migrated already, by the cheap path of `migrated_postgres`, as for `server`. From an
    empty schema every such server start migrates again: about a second on a loaded machine, in hundreds of tests."""
    return settings


class _PromptServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is told: uvicorn notices `should_exit` at its next 0.1 s tick and
    then pauses 0.1 s for connections to close; over a thousand server starts that is minutes of the suite."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._told: asyncio.Event | None = None

    def tell(self) -> None:
        """Wake the main loop (called on the server's loop once `should_exit` is set)."""
        if self._told is not None:
            self._told.set()

    async def main_loop(self) -> None:
        self._told = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # the date header once a second, should_exit, request limits
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._told.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their response
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class RunningServer:
    """A Clarion server on a background thread, serving a real socket."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.clock = OffsetClock()
        self.app = create_app(settings, clock=self.clock)
        self.url = f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
        # The options `clarion serve` uses (proxy headers believed only from trusted proxies), on this host.
        options = {**server_options(settings), "host": host}
        self._server = _PromptServer(uvicorn.Config(self.app, lifespan="on", **options))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("Clarion test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        loop = getattr(self.app.state, "loop", None)
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just finished
                loop.call_soon_threadsafe(self._server.tell)
        self._thread.join(timeout=20)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def services(self) -> Services:
        return self.app.state.services

    def run(self, work: Callable[[Services], Awaitable[T]]) -> T:
        """Run a coroutine on the server's own event loop (the store belongs to it) and wait for it."""
        loop = self.app.state.loop
        return asyncio.run_coroutine_threadsafe(work(self.services), loop).result(timeout=30)

    def project_row_counts(self, app_id: str) -> dict[str, int]:
        """Rows each project-scoped table holds for a project (DeleteApp must leave none)."""

        def work(tx: Any) -> dict[str, int]:
            sql = "SELECT count(*) FROM {} WHERE app_id = ?"
            return {table: int(tx.scalar(sql.format(table), (app_id,))) for table in PROJECT_TABLES}

        return self.run(lambda services: services.db.read(work))

    def signed_request(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A raw request signed by botocore's SigV4 signer, as an SDK would sign a call boto3 cannot make
        (Clarion's extension operations and members)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        data = json.dumps(body).encode()
        request = AWSRequest(
            method=method, url=self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(Credentials(ADMIN.access_key_id, ADMIN.secret_access_key), "mobiletargeting", REGION).add_auth(
            request
        )
        prepared = request.prepare()
        response = urllib3.request(method, prepared.url, body=data, headers=dict(prepared.headers))
        return response.status, json.loads(response.data or b"{}")

    def client(self, key: AccessKey = ADMIN, region: str = REGION, **config: Any) -> Any:
        """A boto3 client signing with `key`; one retry unless `retries` says otherwise."""
        return boto3.client(
            "pinpoint",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            config=Config(**{"retries": {"max_attempts": 1, "mode": "standard"}, **config}),
        )


@contextmanager
def running(settings: Settings) -> Iterator[RunningServer]:
    server = RunningServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    with running(settings) as started:
        yield started


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start `clarion serve` processes in tmp_path: `serve(*args, env=...)` returns a ServerProcess."""
    from processes import serve_processes

    yield from serve_processes(tmp_path)


@pytest.fixture
def client(server: RunningServer) -> Any:
    return server.client()


@pytest.fixture
def app_id(client: Any) -> str:
    return client.create_app(CreateApplicationRequest={"Name": "test project"})["ApplicationResponse"]["Id"]


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """moto's S3 server on a local port: a real S3-compatible HTTP service (import/export to s3:// URLs)."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (the test extra) provides the local S3 store")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def driven_settings(settings: Settings, smtp_port: int, **update: Any) -> Settings:
    """Settings for a server whose tests drive its engines themselves: no queue workers and no campaign scheduler
    in the background, a clock the tests move by days (signatures are made with the real one), email to the SMTP
    sink at `smtp_port`, and webhooks (campaign hooks, custom channels) reached on 127.0.0.1, the only way tenant
    URLs reach it. `update` adds or replaces settings."""
    from clarion.campaigns.config import CampaignSettings
    from clarion.channels.config import DeliverySettings, SmtpSettings
    from clarion.outbound.config import OutboundSettings
    from clarion.queue.config import QueueSettings

    driven = {
        "queue": QueueSettings(workers=0),
        "max_clock_skew_seconds": 40 * 86_400,
        "campaigns": CampaignSettings(scheduler=False),
        "delivery": DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, security="none")),
        "outbound": OutboundSettings(allow_networks=["127.0.0.0/8"]),
    }
    return settings.model_copy(update={**driven, **update})


@pytest.fixture
def pinpoint(engine_server: RunningServer) -> Any:
    """boto3's Pinpoint client on the `engine_server` of a module that drives its engines (driven_settings)."""
    return engine_server.client()


@pytest.fixture
def relay() -> Iterator[tuple[Any, int]]:
    """A real SMTP server (aiosmtpd) on a free port, recording what it receives (tests/smtp_relay.py)."""
    from smtp_relay import Relay, start_relay

    handler = Relay()
    controller, port = start_relay(handler)
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def sink(relay: tuple[Any, int]) -> Any:
    """The `relay`'s recording side: what the SMTP sink received (tests/smtp_relay.py)."""
    return relay[0]
