"""Wire one Clarion process together: services, the Pinpoint API, health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from clarion import __version__
from clarion.api import extensions
from clarion.api.auth import Authenticator
from clarion.api.openapi import openapi_document
from clarion.api.pinpoint import PinpointAPI
from clarion.clock import Clock
from clarion.config import Settings
from clarion.services import Services, open_services


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


RESOLVED_SETTINGS_ENV = "CLARION_RESOLVED_SETTINGS"


def create_app_from_environment() -> Starlette:
    """Factory for `clarion serve --workers N`: each worker process rebuilds the settings the parent resolved."""
    return create_app(Settings.model_validate_json(os.environ[RESOLVED_SETTINGS_ENV]))


def create_app(settings: Settings, clock: Clock | None = None) -> Starlette:
    pinpoint = _Deferred()
    state: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.templates.apply()
        services = await open_services(settings, clock)
        state["services"] = services
        app.state.services = services  # for embedding code and tests, which run work on this loop
        app.state.loop = asyncio.get_running_loop()
        authenticator = Authenticator(
            settings.all_access_keys(),
            default_region=settings.region,
            max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
            accept_any_credentials=settings.insecure_any_credentials,
        )
        pinpoint.app = PinpointAPI(services, authenticator)
        # Everything built so far lives as long as the process: keep it out of every later full collection.
        gc.collect()
        gc.freeze()
        tasks = [asyncio.create_task(loop()) for loop in services.background]
        try:
            yield
        finally:
            pinpoint.app = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.aclose()
            services.close()

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
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document(__version__))

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            *extensions.ROUTES,
            Mount("", app=pinpoint),
        ],
        lifespan=lifespan,
    )
