"""SMS delivery: the generic HTTP adapter, Twilio and AWS End User Messaging (docs/channels.md, "SMS and voice").

The channel record is the project's SMS channel (SenderId, ShortCode); a message that names no sender of its own
is sent from the channel's short code, else its sender id, else the operator's `default_origination`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import Transport
from clarion.channels.sms.transport import open_phone_transport
from clarion.channels.sms.twilio_webhooks import STATUS_PATH
from clarion.outbound.client import OutboundClient


def open_transport(settings: DeliverySettings, channel: Mapping[str, Any], outbound: OutboundClient) -> Transport:
    sms = settings.sms
    origination = channel.get("ShortCode") or channel.get("SenderId") or sms.default_origination or None
    callback = f"{sms.webhook_base_url.rstrip('/')}{STATUS_PATH}" if sms.webhook_base_url else ""
    return open_phone_transport(sms, "delivery.sms", origination, outbound, status_callback=callback)
