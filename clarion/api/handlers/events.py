from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.events.service import put_events as put


async def put_events(call: Call) -> Any:
    services = call.services
    response = await put(
        services.db, services.endpoint_writer, call.ctx, call.params["ApplicationId"], call.body["BatchItem"]
    )
    accepted = sum(
        1
        for item in response["Results"].values()
        for outcome in item["EventsItemResponse"].values()
        if outcome["StatusCode"] == 202
    )
    services.metrics.events_ingested.inc(accepted)
    return response


HANDLERS: dict[str, Handler] = {"PutEvents": put_events}
