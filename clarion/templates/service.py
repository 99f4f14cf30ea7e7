"""Create, read, list, update and delete message templates of the five types, with their versions (API Reference,
"Templates").

Templates are account-level and keyed by (name, type). Create writes version 1, which is active. An update either
appends version N+1 (create-new-version) or overwrites the latest version; neither changes the active version, which
only UpdateTemplateActiveVersion moves. Version numbers are never reused. Direct sends and campaigns render the
versions (clarion/messages/rendering.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from clarion import paging
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, TemplateChanged
from clarion.errors import BadRequest, NotFound
from clarion.store import recommenders as recommender_store
from clarion.store import tags as tag_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.tags.service import validate_tags
from clarion.templates import handlebars
from clarion.templates.email_html import COMPILED_HTML, compile_html_isolated
from clarion.templates.rules import BODY_MEMBERS, MAX_VERSIONS, TYPES, check_name, check_type, validate_body
from clarion.versions import parse_version

LATEST = "latest"


def resource_path(name: str, template_type: str) -> str:
    """The ARN's resource part: templates' tags are keyed by it."""
    return f"templates/{name}/{template_type}"


def _metadata(ctx: CallContext, row: template_store.TemplateRow, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "Arn": ctx.arn(resource_path(row.name, row.template_type)),
        "CreationDate": row.created_at,
        "LastModifiedDate": row.modified_at,
        "TemplateName": row.name,
        "TemplateType": row.template_type,
        "Version": str(row.version),
        "tags": tags,
    }


def _response(ctx: CallContext, row: template_store.TemplateRow, tags: dict[str, str]) -> dict[str, Any]:
    """Get*Template: the metadata and every stored member of the version (not the compiled email HTML)."""
    body = msgspec.json.decode(row.body)
    body.pop(COMPILED_HTML, None)
    return {**_metadata(ctx, row, tags), **body}


def _summary(ctx: CallContext, row: template_store.TemplateRow, tags: dict[str, str]) -> dict[str, Any]:
    """ListTemplates: TemplateResponse, the metadata without the message parts."""
    body = msgspec.json.decode(row.body)
    response = _metadata(ctx, row, tags)
    for member in ("DefaultSubstitutions", "TemplateDescription"):
        if member in body:
            response[member] = body[member]
    return response


def _version_summary(row: template_store.TemplateRow) -> dict[str, Any]:
    """ListTemplateVersions: TemplateVersionResponse; CreationDate is when this version was created."""
    body = msgspec.json.decode(row.body)
    response: dict[str, Any] = {
        "CreationDate": row.version_created_at,
        "LastModifiedDate": row.modified_at,
        "TemplateName": row.name,
        "TemplateType": row.template_type,
        "Version": str(row.version),
    }
    for member in ("DefaultSubstitutions", "TemplateDescription"):
        if member in body:
            response[member] = body[member]
    return response


async def _body(template_type: str, request: dict[str, Any]) -> str:
    """The version's stored body. Checking a large template takes a while (every part is compiled to Python), so
    it runs beside the event loop; MJML and CSS inlining run in a child process (email_html.py)."""
    body = {member: request[member] for member in BODY_MEMBERS[template_type] if member in request}
    await asyncio.to_thread(validate_body, template_type, body)
    if template_type == "EMAIL" and body.get("HtmlPart"):
        compiled = await compile_html_isolated(body["HtmlPart"], handlebars.limits().output)
        if compiled is not None:
            body[COMPILED_HTML] = compiled
    return msgspec.json.encode(body).decode()


def _check_recommender(tx: Transaction, request: dict[str, Any]) -> None:
    """A RecommenderId must name a recommender configuration (clarion/recommenders/)."""
    recommender_id = request.get("RecommenderId")
    if recommender_id and not recommender_store.exists(tx, recommender_id):
        raise BadRequest(f"RecommenderId {recommender_id!r} names no recommender configuration")


def _require(tx: Transaction, name: str, template_type: str, *, lock: bool = False) -> None:
    found = template_store.lock(tx, name, template_type) if lock else template_store.exists(tx, name, template_type)
    if not found:
        raise NotFound(f"Template {name!r} of type {template_type} not found")


def _require_version(tx: Transaction, name: str, template_type: str, version: int) -> template_store.TemplateRow:
    row = template_store.get_version(tx, name, template_type, version)
    if row is None:
        raise NotFound(f"Template {name!r} of type {template_type} has no version {version}")
    return row


async def create_template(
    db: Database, ctx: CallContext, template_type: str, name: str, request: dict[str, Any]
) -> dict[str, Any]:
    check_name(name)
    body = await _body(template_type, request)
    tags = request.get("tags") or {}
    validate_tags(tags)
    created_at = iso_millis(ctx.now)
    arn = ctx.arn(resource_path(name, template_type))

    def work(tx: Transaction) -> dict[str, Any]:
        if template_store.exists(tx, name, template_type):
            raise BadRequest(f"Template {name!r} of type {template_type} already exists")
        _check_recommender(tx, request)
        template_store.insert(tx, name, template_type, created_at, body)
        tag_store.put(tx, resource_path(name, template_type), None, tags)
        tx.record(TemplateChanged(name, template_type, Change.CREATED))
        return {"Arn": arn, "Message": "Created", "RequestID": ctx.request_id}

    return await db.write(work)


async def get_template(
    db: Database, ctx: CallContext, template_type: str, name: str, raw_version: str | None
) -> dict[str, Any]:
    """The active version, or the version asked for."""
    check_name(name)
    version = parse_version(raw_version) if raw_version else None

    def work(tx: Transaction) -> dict[str, Any]:
        _require(tx, name, template_type)
        if version is None:
            row = template_store.get(tx, name, template_type)
            if row is None:  # cannot happen: the active version cannot be deleted
                raise NotFound(f"Template {name!r} of type {template_type} has no active version")
        else:
            row = _require_version(tx, name, template_type, version)
        return _response(ctx, row, tag_store.get(tx, resource_path(name, template_type)))

    return await db.read(work)


async def update_template(
    db: Database,
    ctx: CallContext,
    template_type: str,
    name: str,
    request: dict[str, Any],
    create_new_version: bool,
    raw_version: str | None,
) -> None:
    """Append a version, or overwrite the latest one (whose id `raw_version` must then match); `tags` is ignored.

    The members given replace the version's members entirely (members left out are cleared), as a PUT does.
    """
    check_name(name)
    if create_new_version and raw_version:
        raise BadRequest("Pass either create-new-version=true or version, not both")
    expected = parse_version(raw_version) if raw_version else None
    body = await _body(template_type, request)
    at = iso_millis(ctx.now)

    def work(tx: Transaction) -> None:
        _require(tx, name, template_type, lock=True)
        _check_recommender(tx, request)
        tx.record(TemplateChanged(name, template_type, Change.UPDATED))
        if create_new_version:
            if template_store.count_versions(tx, name, template_type) >= MAX_VERSIONS:
                raise BadRequest(f"A template can have at most {MAX_VERSIONS:,} versions")
            last = template_store.last_version(tx, name, template_type)
            template_store.add_version(tx, name, template_type, last + 1, at, body)
            return
        latest = template_store.latest_version(tx, name, template_type)
        if expected is not None and expected != latest:
            raise BadRequest(
                f"Version {expected} is not the latest version ({latest}) of template {name!r}; "
                "only the latest version can be updated in place"
            )
        template_store.overwrite_version(tx, name, template_type, latest, at, body)

    await db.write(work)


async def delete_template(
    db: Database, ctx: CallContext, template_type: str, name: str, raw_version: str | None
) -> None:
    """With a version, that version only (not the active one); without, the template, every version and its tags."""
    check_name(name)
    version = parse_version(raw_version) if raw_version else None

    def work(tx: Transaction) -> None:
        _require(tx, name, template_type, lock=True)
        if version is not None:
            row = _require_version(tx, name, template_type, version)
            if row.version == row.active_version:
                raise BadRequest(
                    f"Version {version} is the active version of template {name!r}; make another version active "
                    "first, or delete the whole template"
                )
            template_store.delete_version(tx, name, template_type, version)
            tx.record(TemplateChanged(name, template_type, Change.UPDATED))
            return
        path = resource_path(name, template_type)
        template_store.delete(tx, name, template_type)
        tag_store.remove(tx, path, list(tag_store.get(tx, path)))
        tx.record(TemplateChanged(name, template_type, Change.DELETED))

    await db.write(work)


async def list_templates(
    db: Database,
    ctx: CallContext,
    prefix: str | None,
    raw_type: str | None,
    page_size: str | None,
    token: str | None,
) -> dict[str, Any]:
    """TemplatesResponse: every template's active version, without message parts, in creation order."""
    types = [check_type(raw_type)] if raw_type else list(TYPES)
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        rows = template_store.page(tx, prefix, types, after, size + 1)
        return paging.page_response(
            rows,
            size,
            lambda row: _summary(ctx, row, tag_store.get(tx, resource_path(row.name, row.template_type))),
            lambda row: row.seq,
        )

    return await db.read(work)


async def list_template_versions(
    db: Database, ctx: CallContext, name: str, raw_type: str, page_size: str | None, token: str | None
) -> dict[str, Any]:
    check_name(name)
    template_type = check_type(raw_type)
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        _require(tx, name, template_type)
        rows = template_store.page_versions(tx, name, template_type, after, size + 1)
        return paging.page_response(rows, size, _version_summary, lambda row: row.version)

    return await db.read(work)


async def update_active_version(
    db: Database, ctx: CallContext, name: str, raw_type: str, request: dict[str, Any]
) -> None:
    """Make `Version` ("latest" or a version id) the version gets and sends use when they name none."""
    check_name(name)
    template_type = check_type(raw_type)
    raw = request.get("Version")
    if not raw:
        raise BadRequest("Version is required: 'latest' or a version id")
    version = None if raw.lower() == LATEST else parse_version(raw)

    def work(tx: Transaction) -> None:
        _require(tx, name, template_type, lock=True)
        target = template_store.latest_version(tx, name, template_type) if version is None else version
        _require_version(tx, name, template_type, target)
        template_store.set_active(tx, name, template_type, target)
        tx.record(TemplateChanged(name, template_type, Change.UPDATED))

    await db.write(work)
