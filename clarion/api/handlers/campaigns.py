from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.campaigns import service
from clarion.messages.inapp import remove_in_app_campaign


async def create_campaign(call: Call) -> Any:
    app_id = call.params["ApplicationId"]
    response = await service.create_campaign(call.app.db, call.ctx, app_id, call.body)
    call.app.campaigns.changed(app_id)
    return response


async def get_campaign(call: Call) -> Any:
    return await service.get_campaign(call.app.db, call.ctx, call.params["ApplicationId"], call.params["CampaignId"])


async def get_campaigns(call: Call) -> Any:
    p = call.params
    return await service.list_campaigns(call.app.db, call.ctx, p["ApplicationId"], p.get("PageSize"), p.get("Token"))


async def update_campaign(call: Call) -> Any:
    p = call.params
    response = await service.update_campaign(call.app.db, call.ctx, p["ApplicationId"], p["CampaignId"], call.body)
    call.app.campaigns.changed(p["ApplicationId"])
    return response


async def delete_campaign(call: Call) -> Any:
    app_id = call.params["ApplicationId"]
    response = await service.delete_campaign(call.app.db, call.ctx, app_id, call.params["CampaignId"])
    await remove_in_app_campaign(call.app.db, app_id, call.params["CampaignId"])
    call.app.campaigns.changed(app_id)
    return response


async def get_campaign_version(call: Call) -> Any:
    p = call.params
    return await service.get_campaign_version(call.app.db, call.ctx, p["ApplicationId"], p["CampaignId"], p["Version"])


async def get_campaign_versions(call: Call) -> Any:
    p = call.params
    return await service.list_campaign_versions(
        call.app.db, call.ctx, p["ApplicationId"], p["CampaignId"], p.get("PageSize"), p.get("Token")
    )


async def get_campaign_activities(call: Call) -> Any:
    p = call.params
    return await service.list_activities(
        call.app.db, p["ApplicationId"], p["CampaignId"], p.get("PageSize"), p.get("Token")
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
