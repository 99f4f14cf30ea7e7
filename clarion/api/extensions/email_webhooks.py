"""The route email providers post delivery outcomes to: SendGrid's signed Event Webhook.

Public (no SigV4): the provider's ECDSA signature is the authority. The route exists only while a verification key
is configured (otherwise the path answers 404 unread), and reads at most MAX_BODY_BYTES. A post that does not
verify answers 403, one that verifies but is not an event array 400, and neither records anything. A verified post
answers 200 once its reports are recorded, so SendGrid retries (it does for up to 72 hours) only what was not taken.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from clarion.api.bodies import with_bounded_body
from clarion.channels.email import sendgrid_events
from clarion.config import Settings
from clarion.services import Services

SENDGRID_PATH = "/webhooks/email/sendgrid"
MAX_BODY_BYTES = 4 * 1024 * 1024  # SendGrid batches events; its posts stay well under this


async def sendgrid(request: Request, body: bytes) -> Response:
    services: Services = request.app.state.services
    settings = services.settings.delivery.email_api
    try:
        sendgrid_events.verify(
            settings.webhook_public_key, request.headers, body, services.clock.now(), settings.webhook_max_age_seconds
        )
    except sendgrid_events.WebhookRefused as error:
        return PlainTextResponse(str(error), status_code=403)
    try:
        reports = sendgrid_events.parse(body)
    except sendgrid_events.MalformedEvents as error:
        return PlainTextResponse(str(error), status_code=400)
    await services.record_outcomes(reports)
    return PlainTextResponse("OK")


def routes(settings: Settings) -> list[BaseRoute]:
    if not settings.delivery.email_api.webhook_public_key:
        return []
    return [Route(SENDGRID_PATH, with_bounded_body(MAX_BODY_BYTES, sendgrid), methods=["POST"])]
