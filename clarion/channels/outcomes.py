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
from typing import Any

import msgspec

from clarion.channels.delivery import DeliveryStatus, ProviderReport
from clarion.channels.phone_numbers import country_of
from clarion.clock import epoch_millis, iso_millis
from clarion.context import CallContext
from clarion.domain_events import OutcomeReported, OutcomesReported
from clarion.endpoints.service import EndpointWriter
from clarion.store import endpoints as endpoint_store
from clarion.store import events as event_store
from clarion.store import journeys as journey_store
from clarion.store import messages as message_store
from clarion.store.database import Database, Transaction
from clarion.store.events import EventRow
from clarion.store.messages import MessageRow

MAX_ATTRIBUTES = 40  # an event's attribute cap ("Amazon Pinpoint quotas")
MAX_VALUE = 200
# An opt-out or opt-in reply counts only if no choice the address made later is recorded already.
OPT_CHOICE_EVENTS = ("_SMS.OPTOUT", "_SMS.OPTIN")
_EVENTS_NAMESPACE = uuid.UUID("6d1c64a4-7f3e-4a55-9a3c-2f1b0c9e8d71")


def send_event_type(channel: str, status: DeliveryStatus) -> str | None:
    """The event a send records (Pinpoint Developer Guide, "Streaming Amazon Pinpoint events"); transactional push,
    voice and custom sends record none."""
    if status in (DeliveryStatus.OPT_OUT, DeliveryStatus.DUPLICATE):
        return None  # nothing was sent
    if channel == "EMAIL":
        return "_email.send" if status is DeliveryStatus.SUCCESSFUL else "_email.rejected"
    if channel == "SMS":
        return "_SMS.BUFFERED" if status is DeliveryStatus.SUCCESSFUL else "_SMS.FAILURE"
    return None


# What campaigns and journeys put in their messages' Context for the transports (push payloads, the custom channel's
# webhook, under the names of Pinpoint's custom-channel event), and what each becomes in the messages' events:
# Pinpoint's event-stream name (Developer Guide, "Campaign event data stream"), or None where the event has it
# already (campaign_id, treatment_id, journey_id, journey_activity_id; the project is the event's own) or where
# nothing reads it. Events stored before keep `ActivityId`, which KPIs and event streams still read.
RENAMED_CONTEXT: dict[str, dict[str, str | None]] = {
    "campaign": {
        "ActivityId": "campaign_activity_id",
        "ApplicationId": None,
        "CampaignId": None,
        "TreatmentId": None,
        "ScheduledTime": None,
    },
    "journey": {"JourneyId": None, "ActivityId": None},
    "": {},  # a direct send's Context is the caller's: every entry kept as it is
}

Contexts = dict[tuple[str, str], list[tuple[str, str]]]


def _context_attributes(message: MessageRow, contexts: Contexts | None) -> list[tuple[str, str]]:
    """The message's Context as event attributes; `contexts` keeps them by Context text and owner (a batch's
    messages usually share one)."""
    owner = "campaign" if message.campaign_id else "journey" if message.journey_id else ""
    key = (message.context, owner)
    found = None if contexts is None else contexts.get(key)
    if found is None:
        renames = RENAMED_CONTEXT[owner]
        named = ((renames.get(k, k), v) for k, v in msgspec.json.decode(message.context).items())
        found = [(name, str(value)) for name, value in named if name is not None]
        if contexts is not None:
            contexts[key] = found
    return found


def _attributes(
    message: MessageRow | None, extra: Mapping[str, str], contexts: Contexts | None = None
) -> dict[str, str]:
    attributes: dict[str, str] = {}
    if message is not None:
        attributes["message_id"] = message.message_id
        attributes["channel_type"] = message.channel
        attributes["destination"] = message.address
        for name in ("campaign_id", "treatment_id", "journey_id"):
            value = getattr(message, name)
            if value:
                attributes[name] = value
        # MessageRequest.Context (API Reference, "Messages"), or the campaign's or journey's own
        for key, value in _context_attributes(message, contexts):
            attributes.setdefault(key, value)
    for key, value in extra.items():
        attributes[key] = str(value)
    kept = list(attributes.items())[:MAX_ATTRIBUTES]
    return {key[:50]: value[:MAX_VALUE] for key, value in kept}


