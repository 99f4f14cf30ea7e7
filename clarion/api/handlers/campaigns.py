from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.campaigns import service


async def create_campaign(call: Call) -> Any:
    return await service.create_campaign(call.services.db, call.ctx, call.params["ApplicationId"], call.body)


async def get_campaign(call: Call) -> Any:
    p = call.params
    return await service.get_campaign(call.services.db, call.ctx, p["ApplicationId"], p["CampaignId"])


async def get_campaigns(call: Call) -> Any:
    p = call.params
    return await service.list_campaigns(
        call.services.db, call.ctx, p["ApplicationId"], p.get("PageSize"), p.get("Token")
    )


async def update_campaign(call: Call) -> Any:
    p = call.params
    return await service.update_campaign(call.services.db, call.ctx, p["ApplicationId"], p["CampaignId"], call.body)


async def delete_campaign(call: Call) -> Any:
    p = call.params
    return await service.delete_campaign(call.services.db, call.ctx, p["ApplicationId"], p["CampaignId"])


async def get_campaign_version(call: Call) -> Any:
    p = call.params
    return await service.get_campaign_version(
        call.services.db, call.ctx, p["ApplicationId"], p["CampaignId"], p["Version"]
    )


async def get_campaign_versions(call: Call) -> Any:
    p = call.params
    return await service.list_campaign_versions(
        call.services.db, call.ctx, p["ApplicationId"], p["CampaignId"], p.get("PageSize"), p.get("Token")
    )


async def get_campaign_activities(call: Call) -> Any:
    p = call.params
    return await service.list_activities(
        call.services.db, p["ApplicationId"], p["CampaignId"], p.get("PageSize"), p.get("Token")
    )


HANDLERS: dict[str, Handler] = {
    "CreateCampaign": create_campaign,
    "GetCampaign": get_campaign,
    "GetCampaigns": get_campaigns,
    "UpdateCampaign": update_campaign,
    "DeleteCampaign": delete_campaign,
    "GetCampaignVersion": get_campaign_version,
    "GetCampaignVersions": get_campaign_versions,
    "GetCampaignActivities": get_campaign_activities,
}
