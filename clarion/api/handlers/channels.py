"""GetChannels and Get/Update/Delete for each of the ten channel types (31 operations, one shape)."""

from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.channels import service
from clarion.channels.rules import KINDS, ChannelKind


async def get_channels(call: Call) -> Any:
    return await service.list_channels(call.services.db, call.params["ApplicationId"])


def _handlers(kind: ChannelKind) -> dict[str, Handler]:
    async def get(call: Call) -> Any:
        return await service.get_channel(call.services.db, call.params["ApplicationId"], kind)

    async def update(call: Call) -> Any:
        services = call.services
        return await service.update_channel(
            services.db,
            services.channel_secrets,
            call.ctx,
            call.params["ApplicationId"],
            kind,
            call.body,
            call.principal.access_key_id,
        )

    async def delete(call: Call) -> Any:
        return await service.delete_channel(call.services.db, call.params["ApplicationId"], kind)

    return {f"Get{kind.stem}Channel": get, f"Update{kind.stem}Channel": update, f"Delete{kind.stem}Channel": delete}


HANDLERS: dict[str, Handler] = {"GetChannels": get_channels}
for _kind in KINDS:
    HANDLERS.update(_handlers(_kind))
