from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler


async def update_endpoint(call: Call) -> Any:
    p = call.params
    await call.app.endpoints.update_endpoint(call.ctx, p["ApplicationId"], p["EndpointId"], call.body)
    call.app.metrics.endpoints_ingested.inc()


async def update_endpoints_batch(call: Call) -> Any:
    items = call.body["Item"]
    await call.app.endpoints.update_endpoints_batch(call.ctx, call.params["ApplicationId"], items)
    call.app.metrics.endpoints_ingested.inc(len(items))


async def get_endpoint(call: Call) -> Any:
    return await call.app.endpoints.get_endpoint(call.params["ApplicationId"], call.params["EndpointId"])


async def delete_endpoint(call: Call) -> Any:
    return await call.app.endpoints.delete_endpoint(call.params["ApplicationId"], call.params["EndpointId"])


async def get_user_endpoints(call: Call) -> Any:
    return await call.app.endpoints.get_user_endpoints(call.params["ApplicationId"], call.params["UserId"])


async def delete_user_endpoints(call: Call) -> Any:
    return await call.app.endpoints.delete_user_endpoints(call.params["ApplicationId"], call.params["UserId"])


async def remove_attributes(call: Call) -> Any:
    p = call.params
    return await call.app.endpoints.remove_attributes(
        p["ApplicationId"], p["AttributeType"], call.body.get("Blacklist") or []
    )


HANDLERS: dict[str, Handler] = {
    "UpdateEndpoint": update_endpoint,
    "UpdateEndpointsBatch": update_endpoints_batch,
    "GetEndpoint": get_endpoint,
    "DeleteEndpoint": delete_endpoint,
    "GetUserEndpoints": get_user_endpoints,
    "DeleteUserEndpoints": delete_user_endpoints,
    "RemoveAttributes": remove_attributes,
}
