"""A transport that delivers to the log: `delivery.dry_run = true` sends every channel here.

Operators use it to try campaigns and direct sends end to end (rendering, opt-outs, events, tracking links)
without reaching anyone; each message is one `message_logged` line with its rendered content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound
from clarion.logs import get_logger

log = get_logger("clarion.channels.log")


class LogTransport:
    def __init__(self, channel_type: str) -> None:
        self.channel_type = channel_type

    async def send(self, message: Outbound) -> DeliveryResult:
        log.info(
            "message_logged",
            channel=message.channel,
            app_id=message.app_id,
            address=message.address,
            endpoint_id=message.endpoint_id,
            message_id=message.message_id,
            content=asdict(message.content),
        )
        return DeliveryResult(
            DeliveryStatus.SUCCESSFUL, 200, "Logged (dry run)", provider_message_id=message.message_id
        )

    async def close(self) -> None:
        return None


def open_transport(settings: Any, channel: Mapping[str, Any], outbound: Any = None) -> LogTransport:
    return LogTransport(str(channel.get("Platform") or channel.get("ChannelType") or ""))