def _event(
    app_id: str,
    endpoint_id: str,
    event_type: str,
    event_id: str,
    at: datetime,
    attributes: dict[str, str],
    metrics: Mapping[str, float] | None = None,
    stamp: tuple[str, int] | None = None,
) -> EventRow:
    """`stamp`: `at` as ISO text and epoch milliseconds, when the caller has them already."""
    timestamp, millis = stamp or (iso_millis(at), epoch_millis(at))
    doc: dict[str, Any] = {"EventType": event_type, "Timestamp": timestamp, "Attributes": attributes}
    if metrics:
        doc["Metrics"] = dict(metrics)
    return EventRow(app_id, endpoint_id, event_id, event_type, millis, millis, None, msgspec.json.encode(doc).decode())


def send_events(
    messages: Sequence[MessageRow], at: datetime, sent_as: Mapping[str, Mapping[str, str]] | None = None
) -> list[EventRow]:
    """The events for messages just handed to transports (endpoint id "" for sends to a bare address); `sent_as`
    adds, by message id, what the content said (an email's sender and subject, an SMS's type)."""
    rows = []
    stamp = (iso_millis(at), epoch_millis(at))
    contexts: Contexts = {}
    for message in messages:
        extra = {"delivery_status": message.status, "status_code": str(message.status_code)}
        extra.update((sent_as or {}).get(message.message_id, {}))
        country = country_of(message.address) if message.channel == "SMS" else None
        if country:  # SMS is priced per destination country; KPIs group by it
            extra["iso_country_code"] = country
        attributes = _attributes(message, extra, contexts)
        endpoint_id = message.endpoint_id or ""
        event_type = send_event_type(message.channel, DeliveryStatus(message.status))
        if event_type is not None:
            rows.append(
                _event(message.app_id, endpoint_id, event_type, message.message_id, at, attributes, None, stamp)
            )
        if message.campaign_id and message.status not in (DeliveryStatus.OPT_OUT, DeliveryStatus.DUPLICATE):
            # Every campaign message, on every channel, is a _campaign.send with its campaign and treatment.
            event_id = f"{message.message_id}:campaign"
            rows.append(_event(message.app_id, endpoint_id, "_campaign.send", event_id, at, attributes, None, stamp))
        if message.journey_id and message.status not in (DeliveryStatus.OPT_OUT, DeliveryStatus.DUPLICATE):
            # Every journey message is a _journey.send; its run and activity come in the message's context.
            event_id = f"{message.message_id}:journey"
            rows.append(_event(message.app_id, endpoint_id, "_journey.send", event_id, at, attributes, None, stamp))
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
    """One id per event, so a re-delivered webhook or a replayed pixel or link is a no-op: opens are recorded once
    per message, clicks once per message and link."""
    # An inbound message (STOP, START) is itself a provider message: its id, or the time the provider gives it,
    # tells a second STOP from a re-delivery.
    inbound = f"{report.provider_message_id}/{endpoint_id}" if report.provider_message_id else None
    if inbound is None and report.occurred_at is not None:
        inbound = f"{report.address}@{epoch_millis(report.occurred_at)}/{endpoint_id}"
    subject = message.message_id if message else inbound or f"{report.address}/{endpoint_id}"
    kind = f"{report.event_type}/{report.distinct_by}" if report.distinct_by else report.event_type
    return uuid.uuid5(_EVENTS_NAMESPACE, f"{subject}/{kind}").hex


