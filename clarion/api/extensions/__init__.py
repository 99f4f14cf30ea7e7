"""Clarion's own HTTP routes beside the Pinpoint API: the public links and webhooks that recipients and providers
call. Each module's `routes(settings)` returns only the routes whose feature is configured; every other path under
their prefixes answers 404 without reading the request, so an unconfigured webhook costs nothing to call.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from clarion.api.extensions import email_webhooks, sms_webhooks, tracking
from clarion.api.pinpoint import not_found
from clarion.config import Settings
from clarion.messages.tracking import PATH_PREFIX

PUBLIC_PREFIXES = ("/webhooks", PATH_PREFIX)


def routes(settings: Settings) -> list[BaseRoute]:
    enabled = [*email_webhooks.routes(settings), *tracking.routes(settings), *sms_webhooks.routes(settings)]
    return [*enabled, *(Mount(prefix, app=not_found) for prefix in PUBLIC_PREFIXES)]
