"""Voice delivery: the same providers as SMS (clarion/channels/sms/), speaking the message in a phone call.

Pinpoint's voice channel record holds nothing but Enabled, so the caller id comes from the message
(VoiceMessage.OriginationNumber) or the operator's `delivery.voice.default_origination`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import Transport
from clarion.channels.sms.transport import open_phone_transport
from clarion.outbound.client import OutboundClient


def open_transport(settings: DeliverySettings, channel: Mapping[str, Any], outbound: OutboundClient) -> Transport:
    origination = settings.voice.default_origination or None
    return open_phone_transport(settings.voice, "delivery.voice", origination, outbound)
