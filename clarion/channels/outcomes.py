"""Outcome events: what happened to a message after Clarion decided to send it, recorded as Pinpoint events.

Two sources: the send itself (`send_events`: `_email.send`, `_SMS.BUFFERED`, ...) and what providers and
recipients say later (`report`: delivery receipts, bounces, complaints, opens, clicks, unsubscribes, inbound
STOP). Both land in the event log against the message's endpoint, with the campaign, treatment and journey ids
when the message belongs to one, so segments, KPIs and event-triggered campaigns read them like any event. A
report's opt-outs (and inbound START's opt-ins) are written in the same transaction as its events, and the
report is recorded as an OutcomesReported domain event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from clarion.channels.delivery import DeliveryStatus, ProviderReport
from clarion.clock import epoch_millis, iso_millis
from clarion.context import CallContext
from clarion.domain_events import OutcomeReported, OutcomesReported
from clarion.endpoints.service import EndpointWriter
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction
from clarion.store.events import EventRow
from clarion.store.messages import MessageRow

MAX_ATTRIBUTES = 40  # an event's attribute cap (reference §4)
MAX_VALUE = 200
REPEATABLE = {"_email.open", "_email.click"}  # recipients do these many times; everything else is recorded once
_EVENTS_NAMESPACE = uuid.UUID("6d1c64a4-7f3e-4a55-9a3c-2f1b0c9e8d71")


def send_event_type(channel: str, status: DeliveryStatus) -> str | None:
    """The event a send records (reference §3.3); transactional push, voice and custom sends record none."""
    if status in (DeliveryStatus.OPT_OUT, DeliveryStatus.DUPLICATE):
        return None  # nothing was sent
    if channel == "EMAIL":
        return "_email.send" if status is DeliveryStatus.SUCCESSFUL else "_email.rejected"
    if channel == "SMS":
        return "_SMS.BUFFERED" if status is DeliveryStatus.SUCCESSFUL else "_SMS.FAILURE"
    return None


def _attributes(message: MessageRow | None, extra: Mapping[str, str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    if message is not None:
        attributes["message_id"] = message.message_id
        attributes["channel_type"] = message.channel
        attributes["destination"] = message.address
        for name in ("campaign_id", "treatment_id", "journey_id"):
            value = getattr(message, name)
            if value:
                attributes[name] = value
        for key, value in orjson.loads(message.context).items():  # MessageRequest.Context (reference §3.10)
            attributes.setdefault(key, str(value))
    for key, value in extra.items():
        attributes[key] = str(value)
    kept = list(attributes.items())[:MAX_ATTRIBUTES]
    return {key[:50]: value[:MAX_VALUE] for key, value in kept}


def _event(
    app_id: str, endpoint_id: str, event_type: str, event_id: str, at: datetime, attributes: dict[str, str]
) -> EventRow:
    doc = {"EventType": event_type, "Timestamp": iso_millis(at), "Attributes": attributes}
    millis = epoch_millis(at)
    return EventRow(app_id, endpoint_id, event_id, event_type, millis, millis, None, orjson.dumps(doc).decode())


def send_events(messages: Sequence[MessageRow], at: datetime) -> list[EventRow]:
    """The events for messages just handed to transports (endpoint id "" for sends to a bare address)."""
    rows = []
    for message in messages:
        extra = {"delivery_status": message.status, "status_code": str(message.status_code)}
        attributes = _attributes(message, extra)
        endpoint_id = message.endpoint_id or ""
        event_type = send_event_type(message.channel, DeliveryStatus(message.status))
        if event_type is not None:
            rows.append(_event(message.app_id, endpoint_id, event_type, message.message_id, at, attributes))
        if message.campaign_id and message.status not in (DeliveryStatus.OPT_OUT, DeliveryStatus.DUPLICATE):
            # Every campaign message, on every channel, is a _campaign.send with its campaign and treatment.
            event_id = f"{message.message_id}:campaign"
            rows.append(_event(message.app_id, endpoint_id, "_campaign.send", event_id, at, attributes))
    return rows


def _find_message(tx: Transaction, report: ProviderReport) -> MessageRow | None:
    if report.message_id:
        found = message_store.get(tx, report.message_id)
        if found is not None:
            return found
    if report.provider_message_id:
        return message_store.by_provider_id(tx, report.channel, report.provider_message_id)
    return None


def _event_id(report: ProviderReport, message: MessageRow | None, endpoint_id: str) -> str:
    if report.event_type in REPEATABLE:
        return uuid.uuid4().hex
    # An inbound message (STOP, START) is itself a provider message: its id tells a second STOP from a re-delivery.
    inbound = f"{report.provider_message_id}/{endpoint_id}" if report.provider_message_id else None
    subject = message.message_id if message else inbound or f"{report.address}/{endpoint_id}"
    return uuid.uuid5(_EVENTS_NAMESPACE, f"{subject}/{report.event_type}").hex  # a re-delivered webhook is a no-op


async def report(db: Database, writer: EndpointWriter, ctx: CallContext, reports: Sequence[ProviderReport]) -> None:
    """Record what providers reported and opt out the addresses they said to, in one write; `ctx` is the call that
    brought the reports (a provider's webhook, a recipient's click). Unmatched reports are dropped."""
    now = ctx.now

    def work(tx: Transaction) -> None:
        rows: list[EventRow] = []
        outcomes: list[OutcomeReported] = []
        opt_outs: set[tuple[str, str]] = set()  # (app, endpoint id)
        opt_ins: set[tuple[str, str]] = set()  # START: the number receives again
        for item in reports:
            message = _find_message(tx, item)
            if message is not None:
                # The event belongs to the message's endpoint; an opt-out covers the address wherever the project
                # holds it, so a send to the bare address is suppressed too.
                targets = {(message.app_id, message.endpoint_id or "")}
                if item.opt_out:
                    found = endpoint_store.with_address(tx, message.app_id, [message.address])
                    opt_outs.update((row.app_id, row.id) for row in found)
            elif item.address:  # an inbound STOP names only the number: every project's endpoints on it
                found = endpoint_store.with_address(tx, None, [item.address])
                targets = {(row.app_id, row.id) for row in found if row.channel_type == item.channel}
                if item.opt_out:
                    opt_outs.update(targets)
                if item.opt_in:
                    opt_ins.update(targets)
            else:
                continue
            attributes = _attributes(message, item.attributes)
            for app_id, endpoint_id in sorted(targets):
                event_id = _event_id(item, message, endpoint_id)
                rows.append(_event(app_id, endpoint_id, item.event_type, event_id, now, attributes))
                outcomes.append(OutcomeReported(app_id, endpoint_id, item.event_type, message and message.message_id))
                if item.opt_out and endpoint_id:
                    opt_outs.add((app_id, endpoint_id))
        event_store.append(tx, rows)
        choices: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for choice, endpoints in (("ALL", opt_outs), ("NONE", opt_ins - opt_outs)):
            for app_id, endpoint_id in sorted(endpoints):
                choices.setdefault(app_id, []).append((endpoint_id, {"OptOut": choice}))
        for app_id, items in sorted(choices.items()):
            writer.apply(tx, ctx, app_id, items, all_or_nothing=True)
        if outcomes:
            tx.record(OutcomesReported(tuple(outcomes)))

    await db.write(work)
