"""Operator configuration for delivery: which providers Clarion talks to and how (docs/configuration.md).

Per-project settings that Pinpoint keeps in channel resources (sender address, push credentials) live in the
store; what is here is the operator's: SMTP relays, provider accounts, base URLs (overridable so that tests and
air-gapped installs can point at local services) and the key that encrypts stored channel secrets.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SmtpSettings(BaseModel):
    """Email over SMTP (owned by the email transport)."""


class EmailApiSettings(BaseModel):
    """Email through an HTTP provider API (owned by the email transport)."""


class SmsSettings(BaseModel):
    """SMS provider adapters (owned by the SMS/voice transports)."""


class VoiceSettings(BaseModel):
    """Voice provider adapters (owned by the SMS/voice transports)."""


class PushSettings(BaseModel):
    """FCM and APNs endpoints and connection behaviour (owned by the push transports)."""


class WebhookSettings(BaseModel):
    """Custom-channel webhooks (owned by the custom transport)."""


class TrackingSettings(BaseModel):
    """Open/click/unsubscribe tracking links (owned by the send pipeline)."""


class DeliverySettings(BaseModel):
    # Key for channel secrets at rest (owned by the channels API).
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    email_api: EmailApiSettings = Field(default_factory=EmailApiSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
