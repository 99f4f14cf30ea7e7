"""SendGrid's signed Event Webhook: verifying a POST and turning its events into ProviderReports.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the base64 DER signature in
`X-Twilio-Email-Event-Webhook-Signature` and the timestamp (epoch seconds) in
`X-Twilio-Email-Event-Webhook-Timestamp`; the operator copies the account's verification key (base64 DER public
key) into settings. The body is a JSON array of events; each carries the `custom_args` of its send as top-level
keys, which is how a report finds its message without a provider-id lookup.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion import signed_times
from clarion.channels.delivery import ProviderReport
from clarion.channels.email.http_api import MESSAGE_ID_ARG

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# Event attributes worth keeping on the Pinpoint event (SES feedback carries the same facts).
_KEPT = ("reason", "status", "type", "bounce_classification", "response", "smtp-id", "sg_event_id")


class WebhookRefused(Exception):
    """The request is not a genuine, fresh SendGrid post; the message says why."""


class MalformedEvents(ValueError):
    """A genuine post whose body is not an array of event objects."""


def verify(public_key: str, headers: Mapping[str, str], body: bytes, now: datetime, max_age_seconds: int) -> None:
    """Raise WebhookRefused unless the signature over timestamp + body verifies and the timestamp is recent."""
    if not public_key:
        raise WebhookRefused("No webhook verification key is configured (delivery.email_api.webhook_public_key)")
    signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRefused(f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
    try:
        fresh = abs((now - signed_times.unix_seconds(timestamp)).total_seconds()) <= max_age_seconds
    except ValueError:
        fresh = False
    if not fresh:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} {timestamp[:20]!r} is not within {max_age_seconds} s of now")
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise WebhookRefused("The webhook verification key is not an ECDSA public key")
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as error:
        raise WebhookRefused("The event webhook signature does not verify") from error


def _report(event: Mapping[str, Any]) -> ProviderReport | None:
    kind = event.get("event")
    if kind == "delivered":
        event_type, opt_out = "_email.delivered", False
    elif kind == "bounce" and event.get("type") == "blocked":
        event_type, opt_out = "_email.softbounce", False  # refused for now (reputation, content): not the address
    elif kind == "bounce":
        event_type, opt_out = "_email.hardbounce", True
    elif kind == "spamreport":
        event_type, opt_out = "_email.complaint", True
    elif kind == "dropped":
        event_type, opt_out = "_email.rejected", False
    else:
        return None  # processed/deferred are not outcomes; opens, clicks and unsubscribes come from Clarion's links
    provider_id = str(event.get("sg_message_id") or "").split(".", 1)[0] or None
    # No `address` on the report: an unmatched report must not opt an address out in every project.
    attributes = {key: str(event[key]) for key in _KEPT if event.get(key) not in (None, "")}
    return ProviderReport(
        event_type=event_type,
        channel="EMAIL",
        provider_message_id=provider_id,  # the X-Message-Id the send returned, before SendGrid's ".filter..." part
        message_id=event.get(MESSAGE_ID_ARG) or None,
        attributes=attributes,
        opt_out=opt_out,
    )


def parse(body: bytes) -> list[ProviderReport]:
    """The reports in an event post; events that are not delivery outcomes are skipped."""
    try:
        events = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise MalformedEvents(f"The event post is not JSON: {error}") from error
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise MalformedEvents("The event post must be a JSON array of event objects")
    return [report for report in map(_report, events) if report is not None]
