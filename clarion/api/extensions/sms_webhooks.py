"""The routes SMS providers call after a send: Twilio's status callbacks and inbound messages, and the generic
HTTP adapter's signed JSON webhook (clarion/channels/sms/generic_webhooks.py describes its format).

Public (no SigV4): the provider's signature is the authority. Each route exists only while the secret that verifies
it is configured (Twilio's auth token, the generic webhook secret); otherwise its path answers 404 unread. Bodies
are read up to a bound. A call that does not verify answers 403 and records nothing; a malformed one, 400; a
verified one answers 2xx once its reports are recorded, so the provider retries only what was not taken.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from clarion.api.bodies import with_bounded_body
from clarion.channels.sms import generic_webhooks, twilio_webhooks
from clarion.config import Settings
from clarion.services import Services

TWILIO_MAX_BODY_BYTES = 64 * 1024  # a form of a few dozen short fields; a 1,600-character SMS body included
GENERIC_MAX_BODY_BYTES = 1024 * 1024


def _verified_twilio_form(request: Request, body: bytes) -> tuple[Services, dict[str, str]] | Response:
    services: Services = request.app.state.services
    sms = services.settings.delivery.sms
    params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if sms.webhook_base_url:
        # Behind a proxy Clarion sees another URL than the one Twilio called and signed.
        query = request.url.query
        url = f"{sms.webhook_base_url.rstrip('/')}{request.url.path}" + (f"?{query}" if query else "")
    else:
        url = str(request.url)
    signature = request.headers.get(twilio_webhooks.SIGNATURE_HEADER, "")
    if not twilio_webhooks.verify_twilio_signature(sms.twilio.auth_token, url, params, signature):
        return PlainTextResponse(f"{twilio_webhooks.SIGNATURE_HEADER} does not verify for {url}", status_code=403)
    return services, dict(params)


async def twilio_status(request: Request, body: bytes) -> Response:
    verified = _verified_twilio_form(request, body)
    if isinstance(verified, Response):
        return verified
    services, params = verified
    found = twilio_webhooks.status_report(params, request.query_params.get("message_id"))
    if found is not None:
        await services.record_outcomes([found])
    return Response(status_code=204)


async def twilio_inbound(request: Request, body: bytes) -> Response:
    verified = _verified_twilio_form(request, body)
    if isinstance(verified, Response):
        return verified
    services, params = verified
    found, twiml = twilio_webhooks.inbound(params, services.settings.delivery.sms.help_reply)
    if found is not None:
        await services.record_outcomes([found])
    return Response(twiml, media_type="text/xml")


async def generic(request: Request, body: bytes) -> Response:
    services: Services = request.app.state.services
    try:
        signed_at = generic_webhooks.verify_signature(
            services.settings.delivery.sms.http.webhook_secret,
            request.headers.get(generic_webhooks.SIGNATURE_HEADER, ""),
            body,
            services.clock.now(),
        )
    except generic_webhooks.WebhookRefused as error:
        return PlainTextResponse(str(error), status_code=403)
    try:
        reports = generic_webhooks.reports_from(msgspec.json.decode(body), signed_at)
    except (ValueError, msgspec.DecodeError) as error:
        return PlainTextResponse(f"Malformed webhook body: {error}", status_code=400)
    await services.record_outcomes(reports)
    return Response(status_code=204)


def routes(settings: Settings) -> list[BaseRoute]:
    sms = settings.delivery.sms
    enabled: list[BaseRoute] = []
    if sms.twilio.auth_token:
        twilio = ((twilio_webhooks.STATUS_PATH, twilio_status), (twilio_webhooks.INBOUND_PATH, twilio_inbound))
        for path, handler in twilio:
            enabled.append(Route(path, with_bounded_body(TWILIO_MAX_BODY_BYTES, handler), methods=["POST"]))
    if sms.http.webhook_secret:
        enabled.append(
            Route(generic_webhooks.PATH, with_bounded_body(GENERIC_MAX_BODY_BYTES, generic), methods=["POST"])
        )
    return enabled
