from __future__ import annotations

from typing import Any

from clarion.api.call import Call, Handler
from clarion.recommenders import service


async def create_recommender_configuration(call: Call) -> Any:
    return await service.create_recommender(call.services.db, call.ctx, call.body)


async def get_recommender_configuration(call: Call) -> Any:
    return await service.get_recommender(call.services.db, call.params["RecommenderId"])


async def get_recommender_configurations(call: Call) -> Any:
    p = call.params
    return await service.list_recommenders(call.services.db, p.get("PageSize"), p.get("Token"))


async def update_recommender_configuration(call: Call) -> Any:
    return await service.update_recommender(call.services.db, call.ctx, call.params["RecommenderId"], call.body)


async def delete_recommender_configuration(call: Call) -> Any:
    return await service.delete_recommender(call.services.db, call.params["RecommenderId"])


HANDLERS: dict[str, Handler] = {
    "CreateRecommenderConfiguration": create_recommender_configuration,
    "GetRecommenderConfiguration": get_recommender_configuration,
    "GetRecommenderConfigurations": get_recommender_configurations,
    "UpdateRecommenderConfiguration": update_recommender_configuration,
    "DeleteRecommenderConfiguration": delete_recommender_configuration,
}
