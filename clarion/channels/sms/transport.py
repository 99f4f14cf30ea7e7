"""The SMS and voice Transport: checks the destination, picks the sender, and lets one provider do the rest.

A provider turns a message into one HTTP request and the answer into a DeliveryResult; everything they share
(E.164 validation, the origination identity, connection errors, Retry-After) lives here once.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from clarion.channels.config import PhoneProviderSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, SmsContent, VoiceContent
from clarion.channels.phone_numbers import strict_e164
from clarion.channels.retry_after import retry_after_seconds
from clarion.channels.sms.aws import AwsSmsVoiceProvider
from clarion.channels.sms.exchange import (
    ProviderHttp,
    ProviderRequest,
    ProviderResponse,
    ProviderUnreachable,
    UnsendableMessage,
)
from clarion.channels.sms.generic_http import GenericHttpProvider
from clarion.channels.sms.twilio import TwilioProvider
from clarion.clock import Clock, SystemClock
from clarion.outbound.client import OutboundClient


class PhoneProvider(Protocol):
    def request_for(self, message: Outbound, to: str, origination: str | None) -> ProviderRequest: ...

    def result_of(self, response: ProviderResponse) -> DeliveryResult: ...


class PhoneTransport:
    def __init__(
        self,
        provider: PhoneProvider,
        http: ProviderHttp,
        default_origination: str | None,
        clock: Clock,
    ) -> None:
        self.provider = provider
        self.http = http
        self.default_origination = default_origination
        self.clock = clock

    async def send(self, message: Outbound) -> DeliveryResult:
        content = message.content
        if not isinstance(content, SmsContent | VoiceContent):
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, "This transport carries SMS and voice only")
        to = strict_e164(message.address)
        if to is None:
            # Never worth a provider call: Pinpoint addresses phone endpoints in E.164 only.
            return DeliveryResult(
                DeliveryStatus.PERMANENT_FAILURE,
                400,
                f"'{message.address}' is not a valid phone number in E.164 form (+, country code, digits only)",
            )
        try:
            request = self.provider.request_for(message, to, self._origination(content))
        except UnsendableMessage as error:
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, error.message)
        try:
            response = await self.http.exchange(request, message.app_id)
        except ProviderUnreachable as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, error.status_code, error.message)
        result = self.provider.result_of(response)
        if result.status is DeliveryStatus.THROTTLED and result.retry_after is None:
            wait = retry_after_seconds(response.headers.get("retry-after"), self.clock.now())
            result = dataclasses.replace(result, retry_after=wait)
        return result

    async def close(self) -> None:
        await self.http.close()

    def _origination(self, content: SmsContent | VoiceContent) -> str | None:
        """The message's own sender wins over the channel's and the operator's default (API Reference, "Messages":
        OriginationNumber)."""
        own = content.origination_number or (content.sender_id if isinstance(content, SmsContent) else None)
        return own or self.default_origination


class UnconfiguredTransport:
    """What a channel without a provider answers: a clear failure per message rather than an error at startup."""

    def __init__(self, setting: str) -> None:
        self.message = f"No provider is configured for this channel: set {setting} (docs/configuration.md)"

    async def send(self, message: Outbound) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, self.message)

    async def close(self) -> None:
        return None


def open_phone_transport(
    settings: PhoneProviderSettings,
    setting_name: str,
    default_origination: str | None,
    outbound: OutboundClient,
    *,
    status_callback: str = "",
    clock: Clock | None = None,
) -> PhoneTransport | UnconfiguredTransport:
    """The transport for one phone channel; `setting_name` is where its settings live (for messages)."""
    clock = clock or SystemClock()
    provider: PhoneProvider
    if settings.provider == "http":
        provider = GenericHttpProvider(settings.http)
    elif settings.provider == "twilio":
        provider = TwilioProvider(settings.twilio, status_callback)
    elif settings.provider == "aws":
        provider = AwsSmsVoiceProvider(settings.aws, clock)
    else:
        return UnconfiguredTransport(f"{setting_name}.provider")
    http = ProviderHttp(outbound, settings.timeout_seconds, settings.ca_file)
    return PhoneTransport(provider, http, default_origination, clock)
