from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler


async def put_events(call: Call) -> Any:
    response = await call.app.events.put_events(call.ctx, call.params["ApplicationId"], call.body["BatchItem"])
    accepted = sum(
        1
        for item in response["Results"].values()
        for outcome in item["EventsItemResponse"].values()
        if outcome["StatusCode"] == 202
    )
    call.app.metrics.events_ingested.inc(accepted)
    return response


HANDLERS: dict[str, Handler] = {"PutEvents": put_events}
