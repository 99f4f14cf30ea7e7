"""PutEventStream, GetEventStream, DeleteEventStream: one stream per project, as in Pinpoint.

A new stream (or one given a new DestinationStreamArn) starts with the events committed after the put; putting the
same destination again keeps its cursor, so nothing waiting is skipped. GetEventStream adds `ClarionDelivery`
(docs/event-streams.md): where the records go, how far behind the sink is, and the last failure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clarion.clock import epoch_millis, iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, EventStreamChanged
from clarion.errors import NotFound
from clarion.projects.service import require_app
from clarion.store import streams as stream_store
from clarion.store.database import Database, Transaction
from clarion.store.streams import StreamRow
from clarion.streams.config import StreamSettings
from clarion.streams.destinations import check_role, parse_destination, routed_sink, sink_for


def _response(row: StreamRow) -> dict[str, Any]:
    return {
        "ApplicationId": row.app_id,
        "DestinationStreamArn": row.destination_arn,
        "RoleArn": row.role_arn,
        "LastModifiedDate": row.modified_at,
        "LastUpdatedBy": row.modified_by,
    }


def _iso(millis: int | None) -> str | None:
    return None if millis is None else iso_millis(datetime.fromtimestamp(millis / 1000, UTC))


def _require_stream(tx: Transaction, app_id: str) -> StreamRow:
    require_app(tx, app_id)
    row = stream_store.get(tx, app_id)
    if row is None:
        raise NotFound(f"Application {app_id!r} has no event stream")
    return row


async def put_event_stream(
    db: Database, settings: StreamSettings, ctx: CallContext, app_id: str, request: dict[str, Any], updated_by: str
) -> dict[str, Any]:
    """`updated_by` is who asked (Pinpoint names the caller's IAM identity; Clarion its access key)."""
    arn, role_arn = request.get("DestinationStreamArn", ""), request.get("RoleArn", "")
    parse_destination(arn)
    check_role(role_arn)
    routed_sink(settings, arn)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        current = stream_store.get(tx, app_id)
        start = None if current is not None and current.destination_arn == arn else stream_store.start_position(tx)
        stream_store.put(tx, app_id, arn, role_arn, iso_millis(ctx.now), updated_by, start)
        tx.record(EventStreamChanged(app_id, Change.CREATED if current is None else Change.UPDATED))
        return _response(_require_stream(tx, app_id))

    return await db.write(work)


async def get_event_stream(db: Database, settings: StreamSettings, ctx: CallContext, app_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> tuple[StreamRow, int, int | None]:
        row = _require_stream(tx, app_id)
        return (row, *stream_store.backlog(tx, app_id, row.cursor))

    row, waiting, oldest = await db.read(work)
    sink = sink_for(settings, row.destination_arn)
    delivery: dict[str, Any] = {
        "Sink": sink.type if sink else "none",
        "LagRecords": waiting,
        "LagSeconds": 0.0 if oldest is None else max(0.0, (epoch_millis(ctx.now) - oldest) / 1000),
        "ConsecutiveFailures": row.failures,
    }
    optional = {
        "LastDeliveredDate": _iso(row.delivered_at),
        "LastError": row.last_error,
        "LastErrorDate": _iso(row.last_error_at),
    }
    delivery.update({key: value for key, value in optional.items() if value is not None})
    return {**_response(row), "ClarionDelivery": delivery}


async def delete_event_stream(db: Database, app_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        response = _response(_require_stream(tx, app_id))
        stream_store.delete(tx, app_id)
        tx.record(EventStreamChanged(app_id, Change.DELETED))
        return response

    return await db.write(work)
