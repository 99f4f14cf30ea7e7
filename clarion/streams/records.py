"""Clarion's events as Pinpoint's event-stream records: one JSON object per event, in the format Pinpoint wrote to
Kinesis and Firehose ("Streaming Amazon Pinpoint events to Kinesis" in Pinpoint's developer guide), so consumers
written for Pinpoint read them unchanged.

Two shapes share the envelope (event_type, event_timestamp, arrival_timestamp, event_version, application, client,
device, session, attributes, metrics, awsAccountId):

- app events (PutEvents: sessions, custom events, purchases, push engagement reported by the SDK): version "3.0",
  the SDK and app fields of the event, the device as the endpoint's Demographic describes it, the session;
- server events (`_campaign.send`, `_journey.*`, `_email.*`, `_SMS.*`): version "3.1", `sdk` and `session` empty,
  attributes under Pinpoint's names, the endpoint as a JSON string in `client_context` for campaign and journey
  sends, and the email `facets` (the message, then what happened to it).

The device and the endpoint are the endpoint as stored when the record is built (a record shipped soon after its
event sees the endpoint as the event left it). docs/event-streams.md lists every mapping, including the values
Pinpoint never documented (send statuses, feedback words).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.channels.phone_numbers import country_of
from clarion.store import streams as stream_store
from clarion.store.database import Transaction
from clarion.store.events import is_server_event
from clarion.store.streams import SentMessage, StreamEvent

APP_VERSION = "3.0"
SERVER_VERSION = "3.1"

# Pinpoint's send statuses for campaign and journey messages; every failure Clarion records is a FAILURE.
SEND_STATUS = {"SUCCESSFUL": "SUCCESS"}
# The `feedback` attribute of email records, by event type (a click's is the link clicked).
FEEDBACK = {
    "_email.send": "received",
    "_email.delivered": "delivered",
    "_email.open": "opened",
    "_email.hardbounce": "bounced",
    "_email.softbounce": "bounced",
    "_email.complaint": "complained",
    "_email.rejected": "rejected",
    "_email.unsubscribe": "unsubscribed",
    "_email.rendering_failure": "rendering_failure",
}
# Which mail event an email record's facets describe, by event type.
MAIL_EVENT = {
    "_email.send": "send",
    "_email.delivered": "delivery",
    "_email.open": "open",
    "_email.click": "click",
    "_email.hardbounce": "bounce",
    "_email.softbounce": "bounce",
    "_email.complaint": "complaint",
    "_email.rejected": "reject",
    "_email.unsubscribe": "unsubscribe",
    "_email.rendering_failure": "rendering_failure",
}
# The record_status of SMS records that no provider report gave one.
SMS_STATUS = {"_SMS.BUFFERED": "SUCCESSFUL", "_SMS.SUCCESS": "DELIVERED", "_SMS.OPTOUT": "OPTED_OUT"}
CAMPAIGN_ATTRIBUTES = ("campaign_id", "campaign_activity_id", "treatment_id")
JOURNEY_ATTRIBUTES = ("journey_id", "journey_run_id", "journey_activity_id", "journey_activity_type")
SMS_ATTRIBUTES = (
    "origination_phone_number",
    "destination_phone_number",
    "record_status",
    "iso_country_code",
    "number_of_message_parts",
    "message_type",
)

_decode = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


# App events are most of a stream and all of one shape, so they skip dicts: the stored event is decoded straight
# into the fields a record uses, and the record is encoded from a Struct whose parts that repeat across a batch
# (application, device, session) are encoded once per batch and embedded as raw JSON. None of these Structs can
# be part of a reference cycle, so the garbage collector does not track them (gc=False): thousands are made per
# batch, and tracked ones made collections walk them.


class _Session(msgspec.Struct, rename="pascal", gc=False):
    id: str | None = None
    start_timestamp: str | None = None
    stop_timestamp: str | None = None


class _AppEvent(msgspec.Struct, rename="pascal", gc=False):
    """The parts of a stored app event (an event of PutEvents, shapes.Event) its record uses."""

    attributes: dict[str, str] | None = None
    metrics: dict[str, float] | None = None
    app_package_name: str | None = None
    app_title: str | None = None
    app_version_code: str | None = None
    sdk_name: str | None = None
    client_sdk_version: str | None = None
    session: _Session | None = None


class _Client(msgspec.Struct, gc=False):
    client_id: str


class _AppRecord(msgspec.Struct, gc=False):
    """An app event's record, its fields in the order Pinpoint writes them."""

    event_type: str
    event_timestamp: int
    arrival_timestamp: int
    event_version: str
    client: _Client
    aws_account_id: str = msgspec.field(name="awsAccountId")
    application: msgspec.Raw
    device: msgspec.Raw
    session: msgspec.Raw
    attributes: dict[str, str]
    metrics: dict[str, float]


