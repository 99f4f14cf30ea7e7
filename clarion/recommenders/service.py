"""Create, read, list, update and delete recommender configurations (Pinpoint's /v1/recommenders resource).

Configurations belong to the account, like templates; a template names one by `RecommenderId`, and sends that
render the template ask it for each recipient's recommendations (clarion/recommenders/engine.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from clarion import paging
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.domain_events import Change, RecommenderChanged
from clarion.errors import BadRequest, NotFound
from clarion.recommenders.rules import MAX_RECOMMENDERS, check_configuration
from clarion.store import recommenders as recommender_store
from clarion.store.database import Database, Transaction
from clarion.store.recommenders import RecommenderRow


def response(row: RecommenderRow) -> dict[str, Any]:
    """RecommenderConfigurationResponse."""
    body: dict[str, Any] = msgspec.json.decode(row.body)
    return {"Id": row.id, "CreationDate": row.created_at, "LastModifiedDate": row.modified_at, **body}


def _require(tx: Transaction, recommender_id: str) -> RecommenderRow:
    row = recommender_store.get(tx, recommender_id)
    if row is None:
        raise NotFound(f"Recommender configuration {recommender_id!r} not found")
    return row


async def create_recommender(db: Database, ctx: CallContext, request: dict[str, Any]) -> dict[str, Any]:
    body = msgspec.json.encode(check_configuration(request)).decode()
    recommender_id = uuid.uuid4().hex
    created_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        if recommender_store.count(tx) >= MAX_RECOMMENDERS:
            raise BadRequest(f"An account holds at most {MAX_RECOMMENDERS} recommender configurations")
        recommender_store.insert(tx, recommender_id, created_at, body)
        tx.record(RecommenderChanged(recommender_id, Change.CREATED))
        return response(_require(tx, recommender_id))

    return await db.write(work)


async def get_recommender(db: Database, recommender_id: str) -> dict[str, Any]:
    return await db.read(lambda tx: response(_require(tx, recommender_id)))


async def list_recommenders(db: Database, page_size: str | None, token: str | None) -> dict[str, Any]:
    """ListRecommenderConfigurationsResponse, in creation order."""
    size = paging.page_size(page_size)
    after = paging.decode_token(token)

    def work(tx: Transaction) -> dict[str, Any]:
        rows = recommender_store.page(tx, after, size + 1)
        return paging.page_response(rows, size, response, lambda row: row.seq)

    return await db.read(work)


async def update_recommender(
    db: Database, ctx: CallContext, recommender_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """A PUT: the members given replace the configuration's (members left out are cleared or take defaults)."""
    body = msgspec.json.encode(check_configuration(request)).decode()
    modified_at = iso_millis(ctx.now)

    def work(tx: Transaction) -> dict[str, Any]:
        if not recommender_store.update(tx, recommender_id, modified_at, body):
            raise NotFound(f"Recommender configuration {recommender_id!r} not found")
        tx.record(RecommenderChanged(recommender_id, Change.UPDATED))
        return response(_require(tx, recommender_id))

    return await db.write(work)


async def delete_recommender(db: Database, recommender_id: str) -> dict[str, Any]:
    """The configuration as it was. Templates naming it keep the id; their recipients then fail until it exists."""

    def work(tx: Transaction) -> dict[str, Any]:
        deleted = response(_require(tx, recommender_id))
        recommender_store.delete(tx, recommender_id)
        tx.record(RecommenderChanged(recommender_id, Change.DELETED))
        return deleted

    return await db.write(work)
