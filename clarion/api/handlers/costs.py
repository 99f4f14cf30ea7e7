from __future__ import annotations

from typing import Any

from clarion.analytics.costs import costs
from clarion.api.call import Call, Handler


async def get_costs(call: Call) -> Any:
    """Clarion extension (clarion/api/extended.py): a month's usage and what it costs, per project."""
    services = call.services
    return await costs(
        services.db, services.settings.costs, call.ctx.now, call.params.get("Month"), call.params.get("ApplicationId")
    )


HANDLERS: dict[str, Handler] = {"ClarionGetCosts": get_costs}