_decode_app_event = msgspec.json.Decoder(_AppEvent).decode


def _app_event(doc: str) -> _AppEvent:
    """The stored event; one whose attributes or metrics are not PutEvents' types (written by hand into the store,
    or by an older version) has them turned into strings and numbers the way Pinpoint's records carry them."""
    try:
        return _decode_app_event(doc)
    except msgspec.ValidationError:
        loose = _decode(doc)
        loose["Attributes"] = {str(k): str(v) for k, v in (loose.get("Attributes") or {}).items()}
        loose["Metrics"] = {str(k): float(v) for k, v in (loose.get("Metrics") or {}).items()}
        return msgspec.convert(loose, _AppEvent, strict=False)


_decode_app_events = msgspec.json.Decoder(list[_AppEvent]).decode


def _app_events(docs: list[str]) -> list[_AppEvent]:
    """The stored app events of a batch, decoded in one call (one by one when a document needs loosening)."""
    try:
        return _decode_app_events("[" + ",".join(docs) + "]")
    except msgspec.ValidationError:
        return [_app_event(doc) for doc in docs]


def needs_endpoint(event_type: str) -> bool:
    """App events describe the device; campaign and journey sends carry the endpoint."""
    return not event_type.startswith(("_email.", "_SMS."))


def needs_message(event_type: str) -> bool:
    return event_type.startswith(("_email.", "_SMS."))


class StreamRecord(msgspec.Struct, frozen=True, gc=False):
    """Thousands are made per batch: a Struct is cheaper to build than a NamedTuple, and untracked by the garbage
    collector (strings, bytes and numbers cannot form a cycle), collections never walk it."""

    id: str  # unique and stable per event ("<application id>/<store sequence>"): what receivers drop duplicates by
    data: bytes  # the record's JSON
    arrival_at: int  # epoch ms the event arrived: how far behind a sink is
    position: tuple[int, int]  # the event's place in the feed: where the cursor goes once a sink has it


@dataclass(frozen=True, slots=True)
class RecordBatch:
    records: list[StreamRecord]
    full: bool  # as many events as asked for: more may be waiting


@dataclass(slots=True)
class Lookups:
    """What a batch of records needs beyond the events: endpoints, messages and their send events."""

    # key -> doc, status, opt-out, effective date (None: no such endpoint)
    endpoints: Mapping[str, tuple[str, str, str, str] | None] = field(default_factory=dict)
    messages: Mapping[str, SentMessage] = field(default_factory=dict)
    sends: Mapping[str, str] = field(default_factory=dict)  # message id -> send event doc


