"""The one send path: campaigns, journeys and direct sends hand it recipients and a message; it renders each
message, sends it through the project's channel and logs every outcome with its event (API Reference, "Messages").

Two steps, so that a campaign can run its hooks between them:

- `Delivery.audience`: endpoint rows and a send policy (Daily/Total limits, quiet time, an allocation into
  treatments, MaximumDuration: clarion/messages/policy.py) in; the targets by slot, and who was skipped, out.
- `Delivery.send`: one message to targets: custom-delivery redirection, MessagesPerSecond, recommendations (for
  templates naming a recommender), rendering, the transports (concurrently), then the message log and the send
  events in one write. Who must not be sent to (opted out, inactive, unknown, a duplicate address) is decided first
  and logged, not sent. Per-recipient failures never fail the send.

SendMessages and SendUsersMessages (clarion/messages/sends.py) build targets from the request and call `send`; a
campaign batch (clarion/campaigns/delivery.py) calls both; a journey's message step does the same with its
endpoints, limits, quiet time, trace key and attribution, and no campaign specifics.

Idempotency: a send with a trace key is remembered per (project, trace key, recipient); sending it again answers
the first outcome for recipients already handled instead of sending twice (a client's retry after a lost answer,
a campaign batch redelivered after a crash). Without one every send sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec

from clarion.channels.delivery import (
    BatchTransport,
    DeliveryResult,
    DeliveryStatus,
    EmailContent,
    Outbound,
    SmsContent,
    Transport,
)
from clarion.channels.outcomes import send_events
from clarion.channels.phone_numbers import country_of
from clarion.channels.registry import ChannelUnavailable, TransportRegistry
from clarion.channels.sms.parts import message_parts
from clarion.clock import Clock, epoch_millis, iso_millis
from clarion.coordination.buckets import Buckets, pace
from clarion.domain_events import MessageSent, MessagesSent
from clarion.endpoints.service import endpoint_key, endpoint_response, user_attributes_by_id
from clarion.errors import BadRequest, NotFound
from clarion.logs import get_logger
from clarion.messages.policy import SendHistory, SendPolicy, Skipped, decide
from clarion.messages.rendering import CUSTOM, EMAIL, TEMPLATE_MEMBER, MessageBuilder, Recipient, Undeliverable
from clarion.messages.tracking import Tracker
from clarion.metrics import Metrics
from clarion.recommenders.engine import NotRecommended, Recommendations
from clarion.store import coordination as coordination_store
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.messages import MessageRow
from clarion.versions import parse_version

NOT_SENT = 400  # StatusCode for recipients Clarion decided not to send to
# A claimed send whose outcome is not logged this long after its claim was abandoned (its process died): a retry
# may take it over. Longer than any transport's timeout, so a slow send is never taken over while it runs.
CLAIM_STALE_SECONDS = 120.0
CLAIM_WAIT_SECONDS = 10.0  # how long a concurrent duplicate waits for the claimant's outcome
CLAIM_POLL_SECONDS = 0.05

log = get_logger("clarion.messages")


@dataclass(frozen=True, slots=True)
class Attribution:
    """Which campaign (and treatment) or journey a message belongs to: recorded on the message and its events, and
    what Daily and Total limits count by. A journey's run and activity ids belong here once messages record them."""

    campaign_id: str | None = None
    treatment_id: str | None = None
    journey_id: str | None = None

    def owner(self) -> tuple[str, str] | None:
        """The message log column and id whose messages limits count: the campaign's, else the journey's."""
        if self.campaign_id:
            return "campaign_id", self.campaign_id
        if self.journey_id:
            return "journey_id", self.journey_id
        return None


@dataclass(slots=True)
class Target:
    """One recipient of one send."""

    channel: str
    address: str
    endpoint_id: str | None
    user_id: str | None
    overrides: Mapping[str, Any]  # AddressConfiguration / EndpointSendConfiguration
    variables: dict[str, Any]  # message variables
    message_id: str
    request_key: str | None = None
    decided: DeliveryResult | None = None  # set when the message is not handed to a transport
    sent_as: dict[str, str] = field(default_factory=dict)  # what the send event records of the content (sender...)


class CustomDelivery(msgspec.Struct, frozen=True, rename="pascal", kw_only=True):
    """CustomDeliveryConfiguration: endpoints of these channel types (all, when none) go to the webhook instead."""

    delivery_uri: str
    endpoint_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Audience:
    targets: dict[str, list[Target]]  # by slot (treatment id), in the order of the rows given
    skipped: dict[str, Skipped]  # by slot


