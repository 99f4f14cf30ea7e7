from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.errors import Forbidden
from clarion.projects import service


async def create_app(call: Call) -> Any:
    if call.principal.projects is not None:
        raise Forbidden(f"Access key {call.principal.access_key_id} is limited to some projects and cannot create one")
    body = call.body
    return await service.create_app(call.services.db, call.ctx, body["Name"], body.get("tags"))


async def get_app(call: Call) -> Any:
    return await service.get_app(call.services.db, call.ctx, call.params["ApplicationId"])


async def get_apps(call: Call) -> Any:
    return await service.list_apps(
        call.services.db, call.ctx, call.params.get("PageSize"), call.params.get("Token"), call.principal.projects
    )


async def delete_app(call: Call) -> Any:
    return await service.delete_app(call.services.db, call.ctx, call.params["ApplicationId"])


async def get_application_settings(call: Call) -> Any:
    return await service.get_settings(call.services.db, call.params["ApplicationId"])


async def update_application_settings(call: Call) -> Any:
    return await service.update_settings(call.services.db, call.ctx, call.params["ApplicationId"], call.body)


HANDLERS: dict[str, Handler] = {
    "CreateApp": create_app,
    "GetApp": get_app,
    "GetApps": get_apps,
    "DeleteApp": delete_app,
    "GetApplicationSettings": get_application_settings,
    "UpdateApplicationSettings": update_application_settings,
}