class _Parts:
    """The encoded parts of app records, worked out once and reused (most events repeat an endpoint, an app and
    a session): each endpoint's device and app version by the endpoint's stored document (so an endpoint that
    changed is worked out anew), the application object, the session object. Each is emptied when it reaches
    `limit` entries: the devices keep endpoint documents alive, so a pump holds about as many as one batch of
    records would, whatever its project's endpoints are like."""

    def __init__(self, app_id: str, limit: int = 4096) -> None:
        self.app_id = app_id
        self.limit = limit
        self._devices: dict[str, tuple[msgspec.Raw, str | None]] = {}
        self._applications: dict[tuple[str | None, ...], msgspec.Raw] = {}
        self._sessions: dict[tuple[str | None, ...], msgspec.Raw] = {}

    def device(self, endpoint_doc: str) -> tuple[msgspec.Raw, str | None]:
        found = self._devices.get(endpoint_doc)
        if found is None:
            demographic = (_decode(endpoint_doc).get("Demographic") or {}) if endpoint_doc else {}
            found = (msgspec.Raw(_encode(_device(demographic))), demographic.get("AppVersion"))
            self._keep(self._devices)[endpoint_doc] = found
        return found

    def application(self, event: _AppEvent, version_name: str | None) -> msgspec.Raw:
        key = (
            version_name,
            event.app_package_name,
            event.app_title,
            event.app_version_code,
            event.sdk_name,
            event.client_sdk_version,
        )
        found = self._applications.get(key)
        if found is None:
            found = msgspec.Raw(_encode(_application(self.app_id, event, version_name)))
            self._keep(self._applications)[key] = found
        return found

    def session(self, session: _Session | None) -> msgspec.Raw:
        key = (session.id, session.start_timestamp, session.stop_timestamp) if session else ()
        found = self._sessions.get(key)
        if found is None:
            found = self._keep(self._sessions)[key] = msgspec.Raw(_encode(_session(session)))
        return found

    def _keep(self, cache: dict[Any, Any]) -> dict[Any, Any]:
        if len(cache) >= self.limit:
            cache.clear()
        return cache


def message_id_of(doc: Mapping[str, Any]) -> str | None:
    return (doc.get("Attributes") or {}).get("message_id")


@dataclass(frozen=True, slots=True)
class BatchRead:
    """What a batch of records is built from, read in one short transaction: the events, the server events'
    documents (by index), what they name, and whether as many events as asked for came."""

    events: list[StreamEvent]
    server: dict[int, dict[str, Any]]
    lookups: Lookups
    full: bool


def read_batch(tx: Transaction, builder: RecordBuilder, after: tuple[int, int], limit: int) -> BatchRead:
    """The project's next events after `after`, with the endpoints, messages and send events their records need,
    read in the same transaction. Records are built after it ends (`build_batch`): on SQLite a reader that stays
    in its transaction while it works, as a shipper behind would, keeps the WAL from ever being checkpointed whole
    and restarted, and it grows by every commit."""
    events, upto = stream_store.events_after(tx, builder.app_id, after, limit)
    if not events:
        return BatchRead([], {}, Lookups(), False)
    # Server events' documents are read as dicts (several shapes); app events are decoded as a batch when built.
    server = {i: _decode(event[7]) for i, event in enumerate(events) if is_server_event(event[4])}
    keys = {event[2].lower() for event in events if event[2] and needs_endpoint(event[4])}
    about = [(events[i], message_id_of(doc)) for i, doc in server.items()]
    about = [(event, message_id) for event, message_id in about if message_id and needs_message(event[4])]
    messages = stream_store.sent_messages(tx, sorted({message_id for _, message_id in about}))
    # Outcome records repeat what the send recorded; a send event (its id is the message's) is its own source.
    outcomes = {message_id for event, message_id in about if event[3] != message_id}
    sends = [(m.endpoint_id or "", m.message_id) for m in messages.values() if m.message_id in outcomes]
    lookups = Lookups(
        endpoints=builder.endpoints.lookup(tx, keys, upto),
        messages=messages,
        sends=stream_store.send_event_docs(tx, builder.app_id, sends),
    )
    return BatchRead(events, server, lookups, len(events) == limit)


def build_batch(builder: RecordBuilder, read: BatchRead) -> RecordBatch:
    """The records of a batch read by `read_batch` (no transaction needed)."""
    if not read.events:
        return RecordBatch([], False)
    return RecordBatch(builder.records(read.events, read.server, read.lookups), read.full)