@dataclass(frozen=True, slots=True)
class Send:
    """One message, rendered per recipient, to a set of targets."""

    app_id: str
    targets: Sequence[Target]
    builder: MessageBuilder
    now: datetime
    context: Mapping[str, str] = field(default_factory=dict)  # MessageRequest.Context, or a campaign's hook event
    trace_key: str | None = None  # each (trace key, recipient) is sent at most once
    attribution: Attribution = Attribution()
    custom_delivery: CustomDelivery | None = None
    messages_per_second: int | None = None  # per campaign or journey, across every process of the group
    # Two callers may send this trace key at once (a client's TraceId): each recipient is claimed in the store
    # before it is sent, so that one of them sends and the other answers its outcome. A campaign batch needs no
    # claim: its queue lease already makes it the only sender.
    claim: bool = False
    # A caller that commits its own write right after the send (a campaign batch, with its ack and tallies) takes
    # the message log and send events into that commit: their write is added here instead of made on its own, one
    # transaction per batch instead of two.
    log_with: list[Callable[[Transaction], None]] | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    results: dict[str, dict[str, Any]]  # MessageResult / EndpointMessageResult shape, by message id
    sent: int  # messages handed to a transport by this call (not decided beforehand, not logged by an earlier one)
    successful: int
    retryable: list[str]  # endpoint ids whose message may yet go through (THROTTLED, TEMPORARY_FAILURE)


def _busy_result(target: Target) -> dict[str, Any]:
    """A recipient a concurrent send with the same TraceId is still sending to: not sent here, and not logged."""
    result: dict[str, Any] = {
        "DeliveryStatus": DeliveryStatus.TEMPORARY_FAILURE.value,
        "MessageId": target.message_id,
        "StatusCode": 409,
        "StatusMessage": "Another request with this TraceId is sending to this recipient; retry to read its outcome",
    }
    if target.endpoint_id is None:
        result["Address"] = target.address
    return result


def _not_sent(status: DeliveryStatus, message: str, code: int = NOT_SENT) -> DeliveryResult:
    return DeliveryResult(status, code, message)


def _message_result(row: MessageRow, with_address: bool, updated_token: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "DeliveryStatus": row.status,
        "MessageId": row.message_id,
        "StatusCode": row.status_code,
        "StatusMessage": row.status_message,
    }
    if with_address:
        result["Address"] = row.address
    if updated_token:
        result["UpdatedToken"] = updated_token
    return result


