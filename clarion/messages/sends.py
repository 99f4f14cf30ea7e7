"""SendMessages and SendUsersMessages: immediate sends to addresses, endpoints and users (API Reference, "Messages").

A send resolves its recipients (endpoints and users are read once per request) and hands them to the send path
(clarion/messages/delivery.py), which decides who must not be sent to, renders, sends and logs. Per-recipient
failures never fail the call: Pinpoint answers 200 with a DeliveryStatus for each. A request's TraceId is the
send's trace key, so retrying a request whose answer was lost does not send twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion.context import CallContext
from clarion.endpoints.service import endpoint_key, user_attributes_by_id
from clarion.errors import BadRequest
from clarion.messages.delivery import (
    Delivery,
    Send,
    Target,
    address_target,
    endpoint_target,
    load_templates,
    mark_opted_out,
)
from clarion.messages.rendering import MessageBuilder, check_configuration_off_loop
from clarion.projects.service import app_not_found, require_app
from clarion.store import endpoints as endpoint_store
from clarion.store.database import Database, Transaction

MAX_RECIPIENTS = 100  # addresses + endpoints per SendMessages, users per SendUsersMessages (API Reference, "Messages")


def _check_count(count: int, what: str) -> None:
    if count == 0:
        raise BadRequest(f"The request names no recipients: {what} must hold at least one")
    if count > MAX_RECIPIENTS:
        raise BadRequest(f"The request names {count} recipients; {what} hold at most {MAX_RECIPIENTS}")


def _context(request: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (request.get("Context") or {}).items()}


def _send(
    ctx: CallContext, app_id: str, request: Mapping[str, Any], targets: list[Target], builder: MessageBuilder
) -> Send:
    trace = request.get("TraceId")
    return Send(app_id, targets, builder, ctx.now, _context(request), trace_key=trace, claim=bool(trace))


async def send_messages(
    db: Database, delivery: Delivery, ctx: CallContext, app_id: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    addresses: Mapping[str, Any] = request.get("Addresses") or {}
    endpoints: Mapping[str, Any] = request.get("Endpoints") or {}
    _check_count(len(addresses) + len(endpoints), "Addresses and Endpoints together")
    for address, item in addresses.items():
        if not item.get("ChannelType"):
            raise BadRequest(f"Addresses[{address!r}].ChannelType is required to know how to reach the address")
    config = request.get("MessageConfiguration") or {}
    await check_configuration_off_loop(config)

    def plan(tx: Transaction) -> tuple[dict[str, dict[str, Any]], list[Target], list[Target]]:
        by_address = [address_target(address, item, ctx.request_id) for address, item in addresses.items()]
        if by_address:  # the project's existence and its opted-out holders of these addresses: one statement
            opted_out = endpoint_store.opted_out_addresses(tx, app_id, [target.address for target in by_address])
            if opted_out is None:
                raise app_not_found(app_id)
            mark_opted_out(by_address, opted_out)
        else:
            require_app(tx, app_id)
        templates = load_templates(tx, request.get("TemplateConfiguration") or {})
        rows = endpoint_store.fetch(tx, app_id, [endpoint_key(e) for e in endpoints])
        users = user_attributes_by_id(tx, app_id, list(rows.values()))
        by_endpoint = [
            endpoint_target(app_id, endpoint_id, rows.get(endpoint_key(endpoint_id)), item, users, ctx.request_id)
            for endpoint_id, item in endpoints.items()
        ]
        return templates, by_address, by_endpoint

    templates, by_address, by_endpoint = await db.read(plan)
    builder = MessageBuilder(config, templates)
    results = (await delivery.send(_send(ctx, app_id, request, [*by_address, *by_endpoint], builder))).results
    response: dict[str, Any] = {"ApplicationId": app_id, "RequestId": ctx.request_id}
    if addresses:
        response["Result"] = {
            address: results[target.message_id] for address, target in zip(addresses, by_address, strict=True)
        }
    if endpoints:
        response["EndpointResult"] = {
            endpoint_id: results[target.message_id] for endpoint_id, target in zip(endpoints, by_endpoint, strict=True)
        }
    return response


async def send_users_messages(
    db: Database, delivery: Delivery, ctx: CallContext, app_id: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    users: Mapping[str, Any] = request.get("Users") or {}
    _check_count(len(users), "Users")
    config = request.get("MessageConfiguration") or {}
    await check_configuration_off_loop(config)

    def plan(tx: Transaction) -> tuple[dict[str, dict[str, Any]], dict[str, list[Target]]]:
        require_app(tx, app_id)
        templates = load_templates(tx, request.get("TemplateConfiguration") or {})
        per_user = {user_id: endpoint_store.of_user(tx, app_id, user_id) for user_id in users}
        attributes = user_attributes_by_id(tx, app_id, [row for rows in per_user.values() for row in rows])
        targets = {
            user_id: [endpoint_target(app_id, row.id, row, users[user_id], attributes, ctx.request_id) for row in rows]
            for user_id, rows in per_user.items()
        }
        return templates, targets

    templates, targets = await db.read(plan)
    builder = MessageBuilder(config, templates)
    flat = [target for user_targets in targets.values() for target in user_targets]
    results = (await delivery.send(_send(ctx, app_id, request, flat, builder))).results
    return {
        "ApplicationId": app_id,
        "RequestId": ctx.request_id,
        "Result": {
            user_id: {target.endpoint_id or "": results[target.message_id] for target in user_targets}
            for user_id, user_targets in targets.items()
        },
    }
