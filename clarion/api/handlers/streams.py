from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.streams import service


async def put_event_stream(call: Call) -> Any:
    return await service.put_event_stream(
        call.services.db,
        call.services.settings.streams,
        call.ctx,
        call.params["ApplicationId"],
        call.body,
        call.principal.access_key_id,
    )


async def get_event_stream(call: Call) -> Any:
    return await service.get_event_stream(
        call.services.db, call.services.settings.streams, call.ctx, call.params["ApplicationId"]
    )


async def delete_event_stream(call: Call) -> Any:
    return await service.delete_event_stream(call.services.db, call.params["ApplicationId"])


HANDLERS: dict[str, Handler] = {
    "PutEventStream": put_event_stream,
    "GetEventStream": get_event_stream,
    "DeleteEventStream": delete_event_stream,
}
