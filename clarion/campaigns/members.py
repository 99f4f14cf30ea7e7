"""The segment engine seen from campaigns and journeys: a segment's sendable members in pages, and membership of a
few ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from clarion.endpoints.service import endpoint_key
from clarion.segments.engine import SegmentEngine
from clarion.segments.plan import Node
from clarion.store import segment_sql


class SegmentMembers:
    def __init__(self, engine: SegmentEngine) -> None:
        self.engine = engine

    async def pages(
        self, app_id: str, segment_id: str, version: int | None, page_size: int, *, sendable_only: bool = True
    ) -> AsyncIterator[list[str]]:
        """Member ids in endpoint-key order (one streamed evaluation on the columnar engine)."""
        node = await self.engine.segment_plan(app_id, segment_id, version)
        async for page in self.engine.member_pages(app_id, node, page_size=page_size, sendable_only=sendable_only):
            yield page

    async def holds(
        self,
        app_id: str,
        segment_id: str,
        version: int | None,
        endpoint_ids: Sequence[str],
        *,
        sendable_only: bool = True,
    ) -> set[str]:
        """Which of these endpoint ids are members (an indexed read of the row store)."""
        node = await self.engine.segment_plan(app_id, segment_id, version)
        return await self.among(app_id, node, endpoint_ids, sendable_only=sendable_only)

    async def among(
        self, app_id: str, node: Node, endpoint_ids: Sequence[str], *, sendable_only: bool = True
    ) -> set[str]:
        """Which of these endpoint ids a segment plan holds (a stored segment's, or a journey condition's)."""
        keys = {endpoint_key(endpoint_id): endpoint_id for endpoint_id in endpoint_ids}
        found = await self.engine.db.read(
            lambda tx: segment_sql.among(tx, app_id, node, list(keys), sendable_only=sendable_only)
        )
        return {keys[key] for key in found}
