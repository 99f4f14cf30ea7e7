"""One module per domain, each mapping Pinpoint operation names to a handler.

A handler reads the decoded path/query members and body from the `Call`, calls one domain function and returns
the response payload. Operations that no module maps are routed but answer MethodNotAllowedException.
"""

from __future__ import annotations

from clarion.api.call import Handler
from clarion.api.handlers import (
    campaigns,
    channels,
    console,
    costs,
    endpoints,
    engagement,
    events,
    jobs,
    journeys,
    kpis,
    messages,
    otp,
    phone_numbers,
    projects,
    queue,
    recommenders,
    segments,
    streams,
    tags,
    templates,
)

HANDLERS: dict[str, Handler] = {
    **projects.HANDLERS,
    **endpoints.HANDLERS,
    **events.HANDLERS,
    **tags.HANDLERS,
    **segments.HANDLERS,
    **jobs.HANDLERS,
    **campaigns.HANDLERS,
    **journeys.HANDLERS,
    **templates.HANDLERS,
    **phone_numbers.HANDLERS,
    **channels.HANDLERS,
    **messages.HANDLERS,
    **otp.HANDLERS,
    **queue.HANDLERS,
    **recommenders.HANDLERS,
    **streams.HANDLERS,
    **costs.HANDLERS,
    **kpis.HANDLERS,
    **engagement.HANDLERS,
    **console.HANDLERS,
}
