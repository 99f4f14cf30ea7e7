from __future__ import annotations

from typing import Any

from clarion.analytics import kpis
from clarion.api.call import Call, Handler


def _request(call: Call) -> kpis.KpiRequest:
    params = call.params
    return kpis.KpiRequest(
        params["ApplicationId"],
        params["KpiName"],
        params.get("StartTime"),
        params.get("EndTime"),
        params.get("NextToken"),
        params.get("PageSize"),
    )


def _kept(call: Call) -> int:
    """How far back a range may start: as long as events are kept."""
    return call.services.settings.retention.events_days


async def get_application_date_range_kpi(call: Call) -> Any:
    services = call.services
    return await kpis.date_range_kpi(services.db, services.kpis, "app", _request(call), call.ctx.now, None, _kept(call))


async def get_campaign_date_range_kpi(call: Call) -> Any:
    services = call.services
    campaign_id = call.params["CampaignId"]
    return await kpis.date_range_kpi(
        services.db, services.kpis, "campaign", _request(call), call.ctx.now, campaign_id, _kept(call)
    )


async def get_journey_date_range_kpi(call: Call) -> Any:
    services = call.services
    journey_id = call.params["JourneyId"]
    return await kpis.date_range_kpi(
        services.db, services.kpis, "journey", _request(call), call.ctx.now, journey_id, _kept(call)
    )


HANDLERS: dict[str, Handler] = {
    "GetApplicationDateRangeKpi": get_application_date_range_kpi,
    "GetCampaignDateRangeKpi": get_campaign_date_range_kpi,
    "GetJourneyDateRangeKpi": get_journey_date_range_kpi,
}
