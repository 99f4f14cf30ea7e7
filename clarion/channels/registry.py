"""Which transport carries a project's messages on a channel, opened once per channel version and reused.

A transport holds connections (an SMTP session pool, an HTTP/2 connection to APNs), so it lives as long as the
channel's settings do: the cache key is (project, channel type, channel version). A channel update yields a new
version and a new transport; the replaced one is closed at shutdown with the rest, because a send may still be
using it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from clarion.channels import custom, email, log, push, sms, voice
from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import OpenTransport, Transport
from clarion.outbound.client import OutboundClient

# Reads a project's stored, decrypted channel record (None when the project never configured the channel).
ChannelLoader = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


# Each channel type's transport module.
TRANSPORTS: dict[str, OpenTransport] = {
    "EMAIL": email.open_transport,
    "SMS": sms.open_transport,
    "VOICE": voice.open_transport,
    "CUSTOM": custom.open_transport,
    **push.OPENERS,
}


class ChannelUnavailable(Exception):
    """The project cannot send on this channel; the message says why (recipients see it as StatusMessage)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportRegistry:
    def __init__(
        self,
        settings: DeliverySettings,
        openers: Mapping[str, OpenTransport],
        load_channel: ChannelLoader | None,
        outbound: OutboundClient,
    ) -> None:
        self.settings = settings
        self.outbound = outbound  # the client every HTTP transport sends through
        self.openers = dict(openers)  # channel type (EMAIL, SMS, GCM, APNS, ...) -> the module's open_transport
        self.load_channel = load_channel
        self._open: dict[tuple[str, str], tuple[Any, Transport]] = {}  # (app, channel) -> (version, transport)
        self._retired: list[Transport] = []
        self._lock = asyncio.Lock()

    async def transport_for(self, app_id: str, channel_type: str) -> tuple[Transport, Mapping[str, Any]]:
        """The transport and channel record for a send; raises ChannelUnavailable."""
        channel = await self.load_channel(app_id, channel_type) if self.load_channel else None
        if self.settings.dry_run:
            opener: OpenTransport = log.open_transport
            channel = channel or {"Platform": channel_type, "Enabled": True}
        else:
            if channel is None and channel_type == "CUSTOM":
                # No channel resource exists for CUSTOM: each campaign names its webhook (DeliveryUri).
                channel = {"Platform": "CUSTOM", "Enabled": True}
            if channel is None:
                raise ChannelUnavailable(f"The {channel_type} channel is not configured for this project")
            if channel.get("Enabled") is False:
                raise ChannelUnavailable(f"The {channel_type} channel is disabled for this project")
            found = self.openers.get(channel_type)
            if found is None:
                raise ChannelUnavailable(f"This Clarion has no transport for the {channel_type} channel")
            opener = found
        key = (app_id, channel_type)
        version = (channel.get("Version"), self.settings.dry_run)
        async with self._lock:
            cached = self._open.get(key)
            if cached is not None and cached[0] == version:
                return cached[1], channel
            try:
                transport = opener(self.settings, channel, self.outbound)
            except Exception as error:  # a bad channel record fails its sends, not the process
                raise ChannelUnavailable(f"The {channel_type} channel cannot be used: {error}") from error
            if cached is not None:
                self._retired.append(cached[1])
            self._open[key] = (version, transport)
        return transport, channel

    async def close(self) -> None:
        transports = [transport for _, transport in self._open.values()] + self._retired
        self._open.clear()
        self._retired.clear()
        await asyncio.gather(*(transport.close() for transport in transports), return_exceptions=True)
