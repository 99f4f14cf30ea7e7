"""Which endpoints a segment holds: plans from definitions, evaluated by SQL over the live row store.

The engine answers from the tables as they are at the moment of the call (no cache, no materialised membership),
so an endpoint update or an event is reflected in the very next evaluation. Evaluations run through
`Database.read_long`, off the event loop.

Counting includes every endpoint that matches, opted out or INACTIVE included (as Pinpoint's segment sizes do);
`sendable_only` narrows to endpoints a campaign may message (EndpointStatus ACTIVE and OptOut NONE).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.clock import Clock, iso_millis
from clarion.errors import BadRequest, NotFound
from clarion.instants import to_ms
from clarion.projects.service import require_app
from clarion.segments.plan import Activity, Node, ResolvedSegment, engagement, plan_of, recency_starts
from clarion.segments.rules import validate_definition
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import segment_sql
from clarion.store import segments as segment_store
from clarion.store.database import Database, Transaction

DEFAULT_PAGE_SIZE = 1000
DEFAULT_SAMPLE_SIZE = 10
MAX_SAMPLE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Preview:
    size: int
    channel_counts: dict[str, int]
    sample: list[str]

    def wire(self) -> dict[str, Any]:
        return {"Size": self.size, "ChannelCounts": self.channel_counts, "Sample": self.sample}


def _resolver(tx: Transaction, app_id: str) -> Any:
    def resolve(segment_id: str, version: int | None) -> ResolvedSegment | None:
        if version is None:
            row = segment_store.get(tx, app_id, segment_id)
        else:
            row = segment_store.get_version(tx, app_id, segment_id, version)
        if row is None:
            return None
        return ResolvedSegment(row.id, row.version, row.segment_type, msgspec.json.decode(row.definition))

    return resolve


class SegmentEngine:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def segment_plan(self, app_id: str, segment_id: str, version: int | None = None) -> Node:
        """The plan of a saved segment at a version (latest when None); NotFound names what is missing."""
        now = self.clock.now()

        def work(tx: Transaction) -> Node:
            require_app(tx, app_id)
            if segment_store.get(tx, app_id, segment_id) is None:
                raise NotFound(f"Segment {segment_id!r} not found in application {app_id!r}")
            resolve = _resolver(tx, app_id)
            # The segment itself goes through the same resolution as a source segment (IMPORT, version pinning).
            reference = {"Id": segment_id} if version is None else {"Id": segment_id, "Version": version}
            if resolve(segment_id, version) is None:
                raise NotFound(f"Segment {segment_id!r} has no version {version}")
            return plan_of({"SegmentGroups": {"Groups": [{"SourceSegments": [reference]}]}}, resolve, now)

        return await self.db.read(work)

    async def definition_plan(self, app_id: str, definition: dict[str, Any], now: datetime | None = None) -> Node:
        """The plan of an unsaved `{Dimensions?, SegmentGroups?}`; references must name existing segments."""
        validate_definition(definition)
        at = now or self.clock.now()

        def work(tx: Transaction) -> Node:
            require_app(tx, app_id)
            resolve = _resolver(tx, app_id)
            for index, group in enumerate((definition.get("SegmentGroups") or {}).get("Groups") or []):
                for position, reference in enumerate(group.get("SourceSegments") or []):
                    if resolve(reference["Id"], reference.get("Version")) is None:
                        raise BadRequest(
                            f"SegmentGroups.Groups[{index}].SourceSegments[{position}]: segment {reference['Id']!r}"
                            + (f" version {reference['Version']}" if reference.get("Version") else "")
                            + f" does not exist in application {app_id!r}"
                        )
            return plan_of(definition, resolve, at)

        return await self.db.read(work)

    async def count(self, app_id: str, node: Node, *, sendable_only: bool = False) -> int:
        return await self.db.read_long(lambda tx: segment_sql.count(tx, app_id, node, sendable_only=sendable_only))

    async def channel_counts(self, app_id: str, node: Node, *, sendable_only: bool = False) -> dict[str, int]:
        return await self.db.read_long(
            lambda tx: segment_sql.channel_counts(tx, app_id, node, sendable_only=sendable_only)
        )

    async def sample(self, app_id: str, node: Node, size: int, *, sendable_only: bool = False) -> list[str]:
        return await self.db.read_long(
            lambda tx: segment_sql.sample(tx, app_id, node, size, sendable_only=sendable_only)
        )

    async def member_pages(
        self, app_id: str, node: Node, *, page_size: int = DEFAULT_PAGE_SIZE, sendable_only: bool = False
    ) -> AsyncIterator[list[str]]:
        """Member endpoint ids in pages, in endpoint-key order; each page is a fresh read after the last key."""
        after = ""
        while True:
            rows = await self.db.read_long(
                lambda tx, after=after: segment_sql.page(
                    tx, app_id, node, after, page_size, sendable_only=sendable_only
                )
            )
            if not rows:
                return
            yield [endpoint_id for _key, endpoint_id in rows]
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    async def preview(self, app_id: str, request: dict[str, Any]) -> Preview:
        """The ClarionPreviewSegment extension: a saved segment (`SegmentId`, `SegmentVersion`?) or a `Definition`."""
        segment_id, definition = request.get("SegmentId"), request.get("Definition")
        if (segment_id is None) == (definition is None):
            raise BadRequest("Give exactly one of SegmentId and Definition")
        if definition is not None and request.get("SegmentVersion") is not None:
            raise BadRequest("SegmentVersion goes with SegmentId, not with Definition")
        size = request.get("SampleSize", DEFAULT_SAMPLE_SIZE)
        if not 0 <= size <= MAX_SAMPLE_SIZE:
            raise BadRequest(f"SampleSize must be between 0 and {MAX_SAMPLE_SIZE}, not {size}")
        version = request.get("SegmentVersion")
        if version is not None and version < 1:
            raise BadRequest(f"SegmentVersion must be at least 1, not {version}")
        if segment_id is not None:
            node = await self.segment_plan(app_id, segment_id, version)
        else:
            node = await self.definition_plan(app_id, definition)
        sendable_only = bool(request.get("SendableOnly", False))
        counts = await self.channel_counts(app_id, node, sendable_only=sendable_only)
        sample = await self.sample(app_id, node, size, sendable_only=sendable_only) if size else []
        return Preview(sum(counts.values()), counts, sample)

    async def activity(self, app_id: str, endpoint_ids: list[str]) -> Activity:
        """These endpoints' app events together (latest, count, revenue): what engagement is scored from."""
        keys = sorted({endpoint_id.lower() for endpoint_id in endpoint_ids})
        last, events, revenue = await self.db.read_long(lambda tx: event_store.activity(tx, app_id, keys))
        return Activity(last, events, revenue)

    async def engagement(self, app_id: str, endpoint_id: str | None, user_id: str | None) -> dict[str, Any]:
        """ClarionGetEngagement: an endpoint's engagement, or a user's over all their endpoints."""
        if (endpoint_id is None) == (user_id is None):
            raise BadRequest("Give exactly one of endpoint-id and user-id")

        def endpoints(tx: Transaction) -> list[str]:
            require_app(tx, app_id)
            if endpoint_id is not None:
                if not endpoint_store.exists(tx, app_id, endpoint_id.lower()):  # keys are lower-cased ids
                    raise NotFound(f"Endpoint {endpoint_id!r} not found in application {app_id!r}")
                return [endpoint_id]
            found = [row.id for row in endpoint_store.of_user(tx, app_id, user_id or "")]
            if not found:
                raise NotFound(f"User {user_id!r} has no endpoints in application {app_id!r}")
            return found

        ids = await self.db.read(endpoints)
        now = self.clock.now()
        activity = await self.activity(app_id, ids)
        shape: dict[str, Any] = {"EndpointId": endpoint_id} if endpoint_id is not None else {"UserId": user_id}
        shape["Endpoints"] = len(ids)
        if activity.last_ms is not None:
            shape["LastActiveDate"] = iso_millis(datetime.fromtimestamp(activity.last_ms / 1000, UTC))
        shape["Events"] = activity.events
        shape["Revenue"] = activity.revenue
        return {**shape, **engagement(activity, recency_starts(to_ms(now)))}
