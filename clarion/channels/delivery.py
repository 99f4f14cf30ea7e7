"""The contract between whoever decides to send (direct sends, campaigns, journeys) and the transports that talk
to providers: one rendered message in, one delivery result out.

Transports never see templates, segments or HTTP requests from Pinpoint clients; senders never see provider
wire formats. `open_transport` functions in each channel module build a Transport from the operator's
DeliverySettings and the project's stored (decrypted) channel record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from clarion.outbound.client import OutboundClient


class DeliveryStatus(StrEnum):
    """Pinpoint's per-address outcome values (MessageResult.DeliveryStatus)."""

    SUCCESSFUL = "SUCCESSFUL"
    THROTTLED = "THROTTLED"
    TEMPORARY_FAILURE = "TEMPORARY_FAILURE"
    PERMANENT_FAILURE = "PERMANENT_FAILURE"
    UNKNOWN_FAILURE = "UNKNOWN_FAILURE"
    OPT_OUT = "OPT_OUT"
    DUPLICATE = "DUPLICATE"

    @property
    def retryable(self) -> bool:
        return self in (DeliveryStatus.THROTTLED, DeliveryStatus.TEMPORARY_FAILURE)


@dataclass(frozen=True, slots=True)
class EmailContent:
    from_address: str
    subject: str
    html: str | None = None
    text: str | None = None
    reply_to: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # extra headers, e.g. List-Unsubscribe
    unsubscribe_url: str | None = None  # signed one-click URL; the transport adds RFC 8058 headers for it
    charset: str = "UTF-8"


@dataclass(frozen=True, slots=True)
class RawEmailContent:
    """A complete MIME message the sender built (EmailMessage.RawEmail), sent as given apart from the headers
    clarion/channels/email/raw.py sets."""

    data: bytes
    from_address: str  # the envelope sender, and the From header when the message has none
    unsubscribe_url: str | None = None  # one-click URL, used when the message has no List-Unsubscribe of its own


@dataclass(frozen=True, slots=True)
class SmsContent:
    body: str
    message_type: str = "TRANSACTIONAL"  # or PROMOTIONAL
    origination_number: str | None = None
    sender_id: str | None = None
    keyword: str | None = None
    entity_id: str | None = None
    template_id: str | None = None


@dataclass(frozen=True, slots=True)
class VoiceContent:
    body: str  # plain text or SSML
    language_code: str = "en-US"
    voice_id: str | None = None
    origination_number: str | None = None


@dataclass(frozen=True, slots=True)
class PushContent:
    """The union of Pinpoint's push message members (GCMMessage, APNSMessage, Baidu/ADM, default push)."""

    title: str | None = None
    body: str | None = None
    action: str | None = None  # OPEN_APP | DEEP_LINK | URL
    url: str | None = None
    image_url: str | None = None
    image_icon_url: str | None = None
    small_image_icon_url: str | None = None
    icon_reference: str | None = None
    sound: str | None = None
    silent_push: bool = False
    data: Mapping[str, str] = field(default_factory=dict)
    raw_content: str | None = None  # a provider payload given verbatim; overrides everything else
    priority: str | None = None  # normal | high (APNs: 5 | 10)
    time_to_live: int | None = None  # seconds
    collapse_key: str | None = None
    restricted_package_name: str | None = None
    badge: int | None = None
    category: str | None = None
    thread_id: str | None = None
    media_url: str | None = None
    apns_push_type: str | None = None  # alert | background | voip ...


@dataclass(frozen=True, slots=True)
class CustomContent:
    """What a CUSTOM channel webhook receives as its message part."""

    data: str
    endpoint: Mapping[str, Any] | None = None  # the recipient's endpoint record, sent under Endpoints


Content = EmailContent | RawEmailContent | SmsContent | VoiceContent | PushContent | CustomContent


@dataclass(frozen=True, slots=True)
class Outbound:
    channel: str  # Pinpoint ChannelType: EMAIL, SMS, VOICE, GCM, APNS, APNS_SANDBOX, APNS_VOIP, ..., CUSTOM
    address: str  # email address, E.164 number, device token or webhook target
    message_id: str  # Clarion's id for this message; passed to providers as an idempotency key where they take one
    app_id: str
    content: Content
    endpoint_id: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)  # MessageRequest.Context, echoed to webhooks


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: DeliveryStatus
    status_code: int  # what Pinpoint reports in MessageResult.StatusCode (HTTP-like)
    message: str = ""  # StatusMessage: the provider's own words on failures
    provider_message_id: str | None = None
    retry_after: float | None = None  # seconds, when the provider said when to come back
    updated_address: str | None = None  # a provider's canonical replacement for the token/address


class Transport(Protocol):
    async def send(self, message: Outbound) -> DeliveryResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class BatchTransport(Transport, Protocol):
    """A transport that sends a batch's messages at once for less than one `send` each (FCM's posts on one
    connection): a result per message, in order, and per-message failures as results, like `send`'s."""

    async def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryResult]: ...


class OpenTransport(Protocol):
    """Opens a channel's transport; those that speak HTTP send through the process's one guarded client."""

    def __call__(self, settings: Any, channel: Mapping[str, Any], outbound: OutboundClient) -> Transport: ...


@dataclass(frozen=True, slots=True)
class ProviderReport:
    """Something a provider told Clarion after the send: a delivery report, a bounce or complaint, an inbound
    STOP. Webhook receivers turn provider payloads into these; `clarion.channels.outcomes.report` records the
    Pinpoint event (`_email.hardbounce`, `_SMS.SUCCESS`, `_SMS.OPTOUT`, ...) against the message's endpoint and
    opts the address out when `opt_out` is set.
    """

    event_type: str
    channel: str
    provider_message_id: str | None = None  # matched against the message log
    message_id: str | None = None  # Clarion's id, when the provider echoes it back
    address: str | None = None  # for reports about an address rather than a message (inbound STOP)
    attributes: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # what the provider measured (price_in_millicents_usd)
    opt_out: bool = False
    opt_in: bool = False  # the address asked to receive messages again (an inbound START): clear its opt-out
    # When the provider says it happened (an inbound reply): orders STOP against START. None: when it arrived.
    occurred_at: datetime | None = None
    # What makes two reports of this kind about one message distinct events (a click's link); reports equal in
    # all else are one event, however often a pixel, link or webhook is replayed.
    distinct_by: str = ""
