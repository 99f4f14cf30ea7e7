"""Clarion's own webhook for gateways driven by the generic HTTP adapter: delivery receipts and inbound messages
in one small JSON format, signed like Clarion's outgoing custom-channel webhooks.

A gateway (or a few lines of glue beside it) POSTs one event or a JSON array of them:

    {"type": "status", "provider_message_id": "abc123", "status": "DELIVERED"}
    {"type": "status", "message_id": "<Clarion's id>", "status": "FAILED", "reason": "unreachable", "error_code": "7"}
    {"type": "status", "provider_message_id": "abc124", "status": "DELIVERED", "price_in_millicents_usd": 645}
    {"type": "inbound", "from": "+14155550100", "to": "+14155550199", "body": "STOP"}

with `X-Clarion-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, "<t>." + raw body)>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clarion import signed_times
from clarion.channels.custom import SIGNATURE_HEADER, sign
from clarion.channels.delivery import ProviderReport
from clarion.channels.sms.keywords import inbound_report

PATH = "/webhooks/sms/http"
MAX_AGE_SECONDS = 300  # a signed request older (or newer) than this is a replay, or a clock far off

_STATUSES = {"DELIVERED": "_SMS.SUCCESS", "FAILED": "_SMS.FAILURE"}


class WebhookRefused(Exception):
    """Why a webhook call was not accepted; the message goes back to the caller."""


def verify_signature(secret: str, header: str, body: bytes, now: datetime) -> datetime:
    """Check the signature and its age; return when the gateway signed (it orders STOP and START replies)."""
    if not secret:
        raise WebhookRefused("This webhook is not enabled: delivery.sms.http.webhook_secret is not set")
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    try:
        signed_at = signed_times.unix_seconds(timestamp)
    except ValueError:
        signed_at = None
    if signed_at is None or "v1" not in fields:
        raise WebhookRefused(f"{SIGNATURE_HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>")
    if abs((now - signed_at).total_seconds()) > MAX_AGE_SECONDS:
        raise WebhookRefused(f"The signature's timestamp is more than {MAX_AGE_SECONDS} seconds from now")
    claimed = f"t={timestamp},v1={fields['v1']}"
    if not hmac.compare_digest(sign(secret, int(timestamp), body).encode(), claimed.encode()):
        raise WebhookRefused("The signature does not match the body")
    return signed_at


def reports_from(document: Any, signed_at: datetime | None = None) -> list[ProviderReport]:
    """The reports a (verified) webhook body makes; raises ValueError saying what is malformed. Inbound replies
    happened when the gateway signed them."""
    events = document if isinstance(document, list) else [document]
    reports = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"Event {index} is not a JSON object")
        report = _status(event, index) if event.get("type") == "status" else _inbound(event, index, signed_at)
        if report is not None:
            reports.append(report)
    return reports


def _status(event: Mapping[str, Any], index: int) -> ProviderReport:
    status = str(event.get("status", "")).upper()
    if status not in _STATUSES:
        raise ValueError(f"Event {index}: status must be DELIVERED or FAILED")
    if not event.get("message_id") and not event.get("provider_message_id"):
        raise ValueError(f"Event {index}: a status needs message_id or provider_message_id")
    attributes = {"provider": "http", "record_status": "DELIVERED" if status == "DELIVERED" else "UNKNOWN"}
    for name in ("reason", "error_code"):
        if event.get(name):
            attributes["provider_error_code" if name == "error_code" else name] = str(event[name])
    price = event.get("price_in_millicents_usd")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float) or price < 0):
        raise ValueError(f"Event {index}: price_in_millicents_usd must be a number of at least 0")
    return ProviderReport(
        event_type=_STATUSES[status],
        channel="SMS",
        provider_message_id=_text(event.get("provider_message_id")),
        message_id=_text(event.get("message_id")),
        attributes=attributes,
        metrics={} if price is None else {"price_in_millicents_usd": float(price)},
    )


def _inbound(event: Mapping[str, Any], index: int, signed_at: datetime | None) -> ProviderReport | None:
    if event.get("type") != "inbound":
        raise ValueError(f"Event {index}: type must be status or inbound")
    sender, body = event.get("from"), event.get("body")
    if not isinstance(sender, str) or not sender or not isinstance(body, str):
        raise ValueError(f"Event {index}: an inbound message needs from and body")
    return inbound_report(sender, str(event.get("to") or ""), body, "http", occurred_at=signed_at)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
