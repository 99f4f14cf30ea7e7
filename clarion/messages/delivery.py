"""SendMessages and SendUsersMessages: immediate sends to addresses, endpoints and users (reference §3.10).

A send resolves its recipients (endpoints and users are read once per request), decides who must not be sent to
(opted out, inactive, unknown, a duplicate address), renders each message, hands the rest to the channel's
transport concurrently, then logs every outcome and its event in one write. Per-recipient failures never fail
the call: Pinpoint answers 200 with a DeliveryStatus for each.

Idempotency: a request carrying a TraceId is remembered per (project, TraceId, recipient); sending it again
answers the first outcome for recipients already handled instead of sending twice (a client retry after a lost
answer). Without a TraceId every request sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from clarion.channels.delivery import DeliveryResult, DeliveryStatus, EmailContent, Outbound, Transport
from clarion.channels.outcomes import send_events
from clarion.channels.registry import ChannelUnavailable, TransportRegistry
from clarion.clock import iso_millis
from clarion.context import CallContext
from clarion.endpoints.service import endpoint_key, endpoint_response, user_attributes_by_id
from clarion.errors import BadRequest, NotFound
from clarion.messages.rendering import (
    CUSTOM,
    EMAIL,
    TEMPLATE_MEMBER,
    MessageBuilder,
    Recipient,
    Undeliverable,
    check_configuration,
)
from clarion.messages.tracking import Tracker
from clarion.projects.service import require_app
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store import templates as template_store
from clarion.store.database import Database, Transaction
from clarion.store.endpoints import EndpointRow
from clarion.store.messages import MessageRow
from clarion.versions import parse_version

MAX_RECIPIENTS = 100  # addresses + endpoints per SendMessages, users per SendUsersMessages (reference §3.10)
NOT_SENT = 400  # StatusCode for recipients Clarion decided not to send to


@dataclass(frozen=True, slots=True)
class Campaign:
    """Which campaign or journey a message belongs to; recorded on the message and its events."""

    campaign_id: str | None = None
    treatment_id: str | None = None
    journey_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    results: dict[str, dict[str, Any]]  # result shape by message id
    sent: int  # messages handed to a transport by this call (not decided beforehand, not logged by an earlier one)


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


def _check_count(count: int, what: str) -> None:
    if count == 0:
        raise BadRequest(f"The request names no recipients: {what} must hold at least one")
    if count > MAX_RECIPIENTS:
        raise BadRequest(f"The request names {count} recipients; {what} hold at most {MAX_RECIPIENTS}")


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
        bodies[kind] = orjson.loads(row.body)
    return bodies


def _dedupe_key(channel: str, address: str) -> tuple[str, str]:
    return channel, address.casefold() if channel == EMAIL else address


class Messages:
    def __init__(self, db: Database, transports: TransportRegistry, tracker: Tracker) -> None:
        self.db = db
        self.transports = transports
        self.tracker = tracker

    # The two operations ---------------------------------------------------------------------------------------

    async def send_messages(self, ctx: CallContext, app_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        addresses: Mapping[str, Any] = request.get("Addresses") or {}
        endpoints: Mapping[str, Any] = request.get("Endpoints") or {}
        _check_count(len(addresses) + len(endpoints), "Addresses and Endpoints together")
        for address, item in addresses.items():
            if not item.get("ChannelType"):
                raise BadRequest(f"Addresses[{address!r}].ChannelType is required to know how to reach the address")
        config = request.get("MessageConfiguration") or {}
        check_configuration(config)

        def plan(tx: Transaction) -> tuple[dict[str, dict[str, Any]], list[Target], list[Target]]:
            require_app(tx, app_id)
            templates = load_templates(tx, request.get("TemplateConfiguration") or {})
            rows = endpoint_store.fetch(tx, app_id, [endpoint_key(e) for e in endpoints])
            users = user_attributes_by_id(tx, app_id, list(rows.values()))
            by_address = [self._address_target(address, item, ctx) for address, item in addresses.items()]
            by_endpoint = [
                self.endpoint_target(app_id, endpoint_id, rows.get(endpoint_key(endpoint_id)), item, users, ctx)
                for endpoint_id, item in endpoints.items()
            ]
            _suppress_opted_out(tx, app_id, by_address)
            return templates, by_address, by_endpoint

        templates, by_address, by_endpoint = await self.db.read(plan)
        builder = MessageBuilder(config, templates)
        targets = [*by_address, *by_endpoint]
        rows = (await self.deliver(ctx, app_id, targets, builder, _context(request), request.get("TraceId"))).results
        response: dict[str, Any] = {"ApplicationId": app_id, "RequestId": ctx.request_id}
        if addresses:
            response["Result"] = {
                address: rows[target.message_id] for address, target in zip(addresses, by_address, strict=True)
            }
        if endpoints:
            response["EndpointResult"] = {
                endpoint_id: rows[target.message_id] for endpoint_id, target in zip(endpoints, by_endpoint, strict=True)
            }
        return response

    async def send_users_messages(self, ctx: CallContext, app_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        users: Mapping[str, Any] = request.get("Users") or {}
        _check_count(len(users), "Users")
        config = request.get("MessageConfiguration") or {}
        check_configuration(config)

        def plan(tx: Transaction) -> tuple[dict[str, dict[str, Any]], dict[str, list[Target]]]:
            require_app(tx, app_id)
            templates = load_templates(tx, request.get("TemplateConfiguration") or {})
            per_user = {user_id: endpoint_store.of_user(tx, app_id, user_id) for user_id in users}
            attributes = user_attributes_by_id(tx, app_id, [row for rows in per_user.values() for row in rows])
            targets = {
                user_id: [self.endpoint_target(app_id, row.id, row, users[user_id], attributes, ctx) for row in rows]
                for user_id, rows in per_user.items()
            }
            return templates, targets

        templates, targets = await self.db.read(plan)
        builder = MessageBuilder(config, templates)
        flat = [target for user_targets in targets.values() for target in user_targets]
        rows = (await self.deliver(ctx, app_id, flat, builder, _context(request), request.get("TraceId"))).results
        return {
            "ApplicationId": app_id,
            "RequestId": ctx.request_id,
            "Result": {
                user_id: {target.endpoint_id or "": rows[target.message_id] for target in user_targets}
                for user_id, user_targets in targets.items()
            },
        }

    # Delivery, shared with campaigns and journeys ------------------------------------------------------------

    async def deliver(
        self,
        ctx: CallContext,
        app_id: str,
        targets: Sequence[Target],
        builder: MessageBuilder,
        context: Mapping[str, str],
        trace_id: str | None = None,
        campaign: Campaign = Campaign(),
    ) -> Delivery:
        """Send to every target not yet decided; log outcomes and send events. Returns result shapes by message id
        (EndpointMessageResult for endpoint targets, MessageResult for addresses).

        `context` is MessageRequest.Context (or a campaign's); `trace_id` makes the send idempotent per recipient.
        """
        _mark_duplicates(targets)
        if trace_id:
            for target in targets:
                recipient = f"e:{endpoint_key(target.endpoint_id)}" if target.endpoint_id else f"a:{target.address}"
                digest = hashlib.sha256(f"{app_id}\0{trace_id}\0{recipient}".encode()).hexdigest()
                target.request_key = digest
        keys = [target.request_key for target in targets if target.request_key]
        earlier = await self.db.read(lambda tx: message_store.by_request_keys(tx, keys)) if keys else {}
        fresh = [target for target in targets if target.request_key not in earlier]
        results = await asyncio.gather(*(self._send_one(app_id, target, builder, context) for target in fresh))

        now = ctx.now
        created_at = iso_millis(now)
        rows = []
        for target, result in zip(fresh, results, strict=True):
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
                    campaign_id=campaign.campaign_id,
                    treatment_id=campaign.treatment_id,
                    journey_id=campaign.journey_id,
                    status=result.status.value,
                    status_code=result.status_code,
                    status_message=result.message,
                    created_at=created_at,
                    context=orjson.dumps(_context_of(target, context)).decode(),
                )
            )

        def record(tx: Transaction) -> None:
            message_store.insert(tx, rows)
            event_store.append(tx, send_events(rows, now))

        if rows:
            await self.db.write(record)
        shaped: dict[str, dict[str, Any]] = {}
        for target, row, result in zip(fresh, rows, results, strict=True):
            shaped[target.message_id] = _message_result(row, target.endpoint_id is not None, result.updated_address)
        for target in targets:
            if target.request_key in earlier:
                shaped[target.message_id] = _message_result(earlier[target.request_key], target.endpoint_id is not None)
        return Delivery(shaped, sum(1 for target in fresh if target.decided is None))

    async def _send_one(
        self, app_id: str, target: Target, builder: MessageBuilder, context: Mapping[str, str]
    ) -> DeliveryResult:
        if target.decided is not None:
            return target.decided
        try:
            transport, channel = await self.transports.transport_for(app_id, target.channel)
        except ChannelUnavailable as error:
            return _not_sent(DeliveryStatus.PERMANENT_FAILURE, error.message)
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
            content = replace(content, html=self.tracker.rewrite_html(content.html, target.message_id))
        outbound = Outbound(
            channel=target.channel,
            address=target.address,
            message_id=target.message_id,
            app_id=app_id,
            content=content,
            endpoint_id=target.endpoint_id,
            context=_context_of(target, context),
        )
        return await _send(transport, outbound)

    # Recipients -------------------------------------------------------------------------------------------------

    @staticmethod
    def _address_target(address: str, item: Mapping[str, Any], ctx: CallContext) -> Target:
        channel = item["ChannelType"]
        return Target(
            channel=channel,
            address=address,
            endpoint_id=None,
            user_id=None,
            overrides=item,
            variables={"Address": address, "ChannelType": channel, "RequestId": ctx.request_id},
            message_id=str(uuid.uuid4()),
        )

    @staticmethod
    def endpoint_target(
        app_id: str,
        endpoint_id: str,
        row: EndpointRow | None,
        item: Mapping[str, Any],
        user_attributes: dict[str, dict[str, list[str]]],
        ctx: CallContext,
    ) -> Target:
        if row is None:
            target = Target("", "", endpoint_id, None, item, {}, str(uuid.uuid4()))
            target.decided = _not_sent(
                DeliveryStatus.PERMANENT_FAILURE, f"Endpoint {endpoint_id!r} does not exist", 404
            )
            return target
        variables = endpoint_response(app_id, row, user_attributes.get(row.user_id or ""))
        variables["RequestId"] = ctx.request_id
        target = Target(
            channel=row.channel_type or "",
            address=row.address or "",
            endpoint_id=row.id,
            user_id=row.user_id,
            overrides=item,
            variables=variables,
            message_id=str(uuid.uuid4()),
        )
        if row.opt_out == "ALL":
            target.decided = _not_sent(DeliveryStatus.OPT_OUT, "The endpoint opted out (OptOut is ALL)")
        elif row.endpoint_status != "ACTIVE":
            target.decided = _not_sent(DeliveryStatus.PERMANENT_FAILURE, "The endpoint is INACTIVE")
        elif not row.address or not row.channel_type:
            target.decided = _not_sent(DeliveryStatus.PERMANENT_FAILURE, "The endpoint has no Address or ChannelType")
        return target


async def _send(transport: Transport, outbound: Outbound) -> DeliveryResult:
    """A transport that raises instead of answering costs this recipient an UNKNOWN_FAILURE, not the request."""
    try:
        return await transport.send(outbound)
    except Exception as error:  # any transport bug must not fail the other recipients
        return DeliveryResult(DeliveryStatus.UNKNOWN_FAILURE, 500, f"The transport failed: {error}")


def _context(request: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (request.get("Context") or {}).items()}


def _context_of(target: Target, context: Mapping[str, str]) -> dict[str, str]:
    """MessageRequest.Context with the recipient's own Context over it."""
    return {**context, **{str(k): str(v) for k, v in (target.overrides.get("Context") or {}).items()}}


def _suppress_opted_out(tx: Transaction, app_id: str, targets: list[Target]) -> None:
    """A bare address is not sent to when the project holds it on an endpoint that opted out of everything."""
    if not targets:
        return
    rows = endpoint_store.with_address(tx, app_id, [target.address for target in targets])
    opted_out = {_dedupe_key(row.channel_type or "", row.address or "") for row in rows if row.opt_out == "ALL"}
    for target in targets:
        if _dedupe_key(target.channel, target.address) in opted_out:
            target.decided = _not_sent(DeliveryStatus.OPT_OUT, "The address opted out (an endpoint with OptOut ALL)")


def _mark_duplicates(targets: Sequence[Target]) -> None:
    """The second and later recipients with the same channel and address in one send are not sent to."""
    seen: set[tuple[str, str]] = set()
    for target in targets:
        if not target.address or target.decided is not None:
            continue
        # A custom channel's address is the webhook all its recipients share: there, the endpoint is the recipient.
        key = (
            (CUSTOM, target.endpoint_id or "")
            if target.channel == CUSTOM
            else _dedupe_key(target.channel, target.address)
        )
        if key in seen:
            target.decided = _not_sent(DeliveryStatus.DUPLICATE, "The address appears more than once in this send")
        seen.add(key)
