"""Create, read, list, update and delete segments; every update writes a new version and keeps the old ones.

This is the resource API only; which endpoints a segment holds is engine.py's work.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, SegmentChanged
from clarion.errors import BadRequest
from clarion.projects.service import require_app
from clarion.segments.rules import references, validate_definition
from clarion.store import segments as segment_store
from clarion.store import tags as tag_store
from clarion.store.database import Database, Transaction
from clarion.tags.service import validate_tags
from clarion.versions import VersionedResource

DIMENSIONAL = "DIMENSIONAL"
DEFINITION_MEMBERS = ("Dimensions", "SegmentGroups")  # what a version stores besides its Name


def resource_path(app_id: str, segment_id: str) -> str:
    """The ARN's resource part: segments' tags are keyed by it."""
    return f"apps/{app_id}/segments/{segment_id}"


def _response(ctx: CallContext, row: segment_store.SegmentRow, tags: dict[str, str]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ApplicationId": row.app_id,
        "Arn": ctx.arn(resource_path(row.app_id, row.id)),
        "CreationDate": row.created_at,
        "Id": row.id,
        "LastModifiedDate": row.modified_at,
        "Name": row.name,
        "SegmentType": row.segment_type,
        "Version": row.version,
        "tags": tags,
    }
    response.update(msgspec.json.decode(row.definition))
    return response


SEGMENTS = VersionedResource(
    "Segment",
    segment_store,
    resource_path,
    lambda tx, ctx, row, tags: _response(ctx, row, tags),
    lambda tx, app_id, segment_id: tx.record(SegmentChanged(app_id, segment_id, Change.DELETED)),
)
require_segment = SEGMENTS.require
get_segment = SEGMENTS.get
list_segments = SEGMENTS.list
get_segment_version = SEGMENTS.get_version
list_segment_versions = SEGMENTS.list_versions
delete_segment = SEGMENTS.delete


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Name must not be empty")
    return name


def _check_references(tx: Transaction, app_id: str, segment_id: str, definition: dict[str, Any]) -> None:
    """SourceSegments must name existing segments (and versions) of this project, and never lead back to it."""
    for where, reference in references(definition):
        target = reference["Id"]
        if target == segment_id:
            raise BadRequest(f"{where}.Id: a segment cannot reference itself")
        row = _resolve(tx, app_id, reference)
        if row is None:
            if segment_store.get(tx, app_id, target) is None:
                raise BadRequest(f"{where}.Id: segment {target!r} does not exist in application {app_id!r}")
            raise BadRequest(f"{where}.Version: segment {target!r} has no version {reference['Version']}")
        if _leads_to(tx, app_id, row, segment_id):
            raise BadRequest(f"{where}.Id: segment {target!r} references this segment, which would make a cycle")


def _resolve(tx: Transaction, app_id: str, reference: dict[str, Any]) -> segment_store.SegmentRow | None:
    """The version a reference means: the pinned one, else the latest."""
    if reference.get("Version") is not None:
        return segment_store.get_version(tx, app_id, reference["Id"], reference["Version"])
    return segment_store.get(tx, app_id, reference["Id"])


def _leads_to(tx: Transaction, app_id: str, start: segment_store.SegmentRow, segment_id: str) -> bool:
    """Whether `start`'s references reach `segment_id`, directly or through other segments."""
    pending, seen = [start], {(start.id, start.version)}
    while pending:
        row = pending.pop()
        for _where, reference in references(msgspec.json.decode(row.definition)):
            if reference["Id"] == segment_id:
                return True
            target = _resolve(tx, app_id, reference)
            if target is not None and (target.id, target.version) not in seen:
                seen.add((target.id, target.version))
                pending.append(target)
    return False


async def create_segment(db: Database, ctx: CallContext, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
    name = _check_name(request.get("Name"))
    definition = {member: request[member] for member in DEFINITION_MEMBERS if member in request}
    validate_definition(definition)
    tags = request.get("tags") or {}
    validate_tags(tags)
    segment_id = uuid.uuid4().hex
    created_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        _check_references(tx, app_id, segment_id, definition)
        segment_store.insert(
            tx, app_id, segment_id, DIMENSIONAL, created_at, name, msgspec.json.encode(definition).decode()
        )
        tag_store.put(tx, resource_path(app_id, segment_id), app_id, tags)
        tx.record(SegmentChanged(app_id, segment_id, Change.CREATED))
        return _response(ctx, require_segment(tx, app_id, segment_id), tags)

    return await db.write(work)


async def update_segment(
    db: Database, ctx: CallContext, app_id: str, segment_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """A new version: members given replace the stored ones, members left out keep their value; `tags` is ignored."""
    if "Name" in request:
        _check_name(request["Name"])
    changes = {member: request[member] for member in DEFINITION_MEMBERS if member in request}
    validate_definition(changes)
    modified_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        current = require_segment(tx, app_id, segment_id, lock=True)
        definition = {**msgspec.json.decode(current.definition), **changes}
        if "SegmentGroups" in changes:  # references kept as they were are not re-checked (their target may be gone)
            _check_references(tx, app_id, segment_id, definition)
        name = request.get("Name", current.name)
        version = current.latest + 1
        segment_store.add_version(
            tx, app_id, segment_id, version, name, modified_at, msgspec.json.encode(definition).decode()
        )
        tx.record(SegmentChanged(app_id, segment_id, Change.UPDATED))
        return _response(
            ctx, require_segment(tx, app_id, segment_id), tag_store.get(tx, resource_path(app_id, segment_id))
        )

    return await db.write(work)
