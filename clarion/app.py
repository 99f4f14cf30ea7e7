"""Wire one Clarion process together: services, the Pinpoint API, health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from clarion import __version__
from clarion.api import extensions
from clarion.api.auth import Authenticator
from clarion.api.console_site import PREFIX, ConsoleSite, redirect_to_console
from clarion.api.extended import ROUTED_OPERATIONS
from clarion.api.openapi import openapi_document
from clarion.api.pinpoint import PinpointAPI, error_response
from clarion.clock import Clock
from clarion.config import Settings
from clarion.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, PinpointError
from clarion.logs import get_logger
from clarion.private_files import write_private_file
from clarion.services import Services, open_services

log = get_logger("clarion.app")


class _Deferred:
    """The Pinpoint app exists only once the lifespan has opened the store; until then requests wait for it."""

    def __init__(self) -> None:
        self.app: PinpointAPI | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.app is None:
            response = JSONResponse({"Message": "Clarion is starting"}, status_code=503)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Server(Starlette):
    """Starlette, with the Pinpoint API's own paths handed straight to it.

    Everything under /v1/ is the Pinpoint API's (no other route lives there), and the API answers every failure
    itself, so the framework's error middleware, its route walk and its Mount have nothing to add there (about 5 %
    of a SendMessages call's server samples in a py-spy profile). Everything else (health, metrics, the console,
    webhooks, lifespan) goes through Starlette.
    """

    pinpoint: _Deferred

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        # A decoded newline is no Pinpoint path: Starlette's route walk answers it NotFound, as the Mount always did.
        if path.startswith(PINPOINT_PATHS) and "\n" not in path:
            scope["app"] = self
            await self.pinpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


PINPOINT_PATHS = "/v1/"

# Names the file holding the settings `clarion serve --workers N` resolved: a path, never the settings themselves,
# so no secret reaches a child process's environment (where /proc/PID/environ and crash reports can read it).
WORKER_SETTINGS_ENV = "CLARION_WORKER_SETTINGS_FILE"


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves Clarion, in one process or several.

    Proxy headers are believed only from `trusted_proxies` (none by default): uvicorn's own default trusts
    X-Forwarded-For from loopback, which would let any local caller, or any client behind a local proxy that
    passes the header on, claim an address a key's `allow_networks` accepts.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "log_level": "warning",
        "access_log": False,
    }


def write_worker_settings(settings: Settings) -> Path:
    """The resolved settings, secrets included, in a 0600 file in the data folder for the worker processes."""
    document = msgspec.json.encode(settings.model_dump(), enc_hook=_plain)
    return write_private_file(settings.data_dir / f".worker-settings-{os.getpid()}.json", document)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path | IPv4Network | IPv6Network):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a setting value")


def create_app_from_worker_settings() -> Starlette:
    """Factory for `clarion serve --workers N`: each worker process reads the settings the parent resolved (the
    parent migrated the store before starting them)."""
    settings = Settings.model_validate_json(Path(os.environ[WORKER_SETTINGS_ENV]).read_bytes())
    return create_app(settings, migrated=True)


def create_app(settings: Settings, clock: Clock | None = None, *, migrated: bool = False) -> Starlette:
    """The server; it migrates the store as it starts unless the caller has (`clarion serve` does, before it
    listens)."""
    pinpoint = _Deferred()
    state: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.templates.apply()
        services = await open_services(settings, clock, migrate=not migrated)
        state["services"] = services
        app.state.services = services  # for embedding code and tests, which run work on this loop
        app.state.loop = asyncio.get_running_loop()
        # Keys from the settings, and those `clarion keys create` stores, followed while the server runs.
        keys = services.key_ring
        await keys.refresh()
        app.state.access_keys = keys  # embedding code and tests refresh it at once instead of waiting a second
        authenticator = Authenticator(
            keys,
            default_region=settings.region,
            max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
            rate_limit=settings.rate_limit,
            accept_any_credentials=settings.insecure_any_credentials,
            console=services.console,
            operation_names=ROUTED_OPERATIONS,
        )
        pinpoint.app = PinpointAPI(services, authenticator)
        # Everything built so far lives as long as the process: keep it out of every later full collection.
        gc.collect()
        gc.freeze()
        tasks = [asyncio.create_task(loop()) for loop in services.background]
        try:
            yield
        finally:
            log.info("shutdown_started", background_tasks=len(tasks))
            pinpoint.app = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.aclose()
            services.close()
            log.info("shutdown_complete")

    async def health(_: Request) -> Response:
        services = state.get("services")
        if services is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        await services.db.read(lambda tx: tx.scalar("SELECT 1"))
        return JSONResponse({"status": "ok", "store": services.db.dialect.name, "version": __version__})

    async def metrics(_: Request) -> Response:
        services = state.get("services")
        if services is None:
            return Response(status_code=503)
        await services.queue.measure()
        return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document(__version__))

    server = _Server(
        routes=[
            Route("/health", health),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Route("/", redirect_to_console),
            Route(PREFIX, redirect_to_console),
            Mount(PREFIX, app=ConsoleSite()),
            *extensions.routes(settings),
            Mount("", app=pinpoint),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    server.pinpoint = pinpoint
    return server


_ERRORS_BY_STATUS: dict[int, type[PinpointError]] = {
    error.status: error for error in (BadRequest, Forbidden, NotFound, MethodNotAllowed, PayloadTooLarge)
}


async def _http_error(request: Request, error: Exception) -> Response:
    """What the framework refuses (a path no route matches, such as one holding a newline; a method a route does
    not take) answers in Pinpoint's JSON error shape like everything else."""
    assert isinstance(error, HTTPException)
    kind = _ERRORS_BY_STATUS.get(error.status_code, BadRequest)
    return error_response(kind(f"{request.method} {request.url.path[:200]!r}: {error.detail}"))
