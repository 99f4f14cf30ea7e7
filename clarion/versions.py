"""Versioned resources (segments, campaigns): version ids as Pinpoint's paths carry them, and the operations every
versioned resource answers the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from clarion import paging
from clarion.context import CallContext
from clarion.errors import BadRequest, NotFound
from clarion.projects.service import require_app
from clarion.store import tags as tag_store
from clarion.store.database import Database, Transaction

R = TypeVar("R")


def parse_version(raw: str) -> int:
    try:
        version = int(raw)
    except ValueError:
        raise BadRequest(f"Version must be a whole number, not {raw!r}") from None
    if version < 1:
        raise BadRequest(f"Version must be at least 1, not {version}")
    return version


class VersionStore(Protocol[R]):
    """What a versioned resource's store module offers (clarion/store/segments.py, clarion/store/campaigns.py)."""

    def get(self, tx: Transaction, app_id: str, resource_id: str, *, lock: bool = False) -> R | None: ...
    def get_version(self, tx: Transaction, app_id: str, resource_id: str, version: int) -> R | None: ...
    def page(self, tx: Transaction, app_id: str, after_seq: int, limit: int) -> list[R]: ...
    def page_versions(
        self, tx: Transaction, app_id: str, resource_id: str, after_version: int, limit: int
    ) -> list[R]: ...
    def delete(self, tx: Transaction, app_id: str, resource_id: str) -> None: ...


Respond = Callable[[Transaction, CallContext, R, dict[str, str]], dict[str, Any]]
# What else a delete does in its own transaction (app id, resource id): its domain event, what goes with it.
Deleted = Callable[[Transaction, str, str], None]


class VersionedResource(Generic[R]):
    """The reads and the delete that every versioned, tagged resource of a project answers alike: Get, the list,
    one version, every version, Delete (which answers with the resource as it was and takes its tags along)."""

    def __init__(
        self,
        noun: str,
        store: VersionStore[R],
        path: Callable[[str, str], str],
        respond: Respond[R],
        deleted: Deleted,
    ) -> None:
        self.noun = noun
        self.store = store
        self.path = path
        self.respond = respond
        self.deleted = deleted

    def require(self, tx: Transaction, app_id: str, resource_id: str, *, lock: bool = False) -> R:
        require_app(tx, app_id)
        row = self.store.get(tx, app_id, resource_id, lock=lock)
        if row is None:
            raise NotFound(f"{self.noun} {resource_id!r} not found in application {app_id!r}")
        return row

    def _tags(self, tx: Transaction, app_id: str, resource_id: str) -> dict[str, str]:
        return tag_store.get(tx, self.path(app_id, resource_id))

    async def get(self, db: Database, ctx: CallContext, app_id: str, resource_id: str) -> dict[str, Any]:
        def work(tx: Transaction) -> dict[str, Any]:
            row = self.require(tx, app_id, resource_id)
            return self.respond(tx, ctx, row, self._tags(tx, app_id, resource_id))

        return await db.read(work)

    async def list(
        self, db: Database, ctx: CallContext, app_id: str, page_size: str | None, token: str | None
    ) -> dict[str, Any]:
        size, after = paging.page_size(page_size), paging.decode_token(token)

        def work(tx: Transaction) -> dict[str, Any]:
            require_app(tx, app_id)
            return paging.page_response(
                self.store.page(tx, app_id, after, size + 1),
                size,
                lambda row: self.respond(tx, ctx, row, self._tags(tx, app_id, row.id)),  # type: ignore[attr-defined]
                lambda row: row.seq,  # type: ignore[attr-defined]
            )

        return await db.read(work)

    async def get_version(
        self, db: Database, ctx: CallContext, app_id: str, resource_id: str, raw_version: str
    ) -> dict[str, Any]:
        version = parse_version(raw_version)

        def work(tx: Transaction) -> dict[str, Any]:
            self.require(tx, app_id, resource_id)
            row = self.store.get_version(tx, app_id, resource_id, version)
            if row is None:
                raise NotFound(f"{self.noun} {resource_id!r} has no version {version}")
            return self.respond(tx, ctx, row, self._tags(tx, app_id, resource_id))

        return await db.read(work)

    async def list_versions(
        self, db: Database, ctx: CallContext, app_id: str, resource_id: str, page_size: str | None, token: str | None
    ) -> dict[str, Any]:
        size, after = paging.page_size(page_size), paging.decode_token(token)

        def work(tx: Transaction) -> dict[str, Any]:
            self.require(tx, app_id, resource_id)
            tags = self._tags(tx, app_id, resource_id)
            rows = self.store.page_versions(tx, app_id, resource_id, after, size + 1)
            return paging.page_response(
                rows,
                size,
                lambda row: self.respond(tx, ctx, row, tags),
                lambda row: row.version,  # type: ignore[attr-defined]
            )

        return await db.read(work)

    async def delete(self, db: Database, ctx: CallContext, app_id: str, resource_id: str) -> dict[str, Any]:
        def work(tx: Transaction) -> dict[str, Any]:
            row = self.require(tx, app_id, resource_id, lock=True)
            tags = self._tags(tx, app_id, resource_id)
            response = self.respond(tx, ctx, row, tags)
            self.store.delete(tx, app_id, resource_id)
            tag_store.remove(tx, self.path(app_id, resource_id), list(tags))
            self.deleted(tx, app_id, resource_id)
            return response

        return await db.write(work)