def load_templates(tx: Transaction, config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The template versions a TemplateConfiguration names (the active version when none is given)."""
    if config.get("InAppTemplate"):
        raise BadRequest("TemplateConfiguration.InAppTemplate cannot be sent directly; in-app messages need a campaign")
    bodies = {}
    for kind, member in TEMPLATE_MEMBER.items():
        reference = config.get(member)
        if not reference:
            continue
        name = reference.get("Name")
        if not name:
            raise BadRequest(f"TemplateConfiguration.{member}.Name is required")
        if reference.get("Version"):
            row = template_store.get_version(tx, name, kind, parse_version(reference["Version"]))
        else:
            row = template_store.get(tx, name, kind)
        if row is None:
            version = f" version {reference['Version']}" if reference.get("Version") else ""
            raise NotFound(f"Template {name!r} of type {kind}{version} not found")
        bodies[kind] = msgspec.json.decode(row.body)
    return bodies


def new_message_id() -> str:
    """A UUID of version 7 (RFC 9562): milliseconds since the epoch in its first 48 bits, 74 random bits after them.
    Messages logged one after the other sort one after the other, so their log rows and send events are added at the
    end of the message and event indexes instead of on a random page of each (a uuid4 cost the writer about 20 µs
    more per message at 100,000 messages: docs/benchmarks.md, "Fewer random pages per message"). Python's `uuid`
    has no version 7 before 3.14."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC's variant
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


# Endpoint keys up to this long are written into request keys as they are; longer ones (up to 1,024 characters) are
# hashed, so that a key stays well within an index entry's limit (PostgreSQL's B-tree takes ~2,700 bytes).
_PLAIN_RECIPIENT = 200


def _trace_prefix(app_id: str, trace_key: str) -> str:
    return hashlib.sha256(f"{app_id}\0{trace_key}".encode()).hexdigest()[:32]


def request_key(prefix: str, target: Target) -> str:
    """What the log remembers a (project, trace key, recipient) by: a digest of the project and trace key (its
    first 128 bits, a fixed 32 characters) and then the recipient, its endpoint key as it is. A campaign's batches
    go out in endpoint order, so their keys are added in order to the unique index instead of at random pages: a
    random key per message cost the writer about 26 µs more per message (docs/benchmarks.md, "Fewer random pages
    per message"). A bare address, or a very long endpoint key, is hashed."""
    if target.endpoint_id:
        key = endpoint_key(target.endpoint_id)
        if len(key) <= _PLAIN_RECIPIENT:
            return f"{prefix}e:{key}"
        return f"{prefix}h:{hashlib.sha256(key.encode()).hexdigest()}"
    return f"{prefix}a:{hashlib.sha256(target.address.encode()).hexdigest()}"


def _legacy_request_key(app_id: str, trace_key: str, target: Target) -> str:
    """The key a send made before ordered keys logged this recipient under (a SHA-256 of everything): a batch in
    flight when the server was upgraded is still recognised, until retention has removed those messages."""
    recipient = f"e:{endpoint_key(target.endpoint_id)}" if target.endpoint_id else f"a:{target.address}"
    return hashlib.sha256(f"{app_id}\0{trace_key}\0{recipient}".encode()).hexdigest()


def _logged(tx: Transaction, keys: list[str], legacy: dict[str, str]) -> dict[str, MessageRow]:
    """The messages already logged for these request keys, by key, those logged under a legacy key included."""
    found = message_store.by_request_keys(tx, [*keys, *legacy])
    return {legacy.get(key, key): row for key, row in found.items()}


def _dedupe_key(channel: str, address: str) -> tuple[str, str]:
    return channel, address.casefold() if channel == EMAIL else address


class Delivery:
    def __init__(
        self,
        db: Database,
        transports: TransportRegistry,
        tracker: Tracker,
        recommendations: Recommendations,
        metrics: Metrics,
        buckets: Buckets,
        clock: Clock,
    ) -> None:
        self.db = db
        self.transports = transports
        self.tracker = tracker
        self.recommendations = recommendations  # what templates naming a RecommenderId render
        self.metrics = metrics  # provider latency here; outcomes are counted from MessagesSent (clarion/reporting.py)
        self.buckets = buckets  # MessagesPerSecond, shared by every process of the group
        self.clock = clock
        self._legacy_read = False
        self._legacy_until: int | None = None  # messages.legacy_keys_until, once read

    async def _legacy_keys(self) -> bool:
        """Whether sends also look for their recipients under request keys of the older form: only in a store
        upgraded while it held some, for 30 days after (migration 30). Looking them up too cost about 8 µs per
        message (docs/benchmarks.md, "Fewer random pages per message")."""
        if not self._legacy_read:
            self._legacy_until = await self.db.read(message_store.legacy_keys_until)
            self._legacy_read = True
        return self._legacy_until is not None and epoch_millis(self.clock.now()) < self._legacy_until

    async def audience(
        self,
        app_id: str,
        rows: Sequence[EndpointRow],
        policy: SendPolicy,
        attribution: Attribution,
        send_at: datetime,
        now: datetime,
        request_id: str,
    ) -> Audience:
        """Who of these endpoints is sent to now, by slot, as targets; `request_id` is their {{RequestId}}."""
        owner = attribution.owner()
        history = SendHistory()
        limits = policy.limits
        if owner is not None and (limits.daily or limits.total) and not policy.expired(now):
            ids = [row.id for row in rows]
            history = await self.db.read(lambda tx: _history(tx, app_id, owner, ids, now))
        decision = decide(rows, policy, history, send_at, now)
        kept = [row for group in decision.slots.values() for row in group]
        users = await self.db.read(lambda tx: user_attributes_by_id(tx, app_id, kept)) if kept else {}
        targets = {
            slot: [endpoint_target(app_id, row.id, row, {}, users, request_id) for row in group]
            for slot, group in decision.slots.items()
        }
        return Audience(targets, decision.skipped)

    async def send(self, send: Send) -> Sent:
        """Send to every target not yet decided; log outcomes and send events. Results are EndpointMessageResult
        shapes for endpoint targets, MessageResult shapes for addresses."""
        targets = send.targets
        if send.custom_delivery is not None:
            _hand_to_custom_channel(targets, send.custom_delivery)
        if send.messages_per_second and targets:
            owner = send.attribution.owner()
            bucket = f"mps:{owner[1] if owner else send.app_id}"
            await pace(self.buckets, bucket, send.messages_per_second, len(targets))
        app_id = send.app_id
        _mark_duplicates(targets)
        legacy: dict[str, str] = {}  # the key each target had before ordered keys, to the key it has now
        if send.trace_key:
            prefix = _trace_prefix(app_id, send.trace_key)
            older = await self._legacy_keys()
            for target in targets:
                target.request_key = request_key(prefix, target)
                if older:
                    legacy[_legacy_request_key(app_id, send.trace_key, target)] = target.request_key
        keys = [target.request_key for target in targets if target.request_key]
        earlier = await self.db.read(lambda tx: _logged(tx, keys, legacy)) if keys else {}
        fresh = [target for target in targets if target.request_key not in earlier]
        busy: list[Target] = []  # claimed by a concurrent send that has not logged its outcome in time
        if send.claim:
            fresh, busy = await self._claim(app_id, fresh, earlier)
        await self._recommend(app_id, fresh, send.builder)
        results = await self._send_all(app_id, fresh, send.builder, send.context)

        created_at = iso_millis(send.now)
        attribution = send.attribution
        shared_context = msgspec.json.encode(dict(send.context)).decode()
        rows = []
        for target, result in zip(fresh, results, strict=True):
            own = target.overrides.get("Context")
            rows.append(
                MessageRow(
                    message_id=target.message_id,
                    app_id=app_id,
                    request_key=target.request_key,
                    endpoint_id=target.endpoint_id,
                    user_id=target.user_id,
                    channel=target.channel,
                    address=target.address,
                    provider_message_id=result.provider_message_id,
                    campaign_id=attribution.campaign_id,
                    treatment_id=attribution.treatment_id,
                    journey_id=attribution.journey_id,
                    status=result.status.value,
                    status_code=result.status_code,
                    status_message=result.message,
                    created_at=created_at,
                    context=msgspec.json.encode(_context_of(target, send.context)).decode() if own else shared_context,
                )
            )

        def record(tx: Transaction) -> None:
            message_store.insert(tx, rows)
            if send.claim:
                coordination_store.claims_done(tx, [row.request_key for row in rows if row.request_key])
            event_store.append(tx, send_events(rows, send.now, {t.message_id: t.sent_as for t in fresh}))
            tx.record(MessagesSent(app_id, tuple(_sent(row) for row in rows)))

        if rows:
            if send.log_with is not None:
                send.log_with.append(record)
            else:
                await self.db.write(record)
            _log_provider_errors(app_id, send, fresh, results)
        shaped: dict[str, dict[str, Any]] = {}
        statuses: list[tuple[Target, DeliveryStatus]] = []
        for target, row, result in zip(fresh, rows, results, strict=True):
            shaped[target.message_id] = _message_result(row, target.endpoint_id is not None, result.updated_address)
            statuses.append((target, result.status))
        for target in targets:
            if target.request_key in earlier:
                row = earlier[target.request_key]
                shaped[target.message_id] = _message_result(row, target.endpoint_id is not None)
                statuses.append((target, DeliveryStatus(row.status)))
        for target in busy:
            shaped[target.message_id] = _busy_result(target)
            statuses.append((target, DeliveryStatus.TEMPORARY_FAILURE))
        return Sent(
            shaped,
            sent=sum(1 for target in fresh if target.decided is None),
            successful=sum(1 for _, status in statuses if status is DeliveryStatus.SUCCESSFUL),
            retryable=[t.endpoint_id for t, status in statuses if t.endpoint_id and status.retryable],
        )

    async def _claim(
        self, app_id: str, targets: list[Target], earlier: dict[str, MessageRow]
    ) -> tuple[list[Target], list[Target]]:
        """Claim each target's request key; (the claimed targets and those without a key, the targets a concurrent
        send claimed and did not log in time). The outcomes a concurrent send logged meanwhile join `earlier`."""
        keyed = [target.request_key for target in targets if target.request_key]
        now = epoch_millis(self.clock.now())
        stale = now - int(CLAIM_STALE_SECONDS * 1000)
        claimed = await self.db.write(lambda tx: coordination_store.claim_sends(tx, app_id, keyed, now, stale))
        waiting = {key for key in keyed if key not in claimed}
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(CLAIM_POLL_SECONDS)
            asked = sorted(waiting)
            found = await self.db.read(lambda tx, asked=asked: message_store.by_request_keys(tx, asked))
            earlier.update(found)
            waiting -= found.keys()
        mine = [target for target in targets if not target.request_key or target.request_key in claimed]
        return mine, [target for target in targets if target.request_key in waiting]

    async def _recommend(self, app_id: str, targets: Sequence[Target], builder: MessageBuilder) -> None:
        """Recipients of a template naming a RecommenderId get its recommendations among their variables, asked
        for all of them at once; one whose recommendations cannot be had is not sent to (docs/recommenders.md)."""
        asking: dict[str, list[Target]] = {}
        for target in targets:
            recommender_id = builder.recommender_for(target.channel) if target.decided is None else None
            if recommender_id:
                asking.setdefault(recommender_id, []).append(target)
        for recommender_id, group in asking.items():
            found = await self.recommendations.for_recipients(app_id, recommender_id, [t.variables for t in group])
            for target, recommended in zip(group, found, strict=True):
                if isinstance(recommended, NotRecommended):
                    status = (
                        DeliveryStatus.PERMANENT_FAILURE if recommended.permanent else DeliveryStatus.TEMPORARY_FAILURE
                    )
                    target.decided = _not_sent(status, recommended.message, NOT_SENT if recommended.permanent else 503)
                else:
                    target.variables = {**target.variables, **recommended}

    async def _send_all(
        self, app_id: str, targets: Sequence[Target], builder: MessageBuilder, context: Mapping[str, str]
    ) -> list[DeliveryResult]:
        """Each target's result, in order: rendered one by one, then sent concurrently, a batch transport's share
        in one call."""
        results: list[DeliveryResult | None] = [target.decided for target in targets]
        opened: dict[str, tuple[Transport, Mapping[str, Any]] | ChannelUnavailable] = {}
        batches: dict[int, tuple[BatchTransport, list[tuple[int, Outbound]]]] = {}
        singles: list[tuple[int, Transport, Outbound]] = []
        for index, target in enumerate(targets):
            if target.decided is not None:
                continue
            found = opened.get(target.channel)
            if found is None:
                try:
                    found = opened[target.channel] = await self.transports.transport_for(app_id, target.channel)
                except ChannelUnavailable as error:
                    found = opened[target.channel] = error
            if isinstance(found, ChannelUnavailable):
                results[index] = _not_sent(DeliveryStatus.PERMANENT_FAILURE, found.message)
                continue
            transport, channel = found
            prepared = await self._prepare(app_id, target, channel, builder, context)
            if isinstance(prepared, DeliveryResult):
                results[index] = prepared
            elif _batches(transport):
                batches.setdefault(id(transport), (transport, []))[1].append((index, prepared))
            else:
                singles.append((index, transport, prepared))

        async def one(index: int, transport: Transport, outbound: Outbound) -> None:
            started = time.monotonic()
            results[index] = await _send(transport, outbound)
            self.metrics.provider_seconds.labels(outbound.channel).observe(time.monotonic() - started)

        async def many(transport: BatchTransport, batch: list[tuple[int, Outbound]]) -> None:
            started = time.monotonic()
            sent = await _send_many(transport, [outbound for _, outbound in batch])
            took = time.monotonic() - started
            for (index, outbound), result in zip(batch, sent, strict=True):
                results[index] = result
                self.metrics.provider_seconds.labels(outbound.channel).observe(took)

        await asyncio.gather(*(one(*single) for single in singles), *(many(*batch) for batch in batches.values()))
        return results  # type: ignore[return-value]

    async def _prepare(
        self,
        app_id: str,
        target: Target,
        channel: Mapping[str, Any],
        builder: MessageBuilder,
        context: Mapping[str, str],
    ) -> Outbound | DeliveryResult:
        """The target's rendered message, or the result that says why there is none."""
        unsubscribe = self.tracker.unsubscribe_url(target.message_id) if target.channel == EMAIL else None
        try:
            content = await builder.content(
                Recipient(target.channel, target.variables, target.overrides),
                channel.get("FromAddress"),
                unsubscribe,
            )
        except Undeliverable as error:
            return _not_sent(DeliveryStatus.PERMANENT_FAILURE, str(error))
        if isinstance(content, EmailContent) and content.html:
            html = self.tracker.rewrite_html(content.html, target.message_id, builder.email_tracking)
            content = replace(content, html=html)
        target.sent_as = content_summary(content, target.address)
        return Outbound(
            channel=target.channel,
            address=target.address,
            message_id=target.message_id,
            app_id=app_id,
            content=content,
            endpoint_id=target.endpoint_id,
            context=_context_of(target, context),
        )


# Recipients ---------------------------------------------------------------------------------------------------


def why_not_sendable(row: EndpointRow) -> DeliveryResult | None:
    """Whether an endpoint can be messaged at all, and if not the outcome that says why: the one rule direct
    sends, campaigns and journeys apply (a segment's "sendable" members are the SQL form of it)."""
    if row.opt_out == "ALL":
        return _not_sent(DeliveryStatus.OPT_OUT, "The endpoint opted out (OptOut is ALL)")
    if row.endpoint_status != "ACTIVE":
        return _not_sent(DeliveryStatus.PERMANENT_FAILURE, "The endpoint is INACTIVE")
    if not row.address or not row.channel_type:
        return _not_sent(DeliveryStatus.PERMANENT_FAILURE, "The endpoint has no Address or ChannelType")
    return None


def endpoint_target(
    app_id: str,
    endpoint_id: str,
    row: EndpointRow | None,
    item: Mapping[str, Any],
    user_attributes: dict[str, dict[str, list[str]]],
    request_id: str,
) -> Target:
    """A stored endpoint as a recipient (`row` None: it does not exist); `item` is its EndpointSendConfiguration."""
    if row is None:
        target = Target("", "", endpoint_id, None, item, {}, new_message_id())
        target.decided = _not_sent(DeliveryStatus.PERMANENT_FAILURE, f"Endpoint {endpoint_id!r} does not exist", 404)
        return target
    variables = endpoint_response(app_id, row, user_attributes.get(row.user_id or ""))
    variables["RequestId"] = request_id
    return Target(
        channel=row.channel_type or "",
        address=row.address or "",
        endpoint_id=row.id,
        user_id=row.user_id,
        overrides=item,
        variables=variables,
        message_id=new_message_id(),
        decided=why_not_sendable(row),
    )


def address_target(address: str, item: Mapping[str, Any], request_id: str) -> Target:
    """A bare address as a recipient; `item` is its AddressConfiguration (with ChannelType)."""
    channel = item["ChannelType"]
    return Target(
        channel=channel,
        address=address,
        endpoint_id=None,
        user_id=None,
        overrides=item,
        variables={"Address": address, "ChannelType": channel, "RequestId": request_id},
        message_id=new_message_id(),
    )


def _history(tx: Transaction, app_id: str, owner: tuple[str, str], ids: list[str], now: datetime) -> SendHistory:
    column, owner_id = owner
    since = iso_millis(now - timedelta(days=1))
    return SendHistory(
        daily=message_store.sent_per_endpoint(tx, app_id, column, owner_id, ids, since),
        total=message_store.sent_per_endpoint(tx, app_id, column, owner_id, ids, None),
    )


def _sent(row: MessageRow) -> MessageSent:
    return MessageSent(
        row.message_id, row.endpoint_id, row.channel, row.status, row.campaign_id, row.treatment_id, row.journey_id
    )


def content_summary(content: object, address: str) -> dict[str, str]:
    """What a message's send event records of its content: an email's sender and subject, an SMS's type, sender,
    parts and destination country (event streams repeat them in every record about the message; the cost view
    prices SMS by country and part from them)."""
    if isinstance(content, EmailContent):
        return {"from_address": content.from_address, "subject": content.subject}
    if isinstance(content, SmsContent):
        summary = {
            "message_type": content.message_type.title(),
            "number_of_message_parts": str(message_parts(content.body)),
        }
        sender = content.origination_number or content.sender_id
        if sender:
            summary["origination_phone_number"] = sender
        country = country_of(address)
        if country:
            summary["iso_country_code"] = country
        return summary
    return {}


def _log_provider_errors(app_id: str, send: Send, targets: Sequence[Target], results: Sequence[DeliveryResult]) -> None:
    """One line per channel, status and code that providers answered with a failure in this send, with a count and
    the first message: a relay that is down costs one line per batch, not one per recipient."""
    failed: dict[tuple[str, str, int], list[str]] = {}
    for target, result in zip(targets, results, strict=True):
        if target.decided is None and result.status is not DeliveryStatus.SUCCESSFUL:
            failed.setdefault((target.channel, result.status.value, result.status_code), []).append(result.message)
    for (channel, status, code), messages in failed.items():
        log.warning(
            "provider_error",
            app_id=app_id,
            campaign_id=send.attribution.campaign_id,
            journey_id=send.attribution.journey_id,
            channel=channel,
            status=status,
            status_code=code,
            count=len(messages),
            message=messages[0],
        )


def _hand_to_custom_channel(targets: Sequence[Target], custom: CustomDelivery) -> None:
    """CustomDeliveryConfiguration: endpoints of the listed types go to the webhook instead of their channel."""
    types = set(custom.endpoint_types)
    for target in targets:
        if not types or target.channel in types:
            target.channel, target.address = "CUSTOM", custom.delivery_uri


async def _send(transport: Transport, outbound: Outbound) -> DeliveryResult:
    """A transport that raises instead of answering costs this recipient an UNKNOWN_FAILURE, not the request."""
    try:
        return await transport.send(outbound)
    except Exception as error:  # any transport bug must not fail the other recipients
        return _transport_failed(error)


async def _send_many(transport: BatchTransport, outbounds: list[Outbound]) -> list[DeliveryResult]:
    """`_send` for a batch: a transport that raises costs its batch's recipients, not the rest of the send."""
    try:
        return await transport.send_many(outbounds)
    except Exception as error:  # any transport bug must not fail the other recipients
        return [_transport_failed(error)] * len(outbounds)


_BATCHING: dict[type, bool] = {}


def _batches(transport: Transport) -> bool:
    """Whether a transport is a BatchTransport, known per class: isinstance against a runtime-checkable Protocol
    inspects its members on every call (14 µs measured, on every send of every recipient)."""
    kind = type(transport)
    known = _BATCHING.get(kind)
    if known is None:
        known = _BATCHING[kind] = isinstance(transport, BatchTransport)
    return known


def _transport_failed(error: Exception) -> DeliveryResult:
    return DeliveryResult(DeliveryStatus.UNKNOWN_FAILURE, 500, f"The transport failed: {error}")


def _context_of(target: Target, context: Mapping[str, str]) -> Mapping[str, str]:
    """MessageRequest.Context with the recipient's own Context over it: the send's own mapping, shared by every
    recipient that has none (nothing writes to it)."""
    own = target.overrides.get("Context")
    if not own:
        return context
    return {**context, **{str(k): str(v) for k, v in own.items()}}


def suppress_opted_out_addresses(tx: Transaction, app_id: str, targets: list[Target]) -> None:
    """A bare address is not sent to when the project holds it on an endpoint that opted out of everything."""
    if not targets:
        return
    rows = endpoint_store.with_address(tx, app_id, [target.address for target in targets])
    mark_opted_out(targets, {(row.channel_type or "", row.address or "") for row in rows if row.opt_out == "ALL"})


def mark_opted_out(targets: list[Target], opted_out: set[tuple[str, str]]) -> None:
    """Decide OPT_OUT for the bare addresses among `opted_out` ((channel type, address) of endpoints with OptOut
    ALL); an email address matches whatever its case."""
    held = {_dedupe_key(channel, address) for channel, address in opted_out}
    for target in targets:
        if _dedupe_key(target.channel, target.address) in held:
            target.decided = _not_sent(DeliveryStatus.OPT_OUT, "The address opted out (an endpoint with OptOut ALL)")


def _mark_duplicates(targets: Sequence[Target]) -> None:
    """The second and later recipients with the same channel and address in one send are not sent to."""
    seen: set[tuple[str, str]] = set()
    for target in targets:
        if not target.address or target.decided is not None:
            continue
        # A custom channel's address is the webhook all its endpoints share: there, the endpoint is the recipient,
        # and a recipient given by address alone is that address.
        key = (
            (CUSTOM, f"e:{target.endpoint_id}" if target.endpoint_id else f"a:{target.address}")
            if target.channel == CUSTOM
            else _dedupe_key(target.channel, target.address)
        )
        if key in seen:
            target.decided = _not_sent(DeliveryStatus.DUPLICATE, "The address appears more than once in this send")
        seen.add(key)