class EndpointCache:
    """The project's endpoints as records describe them, kept from one batch to the next: a batch reads the
    endpoints its events name that are not held yet, after dropping those written or deleted since the last batch
    (their change-feed stamps say which), so a record still sees its endpoint as stored when it is built. Emptied
    when it holds `limit` endpoints, or when more than that many changed at once."""

    def __init__(self, app_id: str, limit: int = 20_000) -> None:
        self.app_id = app_id
        self.limit = limit
        self._held: dict[str, tuple[str, str, str, str] | None] = {}
        self._current_to: int | None = None  # the feed stamp the held endpoints are current to

    def lookup(self, tx: Transaction, keys: set[str], upto: int) -> Mapping[str, tuple[str, str, str, str] | None]:
        """The held endpoints, with `keys` among them (None: no such endpoint) as of feed stamp `upto`."""
        held = self._held
        if self._current_to is not None and upto > self._current_to:
            changed = stream_store.endpoints_changed(tx, self.app_id, self._current_to, upto, self.limit)
            if changed is None:
                held.clear()
            for key in changed or ():
                held.pop(key, None)
        if len(held) + len(keys) > self.limit:
            held.clear()
        missing = sorted(keys.difference(held))
        found = stream_store.endpoint_docs(tx, self.app_id, missing)
        for key in missing:
            held[key] = found.get(key)
        self._current_to = upto
        return held


