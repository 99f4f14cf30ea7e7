"""Clarion's own HTTP routes beside the Pinpoint API: extensions (documented in the OpenAPI document) and the
public links and webhooks that recipients and providers call. Each module exports ROUTES; the wire rules of
the Pinpoint API (SigV4, error shape) apply where a module says so.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from clarion.api.extensions import email_webhooks, sms_webhooks, tracking

ROUTES: list[BaseRoute] = [*email_webhooks.ROUTES, *tracking.ROUTES, *sms_webhooks.ROUTES]
