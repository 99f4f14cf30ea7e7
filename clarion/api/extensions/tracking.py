"""The links recipients follow from email: the open pixel, click redirects and one-click unsubscribe.

Public (no SigV4): the HMAC signature in each link is the authority (clarion/messages/tracking.py). A link that
does not verify answers 404 and records nothing; a click only ever redirects to the URL that was signed.
Unsubscribe follows RFC 8058: mail clients POST `List-Unsubscribe=One-Click`; a GET (a person clicking the link,
or a scanner prefetching it) gets a confirmation page whose button POSTs, so prefetching never unsubscribes. Both
pages carry the project's brand and speak the recipient's language (clarion/projects/unsubscribe_page.py). The
pages refuse to be framed, so no other site can overlay them and trick a click.

The routes exist only while tracking is configured; otherwise their paths answer 404. A replayed pixel or link
records nothing new: an open counts once per message, a click once per message and link (clarion/channels/outcomes.py).
"""

from __future__ import annotations

import base64
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from clarion.channels.delivery import ProviderReport
from clarion.config import Settings
from clarion.messages.tracking import CLICK, OPEN, PATH_PREFIX, UNSUBSCRIBE, Link, Tracker
from clarion.projects import unsubscribe_page
from clarion.services import Services

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1 transparent GIF
NO_STORE = {"Cache-Control": "no-store, private"}
NOT_FRAMED = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def _verified(request: Request, kind: str) -> tuple[Services, Link] | None:
    services: Services = request.app.state.services
    link = services.tracker.verify(kind, request.path_params["token"])
    return (services, link) if link else None


def _not_found() -> Response:
    return Response("Not found", status_code=404, media_type="text/plain")


def _page(title: str, body: str, language: str) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{escape(title)}</title></head>'
        f'<body style="font-family:sans-serif;max-width:32em;margin:4em auto"><h1>{escape(title)}</h1>{body}</body>'
        "</html>"
    )
    return HTMLResponse(html, headers={**NO_STORE, **NOT_FRAMED, "Content-Language": language})


def _client(request: Request) -> dict[str, str]:
    attributes = {"user_agent": request.headers.get("user-agent", "")}
    if request.client:
        attributes["ip_address"] = request.client.host
    return attributes


async def opened(request: Request) -> Response:
    found = _verified(request, OPEN)
    if found is None:
        return _not_found()
    services, link = found
    await services.record_outcomes(
        [ProviderReport("_email.open", "EMAIL", message_id=link.message_id, attributes=_client(request))]
    )
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def clicked(request: Request) -> Response:
    found = _verified(request, CLICK)
    if found is None:
        return _not_found()
    services, link = found
    url = link.url or ""  # verify() only passes http(s) click targets
    attributes = {**_client(request), "url": url}
    click = ProviderReport("_email.click", "EMAIL", message_id=link.message_id, attributes=attributes, distinct_by=url)
    await services.record_outcomes([click])
    return RedirectResponse(link.url or "", status_code=302, headers=NO_STORE)


async def unsubscribe(request: Request) -> Response:
    found = _verified(request, UNSUBSCRIBE)
    if found is None:
        return _not_found()
    services, link = found
    style = await unsubscribe_page.style_of_message(services.db, link.message_id)
    language = unsubscribe_page.choose_language(style, request.headers.get("accept-language", ""))
    if request.method == "GET":
        return _page(*unsubscribe_page.page(style, language, done=False, action=str(request.url)), language)
    event = ProviderReport(
        "_email.unsubscribe", "EMAIL", message_id=link.message_id, attributes=_client(request), opt_out=True
    )
    await services.record_outcomes([event])
    return _page(*unsubscribe_page.page(style, language, done=True), language)


def routes(settings: Settings) -> list[BaseRoute]:
    if not Tracker(settings.delivery.tracking).enabled:
        return []
    return [
        Route(f"{PATH_PREFIX}/{OPEN}/{{token}}", opened, methods=["GET"]),
        Route(f"{PATH_PREFIX}/{CLICK}/{{token}}", clicked, methods=["GET"]),
        Route(f"{PATH_PREFIX}/{UNSUBSCRIBE}/{{token}}", unsubscribe, methods=["GET", "POST"]),
    ]
