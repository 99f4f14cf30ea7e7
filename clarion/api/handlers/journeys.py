from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.journeys import service


async def create_journey(call: Call) -> Any:
    settings = call.services.settings.journeys
    return await service.create_journey(call.services.db, call.ctx, settings, call.params["ApplicationId"], call.body)


async def get_journey(call: Call) -> Any:
    p = call.params
    return await service.get_journey(call.services.db, p["ApplicationId"], p["JourneyId"])


async def list_journeys(call: Call) -> Any:
    p = call.params
    return await service.list_journeys(call.services.db, p["ApplicationId"], p.get("PageSize"), p.get("Token"))


async def update_journey(call: Call) -> Any:
    p = call.params
    settings = call.services.settings.journeys
    return await service.update_journey(
        call.services.db, call.ctx, settings, p["ApplicationId"], p["JourneyId"], call.body
    )


async def update_journey_state(call: Call) -> Any:
    p = call.params
    return await service.update_journey_state(call.services.db, call.ctx, p["ApplicationId"], p["JourneyId"], call.body)


async def delete_journey(call: Call) -> Any:
    p = call.params
    return await service.delete_journey(call.services.db, p["ApplicationId"], p["JourneyId"])


async def get_journey_runs(call: Call) -> Any:
    p = call.params
    return await service.list_runs(
        call.services.db, p["ApplicationId"], p["JourneyId"], p.get("PageSize"), p.get("Token")
    )


async def get_journey_execution_metrics(call: Call) -> Any:
    p = call.params
    return await service.execution_metrics(call.services.db, call.ctx, p["ApplicationId"], p["JourneyId"])


async def get_journey_run_execution_metrics(call: Call) -> Any:
    p = call.params
    return await service.execution_metrics(call.services.db, call.ctx, p["ApplicationId"], p["JourneyId"], p["RunId"])


async def get_journey_execution_activity_metrics(call: Call) -> Any:
    p = call.params
    return await service.activity_metrics(
        call.services.db, call.ctx, p["ApplicationId"], p["JourneyId"], p["JourneyActivityId"]
    )


async def get_journey_run_execution_activity_metrics(call: Call) -> Any:
    p = call.params
    return await service.activity_metrics(
        call.services.db, call.ctx, p["ApplicationId"], p["JourneyId"], p["JourneyActivityId"], p["RunId"]
    )


HANDLERS: dict[str, Handler] = {
    "CreateJourney": create_journey,
    "GetJourney": get_journey,
    "ListJourneys": list_journeys,
    "UpdateJourney": update_journey,
    "UpdateJourneyState": update_journey_state,
    "DeleteJourney": delete_journey,
    "GetJourneyRuns": get_journey_runs,
    "GetJourneyExecutionMetrics": get_journey_execution_metrics,
    "GetJourneyRunExecutionMetrics": get_journey_run_execution_metrics,
    "GetJourneyExecutionActivityMetrics": get_journey_execution_activity_metrics,
    "GetJourneyRunExecutionActivityMetrics": get_journey_run_execution_activity_metrics,
}
