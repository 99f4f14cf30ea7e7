"""PutEvents: validate each event, upsert the endpoints that come with them, append to the event log.

Pinpoint answers 202 for the request and reports every endpoint and event on its own (API Reference, "Events"), so a
bad event costs only itself. Limits are the documented ones ("Amazon Pinpoint quotas"). The accepted events are
recorded as an EventsIngested domain event, which event-triggered campaigns subscribe to; those of a type that
starts one of the project's journeys are also kept for the journey engine in the same transaction.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.clock import epoch_millis
from clarion.context import CallContext
from clarion.domain_events import EventsIngested, IngestedEvent, JourneyEntriesHeld
from clarion.endpoints import rules as endpoint_rules
from clarion.endpoints.service import EndpointWriter
from clarion.errors import BadRequest, PinpointError
from clarion.projects.service import require_app
from clarion.store import events as event_store
from clarion.store import journeys as journey_store
from clarion.store.database import Database, Transaction
from clarion.store.events import EventRow
from clarion.store.names import NameRegistry

MAX_EVENTS_PER_REQUEST = 100
MAX_EVENT_BYTES = 1000 * 1024
MAX_KEYS_PER_EVENT = 40  # attributes and metrics together
MAX_KEY_LENGTH = 50
MAX_ATTRIBUTE_VALUE = 200
MAX_CUSTOM_EVENT_TYPES = 1500
MAX_ATTRIBUTE_KEYS = 500
MAX_METRIC_KEYS = 500

EVENT_TYPES = "event-types"
EVENT_ATTRIBUTES = "event-attributes"
EVENT_METRICS = "event-metrics"

ACCEPTED = {"StatusCode": 202, "Message": "Accepted"}


def _rejected(message: str) -> dict[str, Any]:
    return {"StatusCode": 400, "Message": message}


def parse_timestamp(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{where}: {value!r} is not an ISO-8601 timestamp (2026-01-01T10:00:00.000Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_event(event: dict[str, Any], where: str) -> datetime:
    """Reject an event the way Pinpoint drops it; return its timestamp."""
    if not event.get("EventType"):
        raise BadRequest(f"{where}.EventType must not be empty")
    attributes = event.get("Attributes") or {}
    metrics = event.get("Metrics") or {}
    if len(attributes) + len(metrics) > MAX_KEYS_PER_EVENT:
        raise BadRequest(
            f"{where} has {len(attributes) + len(metrics)} attributes and metrics; an event has at most "
            f"{MAX_KEYS_PER_EVENT}"
        )
    for key in (*attributes, *metrics):
        if not key or len(key) > MAX_KEY_LENGTH:
            raise BadRequest(f"{where}: key {key[:60]!r} must be 1 to {MAX_KEY_LENGTH} characters")
    for key, value in attributes.items():
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise BadRequest(f"{where}.Attributes.{key} is longer than {MAX_ATTRIBUTE_VALUE} characters")
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise BadRequest(f"{where}.Metrics.{key} must be a finite number")
    session = event.get("Session")
    if session:
        parse_timestamp(session["StartTimestamp"], f"{where}.Session.StartTimestamp")
        if session.get("StopTimestamp"):
            parse_timestamp(session["StopTimestamp"], f"{where}.Session.StopTimestamp")
    return parse_timestamp(event["Timestamp"], f"{where}.Timestamp")


class _EventQuotas:
    """The per-project caps on distinct event types, attribute keys and metric keys."""

    def __init__(self, names: NameRegistry, tx: Transaction, app_id: str) -> None:
        self.names, self.tx, self.app_id = names, tx, app_id
        self.caps = {
            EVENT_TYPES: MAX_CUSTOM_EVENT_TYPES,
            EVENT_ATTRIBUTES: MAX_ATTRIBUTE_KEYS,
            EVENT_METRICS: MAX_METRIC_KEYS,
        }
        self.known = {kind: set(names.known(tx, app_id, kind)) for kind in self.caps}
        self.added: dict[str, set[str]] = {kind: set() for kind in self.caps}

    def admit(self, event: dict[str, Any]) -> None:
        event_type = event["EventType"]
        attributes = event.get("Attributes") or ()
        metrics = event.get("Metrics") or ()
        known = self.known
        if (
            event_type in known[EVENT_TYPES]
            and known[EVENT_ATTRIBUTES].issuperset(attributes)
            and known[EVENT_METRICS].issuperset(metrics)
        ):
            return  # the common case, checked by set operations alone: every name is one the project uses
        wanted = {EVENT_TYPES: (event_type,), EVENT_ATTRIBUTES: attributes, EVENT_METRICS: metrics}
        # The caps are on custom names; Pinpoint's own ("_session.start", "_item_price") are free.
        if all(n in known[kind] or n.startswith("_") for kind, names in wanted.items() for n in names):
            return
        fresh = {kind: {n for n in names if not n.startswith("_")} - self.known[kind] for kind, names in wanted.items()}
        for kind, names in fresh.items():
            if names and len(self.known[kind]) + len(names) > self.caps[kind]:
                raise BadRequest(
                    f"The project already uses {len(self.known[kind])} {kind.replace('-', ' ')}; "
                    f"{', '.join(sorted(names))} would pass the limit of {self.caps[kind]}"
                )
        for kind, names in fresh.items():
            self.known[kind] |= names
            self.added[kind] |= names

    def record(self) -> None:
        for kind, names in self.added.items():
            if names:
                self.names.add(self.tx, self.app_id, kind, names)


async def put_events(
    db: Database, writer: EndpointWriter, ctx: CallContext, app_id: str, batch: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    total = sum(len(item.get("Events") or {}) for item in batch.values())
    if total > MAX_EVENTS_PER_REQUEST:
        raise BadRequest(f"BatchItem holds {total} events; a request holds at most {MAX_EVENTS_PER_REQUEST}")

    results: dict[str, dict[str, Any]] = {}
    endpoint_items: list[tuple[str, dict[str, Any]]] = []
    valid_events: list[tuple[str, str, dict[str, Any], datetime, bytes]] = []
    for endpoint_id, item in batch.items():
        where = f"BatchItem[{endpoint_id!r}]"
        outcome: dict[str, Any] = {"EndpointItemResponse": ACCEPTED, "EventsItemResponse": {}}
        results[endpoint_id] = outcome
        endpoint = item.get("Endpoint") or {}
        try:
            endpoint_rules.check_endpoint_id(endpoint_id, where)
        except PinpointError as error:  # no valid id: neither the endpoint nor its events can be kept
            outcome["EndpointItemResponse"] = _rejected(error.message)
            outcome["EventsItemResponse"] = {
                event_id: _rejected(error.message) for event_id in item.get("Events") or {}
            }
            continue
        try:
            if endpoint:
                endpoint_rules.check_endpoint_request(endpoint, f"{where}.Endpoint")
                endpoint_items.append((endpoint_id, endpoint))
        except PinpointError as error:
            outcome["EndpointItemResponse"] = _rejected(error.message)
        for event_id, event in (item.get("Events") or {}).items():
            try:
                at = check_event(event, f"{where}.Events[{event_id!r}]")
                encoded = msgspec.json.encode(event)
                size = len(encoded)
                if size > MAX_EVENT_BYTES:
                    raise BadRequest(f"Event {event_id!r} is {size} bytes; an event is at most {MAX_EVENT_BYTES}")
                valid_events.append((endpoint_id, event_id, event, at, encoded))
            except PinpointError as error:
                outcome["EventsItemResponse"][event_id] = _rejected(error.message)

    arrival = epoch_millis(ctx.now)

    def work(tx: Transaction) -> None:
        require_app(tx, app_id)
        outcomes = writer.apply(tx, ctx, app_id, endpoint_items, all_or_nothing=False)
        for (endpoint_id, _), problem in zip(endpoint_items, outcomes, strict=True):
            if problem:
                results[endpoint_id]["EndpointItemResponse"] = _rejected(problem)
        quotas = _EventQuotas(writer.names, tx, app_id)
        rows = []
        ingested = []
        for endpoint_id, event_id, event, at, encoded in valid_events:
            try:
                quotas.admit(event)
            except PinpointError as error:
                results[endpoint_id]["EventsItemResponse"][event_id] = _rejected(error.message)
                continue
            session = event.get("Session") or {}
            rows.append(
                EventRow(
                    app_id,
                    endpoint_id,
                    event_id,
                    event["EventType"],
                    epoch_millis(at),
                    arrival,
                    session.get("Id"),
                    encoded.decode(),
                )
            )
            results[endpoint_id]["EventsItemResponse"][event_id] = ACCEPTED
            ingested.append(IngestedEvent(endpoint_id, event_id, event))
        quotas.record()
        event_store.append(tx, rows)
        journey_store.keep_outcomes(tx, rows)  # push opens naming a journey: its conditions read them
        if ingested:
            tx.record(EventsIngested(app_id, tuple(ingested)))
        starting = [(row.endpoint_id, row.event_type, row.doc) for row in rows]
        if starting and journey_store.hold_event_entries(tx, app_id, starting, arrival):
            tx.record(JourneyEntriesHeld(app_id))

    with writer.names.undone_on_error(app_id):
        await db.write(work)
    return {"Results": results}
