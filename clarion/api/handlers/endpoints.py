from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.endpoints import service


async def update_endpoint(call: Call) -> Any:
    p, services = call.params, call.services
    await service.update_endpoint(
        services.db, services.endpoint_writer, call.ctx, p["ApplicationId"], p["EndpointId"], call.body
    )
    services.metrics.endpoints_ingested.inc()


async def update_endpoints_batch(call: Call) -> Any:
    items, services = call.body["Item"], call.services
    await service.update_endpoints_batch(
        services.db, services.endpoint_writer, call.ctx, call.params["ApplicationId"], items
    )
    services.metrics.endpoints_ingested.inc(len(items))


async def get_endpoint(call: Call) -> Any:
    return await service.get_endpoint(call.services.db, call.params["ApplicationId"], call.params["EndpointId"])


async def delete_endpoint(call: Call) -> Any:
    return await service.delete_endpoint(call.services.db, call.params["ApplicationId"], call.params["EndpointId"])


async def get_user_endpoints(call: Call) -> Any:
    return await service.get_user_endpoints(call.services.db, call.params["ApplicationId"], call.params["UserId"])


async def delete_user_endpoints(call: Call) -> Any:
    return await service.delete_user_endpoints(call.services.db, call.params["ApplicationId"], call.params["UserId"])


async def remove_attributes(call: Call) -> Any:
    p = call.params
    return await service.remove_attributes(
        call.services.db, p["ApplicationId"], p["AttributeType"], call.body.get("Blacklist") or []
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
