from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler


async def get_engagement(call: Call) -> Any:
    """Clarion extension (clarion/api/extended.py): an endpoint's or a user's engagement scores."""
    params = call.params
    return await call.services.segments_engine.engagement(
        params["ApplicationId"], params.get("EndpointId"), params.get("UserId")
    )


HANDLERS: dict[str, Handler] = {"ClarionGetEngagement": get_engagement}
