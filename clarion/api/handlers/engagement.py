from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.paging import page_size
from clarion.segments import audience


async def get_engagement(call: Call) -> Any:
    """Clarion extension (clarion/api/extended.py): an endpoint's or a user's engagement scores."""
    params = call.params
    return await call.services.segments_engine.engagement(
        params["ApplicationId"], params.get("EndpointId"), params.get("UserId")
    )


async def list_endpoints(call: Call) -> Any:
    """Clarion extension: the project's endpoints, all or those a search finds."""
    p = call.params
    return await audience.find_endpoints(
        call.services.db, p["ApplicationId"], p.get("Search"), page_size(p.get("PageSize")), p.get("Token")
    )


async def list_users(call: Call) -> Any:
    """Clarion extension: the project's users, all or those whose id starts with the search."""
    p = call.params
    return await audience.list_users(
        call.services.db, p["ApplicationId"], p.get("Search"), page_size(p.get("PageSize")), p.get("Token")
    )


async def get_timeline(call: Call) -> Any:
    """Clarion extension: a person's events and messages, newest first."""
    p = call.params
    return await audience.timeline(
        call.services.db,
        p["ApplicationId"],
        p.get("EndpointId"),
        p.get("UserId"),
        page_size(p.get("PageSize")),
        p.get("Token"),
        audience.TimelineFilter(p.get("Kind"), p.get("EventType"), p.get("StartTime"), p.get("EndTime")),
    )


HANDLERS: dict[str, Handler] = {
    "ClarionGetEngagement": get_engagement,
    "ClarionListEndpoints": list_endpoints,
    "ClarionGetTimeline": get_timeline,
    "ClarionListProjectUsers": list_users,
}
