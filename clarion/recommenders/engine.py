"""Each recipient's recommendations, for templates that name a RecommenderId: the message variables
`{{RecommendationItems}}` and `{{Recommendations.<attribute>}}` (docs/recommenders.md has the wire contract).

The send path (clarion/messages/delivery.py) asks once per send and recommender for all its recipients together:
ids are deduplicated and sent `batch_size` at a time to the recommender (RecommendationProviderUri), then, when the
configuration has one, the endpoints with their items go `batch_size` at a time to the transformer
(RecommendationTransformerUri), which returns the `Recommendations` attributes. Both are tenant URLs, called through
the guarded client (clarion/outbound/).

As Pinpoint documents for its recommender models, a recipient whose recommendations cannot be had is not sent to:
the recommender or transformer failed or answered what the contract does not allow, the configuration is gone, or
the recipient lacks the id the recommender is keyed by. A recipient the recommender knows nothing about gets no
items, and is sent to with the variables empty (or the template's defaults).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from clarion.channels.custom import SIGNATURE_HEADER, sign
from clarion.clock import Clock
from clarion.logs import get_logger
from clarion.metrics import Metrics
from clarion.outbound.client import OutboundClient, OutboundError, OutboundTimeout
from clarion.recommenders.config import RecommenderSettings
from clarion.recommenders.rules import USER_ID
from clarion.store import recommenders as recommender_store
from clarion.store.database import Database

MAX_ITEM = 100  # characters of one recommended item (Pinpoint's quota for values from the model)
ITEMS, ATTRIBUTES = "RecommendationItems", "Recommendations"

log = get_logger("clarion.recommenders")
T = TypeVar("T")
A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class NotRecommended:
    """Why a recipient has no recommendations; it is not sent to. `permanent`: trying again cannot help."""

    message: str
    permanent: bool = True


Recommendation = dict[str, Any] | NotRecommended  # the message variables to add, or why there are none


class Item(msgspec.Struct, rename="pascal", frozen=True):
    item_id: str
    attributes: dict[str, str] = {}


class ProviderAnswer(msgspec.Struct, rename="pascal"):
    recommendations: dict[str, list[str | Item]]


class TransformedEndpoint(msgspec.Struct, rename="pascal"):
    recommendations: dict[str, str | list[str]] = {}


class _Failed(Exception):
    def __init__(self, reason: str, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.reason = reason  # the metric's label
        self.permanent = permanent


class Recommendations:
    def __init__(
        self,
        db: Database,
        outbound: OutboundClient,
        settings: RecommenderSettings,
        clock: Clock,
        metrics: Metrics,
        signing_secret: str | None = None,
    ) -> None:
        self.db = db
        self.outbound = outbound
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.signing_secret = signing_secret  # delivery.webhook.signing_secret: X-Clarion-Signature, as webhooks

    async def for_recipients(
        self, app_id: str, recommender_id: str, recipients: Sequence[Mapping[str, Any]]
    ) -> list[Recommendation]:
        """One Recommendation per recipient (its endpoint variables: Id, User.UserId, ...), in order."""
        row = await self.db.read(lambda tx: recommender_store.get(tx, recommender_id))
        if row is None:
            self._count("configuration", "missing")
            return [NotRecommended(f"Recommender configuration {recommender_id!r} does not exist")] * len(recipients)
        config: dict[str, Any] = msgspec.json.decode(row.body)
        by_user = config["RecommendationProviderIdType"] == USER_ID
        keys = [
            (recipient.get("User") or {}).get("UserId") if by_user else recipient.get("Id") for recipient in recipients
        ]
        found = await self._items(app_id, recommender_id, config, list(dict.fromkeys(key for key in keys if key)))
        unkeyed = NotRecommended(
            f"Recommender {recommender_id} is keyed by {'user' if by_user else 'endpoint'} id, which this recipient "
            "lacks"
        )
        per_message = config["RecommendationsPerMessage"]
        chosen: list[list[Item] | NotRecommended] = []
        for key in keys:
            items = found[key] if key else unkeyed
            chosen.append(items if isinstance(items, NotRecommended) else items[:per_message])
        if config.get("RecommendationTransformerUri"):
            attributes = await self._transform(app_id, recommender_id, config, recipients, chosen)
        else:
            attributes = [_item_attributes(items) if isinstance(items, list) else items for items in chosen]
        results: list[Recommendation] = []
        for items, made in zip(chosen, attributes, strict=True):
            if isinstance(items, NotRecommended) or isinstance(made, NotRecommended):
                results.append(items if isinstance(items, NotRecommended) else made)
            else:
                results.append({ITEMS: [item.item_id for item in items], ATTRIBUTES: made})
        return results

    async def _items(
        self, app_id: str, recommender_id: str, config: Mapping[str, Any], ids: list[str]
    ) -> dict[str, list[Item] | NotRecommended]:
        """Each id's items, asked `batch_size` ids at a time (concurrently); a failed call fails its ids."""

        async def ask(chunk: list[str]) -> dict[str, list[Item] | NotRecommended]:
            payload = {
                "ApplicationId": app_id,
                "RecommenderId": recommender_id,
                "IdType": config["RecommendationProviderIdType"],
                "NumberOfItems": config["RecommendationsPerMessage"],
                "Ids": chunk,
            }
            try:
                answer = await self._post("recommender", config["RecommendationProviderUri"], payload, ProviderAnswer)
            except _Failed as error:
                return dict.fromkeys(chunk, self._fail("recommender", error))
            out: dict[str, list[Item] | NotRecommended] = {}
            for key in chunk:
                items = [Item(item) if isinstance(item, str) else item for item in answer.recommendations.get(key, [])]
                wrong = next((item for item in items if not 1 <= len(item.item_id) <= MAX_ITEM), None)
                out[key] = (
                    items
                    if wrong is None
                    else self._fail(
                        "recommender",
                        _Failed("malformed", f"item id {wrong.item_id[:40]!r} is not 1 to {MAX_ITEM} characters", True),
                    )
                )
            return out

        return await self._gather(ids, ask)

    async def _transform(
        self,
        app_id: str,
        recommender_id: str,
        config: Mapping[str, Any],
        recipients: Sequence[Mapping[str, Any]],
        chosen: list[list[Item] | NotRecommended],
    ) -> list[dict[str, Any] | NotRecommended]:
        """The `Recommendations` the transformer made of each recipient's items (its configured Attributes only)."""
        endpoints: dict[str, dict[str, Any]] = {}
        for recipient, items in zip(recipients, chosen, strict=True):
            if isinstance(items, list):
                endpoint = {key: value for key, value in recipient.items() if key != "RequestId"}
                endpoints[str(recipient.get("Id"))] = {**endpoint, ITEMS: [item.item_id for item in items]}
        names = set(config.get("Attributes") or {})

        async def ask(chunk: list[str]) -> dict[str, dict[str, Any] | NotRecommended]:
            payload = {
                "ApplicationId": app_id,
                "RecommenderId": recommender_id,
                "Endpoints": {key: endpoints[key] for key in chunk},
            }
            try:
                answer = _endpoints(
                    await self._post("transformer", config["RecommendationTransformerUri"], payload, object)
                )
            except _Failed as error:
                return dict.fromkeys(chunk, self._fail("transformer", error))
            out: dict[str, dict[str, Any] | NotRecommended] = {}
            for key in chunk:
                transformed = answer.get(key)
                if transformed is None:
                    missing = _Failed("missing", f"the transformer returned no endpoint {key!r}", True)
                    out[key] = self._fail("transformer", missing)
                else:
                    out[key] = {name: value for name, value in transformed.recommendations.items() if name in names}
            return out

        made = await self._gather(list(endpoints), ask)
        return [
            made[str(recipient.get("Id"))] if isinstance(items, list) else items
            for recipient, items in zip(recipients, chosen, strict=True)
        ]

    async def _gather(self, keys: list[str], ask: Callable[[list[str]], Awaitable[dict[str, T]]]) -> dict[str, T]:
        """`ask` for `batch_size` keys at a time, all chunks at once; their answers merged."""
        size = self.settings.batch_size
        chunks = [keys[start : start + size] for start in range(0, len(keys), size)]
        merged: dict[str, T] = {}
        for part in await asyncio.gather(*(ask(chunk) for chunk in chunks)):
            merged.update(part)
        return merged

    async def _post(self, stage: str, url: str, payload: Mapping[str, Any], answer: type[A]) -> A:
        """The 2xx answer decoded as `answer`; raises _Failed. Failures that may pass are tried again, backing off."""
        body = msgspec.json.encode(payload)
        headers = {"Content-Type": "application/json"}
        attempts = self.settings.attempts
        for attempt in range(attempts):
            if self.signing_secret:
                headers[SIGNATURE_HEADER] = sign(self.signing_secret, int(self.clock.now().timestamp()), body)
            try:
                async with self.outbound.open(
                    "POST",
                    url,
                    timeout=self.settings.timeout_seconds,
                    max_bytes=self.settings.max_response_bytes,
                    body=body,
                    headers=headers,
                ) as response:
                    if 200 <= response.status < 300:
                        data = await response.read()
                        try:
                            return msgspec.json.decode(data, type=answer)
                        except msgspec.DecodeError as error:  # not JSON, or not the contract's shape
                            raise _Failed(
                                "malformed", f"the {stage}'s answer is not the contract's: {error}", True
                            ) from None
                    passing = response.status == 429 or response.status >= 500
                    failure = _Failed("status", f"the {stage} answered HTTP {response.status}", not passing)
            except OutboundTimeout as error:
                failure = _Failed("timeout", str(error), False)
            except OutboundError as error:
                reason = "refused" if error.permanent else "unreachable"
                failure = _Failed(reason, str(error), error.permanent)
            if failure.permanent or attempt + 1 == attempts:
                raise failure
            await asyncio.sleep(self.settings.retry_backoff_seconds * 2**attempt)
        raise AssertionError("unreachable: the last attempt raises")

    def _fail(self, stage: str, failed: _Failed) -> NotRecommended:
        self._count(stage, failed.reason)
        log.warning("recommendation failed", stage=stage, reason=failed.reason, error=str(failed))
        return NotRecommended(f"Recommendations could not be had: {failed}", failed.permanent)

    def _count(self, stage: str, reason: str) -> None:
        self.metrics.recommender_failures.labels(stage, reason).inc()


def _endpoints(answer: Any) -> dict[str, TransformedEndpoint]:
    """The transformer's endpoints: `{"Endpoints": {id: endpoint}}`, or the bare map Pinpoint's Lambda functions
    returned. Raises _Failed when it is neither."""
    if isinstance(answer, dict) and set(answer) == {"Endpoints"} and isinstance(answer["Endpoints"], dict):
        answer = answer["Endpoints"]
    try:
        return msgspec.convert(answer, dict[str, TransformedEndpoint])
    except msgspec.ValidationError as error:
        raise _Failed("malformed", f"the transformer's answer is not the contract's: {error}", True) from None


def _item_attributes(items: list[Item]) -> dict[str, list[str]]:
    """Without a transformer, the attributes the recommender gave its items, one value per item in order (a
    Clarion extension: Pinpoint offered only RecommendationItems then)."""
    names = list(dict.fromkeys(name for item in items for name in item.attributes))
    return {name: [item.attributes.get(name, "") for item in items] for name in names}
