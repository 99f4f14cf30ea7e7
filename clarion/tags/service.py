"""TagResource, UntagResource and ListTagsForResource over real ARNs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from clarion.errors import BadRequest, NotFound
from clarion.store import apps as app_store
from clarion.store import campaigns as campaign_store
from clarion.store import journeys as journey_store
from clarion.store import segments as segment_store
from clarion.store import tags as tag_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256

_ARN = re.compile(r"arn:aws:mobiletargeting:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)")
_APP_RESOURCE = re.compile(r"apps/(?P<app>[^/]+)(?:/(?P<kind>campaigns|segments|journeys)/(?P<id>[^/]+))?")


@dataclass(frozen=True, slots=True)
class Resource:
    arn: str
    path: str  # the ARN's resource part ("apps/ID"): tags are keyed by it, so they hold in every region
    app_id: str | None  # None for account-level resources (templates, recommenders)
    kind: str  # "apps", "campaigns", "segments", "journeys", "templates", "recommenders"
    resource_id: str


def parse_arn(arn: str) -> Resource:
    match = _ARN.fullmatch(arn)
    if not match:
        raise BadRequest(f"{arn!r} is not a mobiletargeting ARN (arn:aws:mobiletargeting:REGION:ACCOUNT:...)")
    resource = match["resource"]
    app = _APP_RESOURCE.fullmatch(resource)
    if app:
        kind = app["kind"] or "apps"
        return Resource(arn, resource, app["app"], kind, app["id"] or app["app"])
    head, _, rest = resource.partition("/")
    if head in ("templates", "recommenders") and rest:
        return Resource(arn, resource, None, head, rest)
    raise BadRequest(f"{arn!r} does not name a taggable Pinpoint resource")


# How to tell whether a resource exists, per kind. Domains register theirs as they are built.
EXISTS: dict[str, Callable[[Transaction, Resource], bool]] = {
    "apps": lambda tx, r: app_store.get(tx, r.resource_id) is not None,
    "segments": lambda tx, r: r.app_id is not None and segment_store.get(tx, r.app_id, r.resource_id) is not None,
    "campaigns": lambda tx, r: r.app_id is not None and campaign_store.get(tx, r.app_id, r.resource_id) is not None,
    "journeys": lambda tx, r: r.app_id is not None and journey_store.get(tx, r.app_id, r.resource_id) is not None,
    "templates": lambda tx, r: template_store.exists(tx, *r.resource_id.rpartition("/")[::2]),
}


def _require(tx: Transaction, resource: Resource) -> None:
    exists = EXISTS.get(resource.kind)
    if exists is None or not exists(tx, resource):
        raise NotFound(f"Resource {resource.arn!r} not found")


def validate_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"A resource can have at most {MAX_TAGS} tags, not {len(tags)}")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_KEY:
            raise BadRequest(f"Tag key {key[:40]!r} must be 1 to {MAX_KEY} characters")
        if key.lower().startswith("aws:"):
            raise BadRequest(f"Tag key {key!r} uses the reserved prefix 'aws:'")
        if len(value) > MAX_VALUE:
            raise BadRequest(f"The value of tag {key!r} is longer than {MAX_VALUE} characters")


async def tag_resource(db: Database, arn: str, tags: dict[str, str]) -> None:
    resource = parse_arn(arn)

    def work(tx: Transaction) -> None:
        _require(tx, resource)
        merged = {**tag_store.get(tx, resource.path), **tags}
        validate_tags(merged)
        tag_store.put(tx, resource.path, resource.app_id, tags)

    await db.write(work)


async def untag_resource(db: Database, arn: str, keys: list[str]) -> None:
    resource = parse_arn(arn)

    def work(tx: Transaction) -> None:
        _require(tx, resource)
        tag_store.remove(tx, resource.path, keys)

    await db.write(work)


async def list_tags(db: Database, arn: str) -> dict[str, dict[str, str]]:
    resource = parse_arn(arn)

    def work(tx: Transaction) -> dict[str, dict[str, str]]:
        _require(tx, resource)
        return {"tags": tag_store.get(tx, resource.path)}

    return await db.read(work)
