from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.messages import inapp, preview, sends


async def send_messages(call: Call) -> Any:
    services = call.services
    return await sends.send_messages(services.db, services.delivery, call.ctx, call.params["ApplicationId"], call.body)


async def send_users_messages(call: Call) -> Any:
    services = call.services
    return await sends.send_users_messages(
        services.db, services.delivery, call.ctx, call.params["ApplicationId"], call.body
    )


async def get_in_app_messages(call: Call) -> Any:
    p = call.params
    return await inapp.get_in_app_messages(call.services.db, p["ApplicationId"], p["EndpointId"], call.ctx.now)


async def preview_template(call: Call) -> Any:
    """Clarion extension (clarion/api/extended_console.py): a template rendered for an endpoint, not sent."""
    return await preview.preview_template(call.services.db, call.ctx, call.params["ApplicationId"], call.body)


HANDLERS: dict[str, Handler] = {
    "ClarionPreviewTemplate": preview_template,
    "SendMessages": send_messages,
    "SendUsersMessages": send_users_messages,
    "GetInAppMessages": get_in_app_messages,
}