class RecordBuilder:
    """Builds one project's records; `account_id` is the awsAccountId every record carries."""

    def __init__(self, app_id: str, account_id: str) -> None:
        self.app_id = app_id
        self.account_id = account_id
        self.endpoints = EndpointCache(app_id)
        self._parts = _Parts(app_id)

    def records(
        self, events: Sequence[StreamEvent], server: Mapping[int, Mapping[str, Any]], lookups: Lookups
    ) -> list[StreamRecord]:
        """The events' records, in order; `server` holds the documents of the server events, by index. The app
        events' documents are decoded in one call."""
        built: list[_AppRecord | dict[str, Any]] = []
        if not server:
            built = self._app_records(events, lookups)
        else:
            app = [event for i, event in enumerate(events) if i not in server]
            app_built = iter(self._app_records(app, lookups))
            for i, event in enumerate(events):
                doc = server.get(i)
                if doc is None:
                    built.append(next(app_built))
                else:
                    built.append(self._server_record(StreamEvent._make(event), doc, lookups))
        prefix = self.app_id + "/"
        return [
            StreamRecord(prefix + str(event[1]), _encode(record), event[6], (event[0], event[1]))
            for event, record in zip(events, built, strict=True)
        ]

    def encode(self, event: StreamEvent, doc: Mapping[str, Any] | None, lookups: Lookups) -> bytes:
        """One event's record as JSON; `doc` is a server event's document (None for an app event)."""
        return self.records([event], {} if doc is None else {0: doc}, lookups)[0].data

    # App events -----------------------------------------------------------------------------------------------

    def _app_records(self, events: Sequence[StreamEvent], lookups: Lookups) -> list[_AppRecord]:
        if not events:
            return []
        parts, endpoints, account = self._parts, lookups.endpoints, self.account_id
        device_of, application_of, session_of = parts.device, parts.application, parts.session
        built = []
        for event, stored in zip(events, _app_events([event[7] for event in events]), strict=True):
            endpoint = endpoints.get(event[2].lower())
            device, app_version = device_of(endpoint[0] if endpoint else "")
            built.append(
                _AppRecord(
                    event[4],
                    event[5],
                    event[6],
                    APP_VERSION,
                    _Client(event[2]),
                    account,
                    application_of(stored, app_version),
                    device,
                    session_of(stored.session),
                    stored.attributes or {},
                    stored.metrics or {},
                )
            )
        return built

    def _server_record(self, event: StreamEvent, doc: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
        kind = event.event_type
        attributes = {str(k): str(v) for k, v in (doc.get("Attributes") or {}).items()}
        record = self._envelope(event, SERVER_VERSION, event.endpoint_id or self.account_id)
        record["application"] = {"app_id": self.app_id, "sdk": {}}
        record["device"] = {"platform": {}}
        record["session"] = {}
        if kind.startswith("_email."):
            self._email(record, event, attributes, lookups)
        elif kind.startswith("_SMS."):
            self._sms(record, event, attributes, doc, lookups)
        else:
            self._send(record, event, attributes, lookups)
        return record

    def _envelope(self, event: StreamEvent, version: str, client_id: str) -> dict[str, Any]:
        return {
            "event_type": event.event_type,
            "event_timestamp": event.event_at,
            "arrival_timestamp": event.arrival_at,
            "event_version": version,
            "client": {"client_id": client_id},
            "awsAccountId": self.account_id,
        }

    # Campaign and journey sends -------------------------------------------------------------------------------

    def _send(self, record: dict[str, Any], event: StreamEvent, attributes: dict[str, str], lookups: Lookups) -> None:
        status = SEND_STATUS.get(attributes.get("delivery_status", ""), "FAILURE")
        if event.event_type == "_campaign.send":
            kept = _campaign_attributes(attributes)
            kept["delivery_type"] = attributes.get("channel_type", "")
            kept["campaign_send_status"] = attributes.get("campaign_send_status", status)
        else:
            kept = _journey_attributes(attributes)
            kept["journey_send_status"] = attributes.get("journey_send_status", status)
        record["attributes"] = kept
        record["metrics"] = {}
        endpoint = _endpoint_json(lookups, event.endpoint_id)
        if endpoint is not None:
            record["client_context"] = {"custom": {"endpoint": endpoint}}

    # Email ----------------------------------------------------------------------------------------------------

    def _email(self, record: dict[str, Any], event: StreamEvent, attributes: dict[str, str], lookups: Lookups) -> None:
        kind = event.event_type
        message_id = attributes.get("message_id", "")
        message = lookups.messages.get(message_id)
        sent = _send_attributes(lookups, message_id, attributes if event.event_id == message_id else None)
        destination = message.address if message else attributes.get("destination", "")
        # Every record of one email carries the send time as its event time (Pinpoint's rule).
        send_ms = _millis(message.created_at) if message else event.event_at
        record["event_timestamp"] = send_ms
        kept = {**_campaign_attributes(attributes), **_journey_attributes(attributes)}
        kept["feedback"] = attributes.get("url", "") if kind == "_email.click" else FEEDBACK.get(kind, kind[7:])
        record["attributes"] = kept
        record["metrics"] = {}
        record["client_context"] = {"custom": {"legacy_identifier": self.app_id}}
        sender, subject = sent.get("from_address", ""), sent.get("subject", "")
        headers = [{"name": "From", "value": sender}, {"name": "To", "value": destination}]
        if subject:
            headers.append({"name": "Subject", "value": subject})
        mail = {
            "message_id": message_id,
            "message_send_timestamp": send_ms,
            "from_address": sender,
            "destination": [destination],
            "headers_truncated": False,
            "headers": headers,
            "common_headers": {"from": sender, "to": [destination], "subject": subject},
        }
        mail_event = {
            "mail": mail,
            MAIL_EVENT.get(kind, kind[7:]): _mail_detail(kind, attributes, destination, event.event_at - send_ms),
        }
        record["facets"] = {"email_channel": {"mail_event": mail_event}}

    # SMS ------------------------------------------------------------------------------------------------------

    def _sms(
        self,
        record: dict[str, Any],
        event: StreamEvent,
        attributes: dict[str, str],
        doc: Mapping[str, Any],
        lookups: Lookups,
    ) -> None:
        kind = event.event_type
        message_id = attributes.get("message_id", "")
        message = lookups.messages.get(message_id)
        sent = _send_attributes(lookups, message_id, attributes if event.event_id == message_id else None)
        kept = {**_campaign_attributes(attributes), **_journey_attributes(attributes)}
        for name in SMS_ATTRIBUTES:
            value = attributes.get(name) or sent.get(name)
            if value:
                kept[name] = value
        if "destination_phone_number" not in kept:
            destination = message.address if message else attributes.get("destination", "")
            if destination:
                kept["destination_phone_number"] = destination
        kept.setdefault("record_status", SMS_STATUS.get(kind, "UNKNOWN"))
        country = country_of(kept.get("destination_phone_number", ""))
        if country and "iso_country_code" not in kept:
            kept["iso_country_code"] = country
        if message_id:
            kept["message_id"] = message_id
        record["attributes"] = kept
        record["metrics"] = {str(k): float(v) for k, v in (doc.get("Metrics") or {}).items()}


def _campaign_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """campaign_id, campaign_activity_id, treatment_id of a campaign message ("0" when it has no treatments)."""
    campaign_id = attributes.get("campaign_id") or attributes.get("CampaignId")
    if not campaign_id:
        return {}
    return {
        "campaign_id": campaign_id,
        "campaign_activity_id": attributes.get("campaign_activity_id") or attributes.get("ActivityId", ""),
        "treatment_id": attributes.get("treatment_id") or attributes.get("TreatmentId") or "0",
    }


def _journey_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    if not attributes.get("journey_id"):
        return {}
    return {name: attributes[name] for name in JOURNEY_ATTRIBUTES if attributes.get(name)}


def _send_attributes(lookups: Lookups, message_id: str, own: Mapping[str, str] | None) -> Mapping[str, str]:
    """What the message's send event recorded; a send event's own attributes when the record is that event."""
    if own is not None:
        return own
    doc = lookups.sends.get(message_id)
    return (_decode(doc).get("Attributes") or {}) if doc else {}


def _mail_detail(kind: str, attributes: Mapping[str, str], destination: str, elapsed_ms: int) -> dict[str, Any]:
    client = {key: attributes[key] for key in ("ip_address", "user_agent") if attributes.get(key)}
    if kind == "_email.delivered":
        detail: dict[str, Any] = {"recipients": [destination], "processing_time_millis": max(0, elapsed_ms)}
        if attributes.get("response"):
            detail["smtp_response"] = attributes["response"]
        return detail
    if kind in ("_email.open", "_email.unsubscribe"):
        return client
    if kind == "_email.click":
        return {**client, "link": attributes.get("url", "")}
    if kind in ("_email.hardbounce", "_email.softbounce"):
        recipient = {"email_address": destination}
        if attributes.get("reason"):
            recipient["diagnostic_code"] = attributes["reason"]
        return {
            "bounce_type": "Permanent" if kind == "_email.hardbounce" else "Transient",
            "bounce_sub_type": attributes.get("bounce_classification") or attributes.get("type") or "General",
            "bounced_recipients": [recipient],
        }
    if kind == "_email.complaint":
        return {"complained_recipients": [{"email_address": destination}]}
    if kind == "_email.rejected":
        reason = attributes.get("reason") or attributes.get("status_message") or attributes.get("delivery_status", "")
        return {"reason": reason}
    return {}


# Endpoints, devices, sessions, times ---------------------------------------------------------------------------


def _endpoint_json(lookups: Lookups, endpoint_id: str) -> str | None:
    """The endpoint as Pinpoint puts it in client_context.custom.endpoint: its JSON, as a string."""
    found = lookups.endpoints.get(endpoint_id.lower())
    if found is None:
        return None
    doc, status, opt_out, effective_at = found
    endpoint = {key: value for key, value in _decode(doc).items() if key != "OptOut"}
    endpoint.update({"EndpointStatus": status, "OptOut": opt_out, "EffectiveDate": effective_at})
    return _encode(endpoint).decode()


def _device(demographic: Mapping[str, Any]) -> dict[str, Any]:
    device: dict[str, Any] = {}
    locale = demographic.get("Locale")
    if locale:
        language, _, country = str(locale).replace("-", "_").partition("_")
        device["locale"] = {"code": locale, "country": country, "language": language}
    for key, name in (("make", "Make"), ("model", "Model")):
        if demographic.get(name):
            device[key] = demographic[name]
    platform = {"name": demographic.get("Platform"), "version": demographic.get("PlatformVersion")}
    device["platform"] = {key: value for key, value in platform.items() if value}
    return device


def _application(app_id: str, event: _AppEvent, version_name: str | None) -> dict[str, Any]:
    sdk = {"name": event.sdk_name, "version": event.client_sdk_version}
    application = {
        "app_id": app_id,
        "package_name": event.app_package_name,
        "sdk": {key: value for key, value in sdk.items() if value},
        "title": event.app_title,
        "version_name": version_name,
        "version_code": event.app_version_code,
    }
    return {key: value for key, value in application.items() if value is not None}


def _session(session: _Session | None) -> dict[str, Any]:
    if session is None or not session.id:
        return {}
    record: dict[str, Any] = {"session_id": session.id}
    if session.start_timestamp:
        record["start_timestamp"] = _millis(session.start_timestamp)
    if session.stop_timestamp:
        record["stop_timestamp"] = _millis(session.stop_timestamp)
    return record


def _millis(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)
