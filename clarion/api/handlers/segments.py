from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.segments import service


async def create_segment(call: Call) -> Any:
    return await service.create_segment(call.services.db, call.ctx, call.params["ApplicationId"], call.body)


async def get_segment(call: Call) -> Any:
    return await service.get_segment(call.services.db, call.ctx, call.params["ApplicationId"], call.params["SegmentId"])


async def get_segments(call: Call) -> Any:
    p = call.params
    return await service.list_segments(
        call.services.db, call.ctx, p["ApplicationId"], p.get("PageSize"), p.get("Token")
    )


async def update_segment(call: Call) -> Any:
    p = call.params
    return await service.update_segment(call.services.db, call.ctx, p["ApplicationId"], p["SegmentId"], call.body)


async def delete_segment(call: Call) -> Any:
    return await service.delete_segment(
        call.services.db, call.ctx, call.params["ApplicationId"], call.params["SegmentId"]
    )


async def get_segment_version(call: Call) -> Any:
    p = call.params
    return await service.get_segment_version(
        call.services.db, call.ctx, p["ApplicationId"], p["SegmentId"], p["Version"]
    )


async def get_segment_versions(call: Call) -> Any:
    p = call.params
    return await service.list_segment_versions(
        call.services.db, call.ctx, p["ApplicationId"], p["SegmentId"], p.get("PageSize"), p.get("Token")
    )


async def preview_segment(call: Call) -> Any:
    """Clarion extension (clarion/api/extended.py): size, channel counts and a sample."""
    preview = await call.services.segments_engine.preview(call.params["ApplicationId"], call.body)
    return preview.wire()


HANDLERS: dict[str, Handler] = {
    "CreateSegment": create_segment,
    "GetSegment": get_segment,
    "GetSegments": get_segments,
    "UpdateSegment": update_segment,
    "DeleteSegment": delete_segment,
    "GetSegmentVersion": get_segment_version,
    "GetSegmentVersions": get_segment_versions,
    "ClarionPreviewSegment": preview_segment,
}
