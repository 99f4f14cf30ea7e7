"""Create, read, list, update and delete segments; every update writes a new version and keeps the old ones.

This is the resource API only; which endpoints a segment holds is engine.py's work.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from clarion import paging
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.errors import BadRequest, NotFound
from clarion.projects.service import require_app
from clarion.segments.rules import references, validate_definition
from clarion.store import segments as segment_store
from clarion.store import tags as tag_store
from clarion.store.database import Database, Transaction
from clarion.tags.service import validate_tags
from clarion.versions import parse_version

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
    response.update(orjson.loads(row.definition))
    return response


def require_segment(tx: Transaction, app_id: str, segment_id: str, *, lock: bool = False) -> segment_store.SegmentRow:
    require_app(tx, app_id)
    row = segment_store.get(tx, app_id, segment_id, lock=lock)
    if row is None:
        raise NotFound(f"Segment {segment_id!r} not found in application {app_id!r}")
    return row


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
        for _where, reference in references(orjson.loads(row.definition)):
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
        segment_store.insert(tx, app_id, segment_id, DIMENSIONAL, created_at, name, orjson.dumps(definition).decode())
        tag_store.put(tx, resource_path(app_id, segment_id), app_id, tags)
        return _response(ctx, require_segment(tx, app_id, segment_id), tags)

    return await db.write(work)


async def get_segment(db: Database, ctx: CallContext, app_id: str, segment_id: str) -> dict[str, Any]:
    def work(tx: Transaction) -> dict[str, Any]:
        row = require_segment(tx, app_id, segment_id)
        return _response(ctx, row, tag_store.get(tx, resource_path(app_id, segment_id)))

    return await db.read(work)


async def list_segments(
    db: Database, ctx: CallContext, app_id: str, page_size: str | None, token: str | None
) -> dict[str, Any]:
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        require_app(tx, app_id)
        rows = segment_store.page(tx, app_id, after, size + 1)
        return paging.page_response(
            rows,
            size,
            lambda row: _response(ctx, row, tag_store.get(tx, resource_path(app_id, row.id))),
            lambda row: row.seq,
        )

    return await db.read(work)


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
        definition = {**orjson.loads(current.definition), **changes}
        if "SegmentGroups" in changes:  # references kept as they were are not re-checked (their target may be gone)
            _check_references(tx, app_id, segment_id, definition)
        name = request.get("Name", current.name)
        version = current.latest + 1
        segment_store.add_version(tx, app_id, segment_id, version, name, modified_at, orjson.dumps(definition).decode())
        return _response(
            ctx, require_segment(tx, app_id, segment_id), tag_store.get(tx, resource_path(app_id, segment_id))
        )

    return await db.write(work)


async def delete_segment(db: Database, ctx: CallContext, app_id: str, segment_id: str) -> dict[str, Any]:
    """Remove the segment, every version of it and its tags; answer with the segment as it was."""

    def work(tx: Transaction) -> dict[str, Any]:
        row = require_segment(tx, app_id, segment_id, lock=True)
        path = resource_path(app_id, segment_id)
        tags = tag_store.get(tx, path)
        response = _response(ctx, row, tags)
        segment_store.delete(tx, app_id, segment_id)
        tag_store.remove(tx, path, list(tags))
        return response

    return await db.write(work)


async def get_segment_version(
    db: Database, ctx: CallContext, app_id: str, segment_id: str, raw_version: str
) -> dict[str, Any]:
    version = parse_version(raw_version)

    def work(tx: Transaction) -> dict[str, Any]:
        require_segment(tx, app_id, segment_id)
        row = segment_store.get_version(tx, app_id, segment_id, version)
        if row is None:
            raise NotFound(f"Segment {segment_id!r} has no version {version}")
        return _response(ctx, row, tag_store.get(tx, resource_path(app_id, segment_id)))

    return await db.read(work)


async def list_segment_versions(
    db: Database, ctx: CallContext, app_id: str, segment_id: str, page_size: str | None, token: str | None
) -> dict[str, Any]:
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        require_segment(tx, app_id, segment_id)
        tags = tag_store.get(tx, resource_path(app_id, segment_id))
        rows = segment_store.page_versions(tx, app_id, segment_id, after, size + 1)
        return paging.page_response(rows, size, lambda row: _response(ctx, row, tags), lambda row: row.version)

    return await db.read(work)