async def report(db: Database, writer: EndpointWriter, ctx: CallContext, reports: Sequence[ProviderReport]) -> int:
    """Record what providers reported and opt out (or back in) the addresses they said to, in one write; `ctx` is the
    call that brought the reports (a provider's webhook, a recipient's click). Unmatched reports are dropped; the
    number of reports that found their message (or address) is returned."""
    now = ctx.now

    def work(tx: Transaction) -> int:
        matched = 0
        rows: list[EventRow] = []
        outcomes: list[OutcomeReported] = []
        latest: dict[tuple[str, str], tuple[int, str]] = {}  # (app, endpoint id) -> (when, OptOut): the latest wins

        def choose(app_id: str, endpoint_id: str, at: int, opt_out: str) -> None:
            if latest.get((app_id, endpoint_id), (at, opt_out))[0] <= at:
                latest[(app_id, endpoint_id)] = (at, opt_out)

        for item in reports:
            at = item.occurred_at or now
            message = _find_message(tx, item)
            if message is not None:
                # The event belongs to the message's endpoint; an opt-out covers the address wherever the project
                # holds it, so a send to the bare address is suppressed too.
                targets = {(message.app_id, message.endpoint_id or "")}
                if item.opt_out:
                    for row in endpoint_store.with_address(tx, message.app_id, [message.address]):
                        choose(row.app_id, row.id, epoch_millis(at), "ALL")
            elif item.address:  # an inbound STOP names only the number: every project's endpoints on it
                found = endpoint_store.with_address(tx, None, [item.address])
                targets = {(row.app_id, row.id) for row in found if row.channel_type == item.channel}
            else:
                continue
            matched += 1
            attributes = _attributes(message, {**_carried(tx, message), **item.attributes})
            for app_id, endpoint_id in sorted(targets):
                # A STOP names only the number: its event carries the message it answers, where there is one.
                answered = _answered(tx, app_id, endpoint_id) if message is None and item.opt_out else None
                carried = (
                    _attributes(answered, {**_carried(tx, answered), **item.attributes}) if answered else attributes
                )
                event_id = _event_id(item, message, endpoint_id)
                choice = item.opt_out or item.opt_in
                if choice and message is None and _stale_choice(tx, app_id, endpoint_id, event_id, at):
                    continue
                rows.append(_event(app_id, endpoint_id, item.event_type, event_id, at, carried, item.metrics))
                outcomes.append(OutcomeReported(app_id, endpoint_id, item.event_type, message and message.message_id))
                if choice and endpoint_id:
                    choose(app_id, endpoint_id, epoch_millis(at), "ALL" if item.opt_out else "NONE")
        event_store.append(tx, rows)
        journey_store.keep_outcomes(tx, rows)  # what journeys' conditions read, beyond the events' retention
        choices: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for (app_id, endpoint_id), (_, opt_out) in sorted(latest.items()):
            choices.setdefault(app_id, []).append((endpoint_id, {"OptOut": opt_out}))
        for app_id, items in sorted(choices.items()):
            writer.apply(tx, ctx, app_id, items, all_or_nothing=True)
        if outcomes:
            tx.record(OutcomesReported(tuple(outcomes)))
        return matched

    return await db.write(work)


def _answered(tx: Transaction, app_id: str, endpoint_id: str) -> MessageRow | None:
    """The message a STOP reply answers: the last SMS sent to the endpoint. Pinpoint's `_SMS.OPTOUT` is "the
    customer received the message and replied with the opt-out keyword", so the event carries that message's ids
    (its campaign, or its journey, run and activity, whose conditions test for the opt-out)."""
    for row in message_store.of_endpoints(tx, app_id, [endpoint_id], None, 5):
        if row.channel == "SMS":
            return row
    return None


# What an SMS's later events repeat from its send event: the units it is priced and counted in.
CARRIED = ("number_of_message_parts", "iso_country_code", "message_type")


def _carried(tx: Transaction, message: MessageRow | None) -> dict[str, str]:
    if message is None or message.channel != "SMS":
        return {}
    sent = event_store.doc(tx, message.app_id, message.endpoint_id or "", message.message_id)
    attributes = msgspec.json.decode(sent).get("Attributes") or {} if sent else {}
    return {name: str(attributes[name]) for name in CARRIED if name in attributes}


def _stale_choice(tx: Transaction, app_id: str, endpoint_id: str, event_id: str, at: datetime) -> bool:
    """An opt-out or opt-in reply already recorded (a replay), or older than a choice recorded since: applying it
    would undo what the recipient said last."""
    if event_store.exists(tx, app_id, endpoint_id, event_id):
        return True
    latest = event_store.latest_at(tx, app_id, endpoint_id, OPT_CHOICE_EVENTS)
    return latest is not None and latest > epoch_millis(at)
