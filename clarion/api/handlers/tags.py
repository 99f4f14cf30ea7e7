from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.tags import service


async def tag_resource(call: Call) -> Any:
    await service.tag_resource(call.services.db, call.params["ResourceArn"], call.body["tags"])


async def untag_resource(call: Call) -> Any:
    await service.untag_resource(call.services.db, call.params["ResourceArn"], call.params.get("TagKeys") or [])


async def list_tags_for_resource(call: Call) -> Any:
    return await service.list_tags(call.services.db, call.params["ResourceArn"])


HANDLERS: dict[str, Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
