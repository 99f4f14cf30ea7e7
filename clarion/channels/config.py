"""Operator configuration for delivery: which providers Clarion talks to and how (docs/configuration.md).

Per-project settings that Pinpoint keeps in channel resources (sender address, push credentials) live in the
store; what is here is the operator's: SMTP relays, provider accounts, base URLs (overridable so that tests and
air-gapped installs can point at local services) and the key that encrypts stored channel secrets.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from clarion.channels.delivery import DeliveryStatus
from clarion.settings_model import SettingsModel


class DkimSettings(SettingsModel):
    """DKIM signing of outgoing mail (RFC 6376); the key type (RSA or Ed25519) picks rsa-sha256 or ed25519-sha256."""

    domain: str  # d=
    selector: str  # s=; the public key is published at <selector>._domainkey.<domain>
    private_key: str = ""  # PEM text, or
    private_key_path: str = ""  # a PEM file

    @model_validator(mode="after")
    def _has_key(self) -> DkimSettings:
        if bool(self.private_key) == bool(self.private_key_path):
            raise ValueError("DKIM needs exactly one of private_key (PEM text) and private_key_path")
        return self


class SmtpSettings(SettingsModel):
    """Email over SMTP (owned by the email transport). No host: email is not sent over SMTP."""

    host: str = ""
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"  # tls: implicit TLS (port 465)
    username: str = ""
    password: str = ""
    pool_size: int = Field(default=4, ge=1)  # persistent connections kept open to the relay
    timeout_seconds: float = 30.0
    ca_file: str = ""  # trust this CA bundle instead of the system store (private relays, tests)
    verify_certificate: bool = True
    local_hostname: str = ""  # EHLO name; the machine's FQDN when empty
    message_id_domain: str = ""  # right-hand side of Message-ID; the From address's domain when empty
    # VERP: each message's envelope sender (Return-Path) becomes bounce+<message id>@this domain, so a bounce names
    # the message it is about (route the domain's mail to the bounce listener, delivery.bounces). Empty: the From.
    return_path_domain: str = ""
    dkim: DkimSettings | None = None


class EmailApiSettings(SettingsModel):
    """Email through an HTTP provider API (owned by the email transport). No provider: not used."""

    provider: Literal["", "sendgrid"] = ""
    api_key: str = ""
    base_url: str = "https://api.sendgrid.com"
    timeout_seconds: float = 30.0
    connections: int = Field(default=16, ge=1)  # concurrent HTTP connections to the provider
    # The provider's event-webhook verification key (SendGrid: the base64 ECDSA public key from the
    # signed event webhook settings). Empty: the webhook route refuses every request.
    webhook_public_key: str = ""
    webhook_max_age_seconds: int = 600  # signed timestamps older than this are refused (replays)

    @model_validator(mode="after")
    def _provider_is_complete(self) -> EmailApiSettings:
        """A chosen provider without its API key is a startup error, not a failure on every message."""
        if self.provider and not self.api_key:
            raise ValueError(f"provider {self.provider!r} needs api_key")
        return self


class GenericHttpSettings(SettingsModel):
    """A provider Clarion has no adapter for, described as one HTTP request per message (docs/channels.md).

    `{to}`, `{from}`, `{body}`, `{message_id}`, `{app_id}`, `{message_type}`, `{language_code}` and `{voice_id}` in
    the URL, header values and body template's strings are replaced per message.
    """

    method: str = "POST"
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body_format: Literal["json", "form", "none"] = "json"
    body: dict[str, Any] = Field(default_factory=dict)
    message_id_path: str = ""  # dotted path to the provider's message id in a JSON answer ("messages.0.id")
    error_message_path: str = ""  # dotted path to the provider's error text in a JSON answer
    # HTTP status -> delivery status, over the defaults (2xx SUCCESSFUL, 429 THROTTLED, 408/5xx TEMPORARY_FAILURE,
    # other 4xx PERMANENT_FAILURE).
    statuses: dict[int, DeliveryStatus] = Field(default_factory=dict)
    webhook_secret: str = ""  # HMAC-SHA256 key for /webhooks/sms/http; empty: that route refuses everything


class TwilioSettings(SettingsModel):
    account_sid: str = ""
    auth_token: str = ""  # signs API calls (basic auth) and Twilio's webhooks (X-Twilio-Signature)
    base_url: str = "https://api.twilio.com"
    messaging_service_sid: str = ""  # sends through a Messaging Service (its sender pool) when set


class AwsSmsVoiceSettings(SettingsModel):
    """AWS End User Messaging SMS and voice (pinpoint-sms-voice-v2)."""

    region: str = "us-east-1"
    endpoint_url: str = ""  # https://sms-voice.<region>.amazonaws.com when empty
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    configuration_set_name: str = ""  # where AWS publishes delivery events


class PhoneProviderSettings(SettingsModel):
    """Which provider carries a phone channel, and how Clarion talks to it."""

    provider: Literal["", "http", "twilio", "aws"] = ""  # empty: the channel has no provider
    default_origination: str = ""  # sender when neither the message nor the channel names one
    timeout_seconds: float = 10.0
    ca_file: str = ""  # trust this CA bundle as well as the system store (private gateways, tests)
    http: GenericHttpSettings = Field(default_factory=GenericHttpSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    aws: AwsSmsVoiceSettings = Field(default_factory=AwsSmsVoiceSettings)

    @model_validator(mode="after")
    def _provider_is_complete(self) -> PhoneProviderSettings:
        """A chosen provider without its account is a startup error, not a failure on every message."""
        needed = {
            "http": {"http.url": self.http.url},
            "twilio": {"twilio.account_sid": self.twilio.account_sid, "twilio.auth_token": self.twilio.auth_token},
            "aws": {"aws.access_key_id": self.aws.access_key_id, "aws.secret_access_key": self.aws.secret_access_key},
        }.get(self.provider, {})
        missing = [name for name, value in needed.items() if not value]
        if missing:
            raise ValueError(f"provider {self.provider!r} needs {', '.join(missing)}")
        return self


class SmsSettings(PhoneProviderSettings):
    """SMS provider adapters (owned by the SMS/voice transports)."""

    # Clarion's public base URL as providers reach it (https://clarion.example.com): Twilio status callbacks are
    # requested only when set, and Twilio signatures are checked against it (behind a proxy the URL Clarion sees
    # differs from the one Twilio signed).
    webhook_base_url: str = ""
    help_reply: str = ""  # answer to an inbound HELP/INFO through Twilio's TwiML reply; none when empty


class VoiceSettings(PhoneProviderSettings):
    """Voice provider adapters (owned by the SMS/voice transports)."""


class PushSettings(SettingsModel):
    """FCM and APNs endpoints and connection behaviour (owned by the push transports)."""

    apns_url: str = "https://api.push.apple.com"
    apns_sandbox_url: str = "https://api.sandbox.push.apple.com"
    fcm_url: str = "https://fcm.googleapis.com"
    # Replaces the service account's token_uri (a proxy, a test server); otherwise that token_uri must be https.
    fcm_token_uri: str | None = None
    ca_file: str | None = None  # extra CA certificates to trust for the providers' TLS
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    # Apple rejects provider tokens older than an hour and throttles refreshes more often than every 20 minutes.
    apns_token_refresh_seconds: int = Field(default=50 * 60, ge=20 * 60, le=59 * 60)


class BounceSettings(SettingsModel):
    """The inbound SMTP listener for bounces (DSN) and complaints (ARF) (owned by the email transport). It needs
    the `bounces` extra (aiosmtpd). No port: no listener."""

    host: str = "127.0.0.1"  # let only the mail server that receives bounces reach it
    port: int = Field(default=0, ge=0, le=65535)
    max_message_bytes: int = Field(default=1_000_000, ge=10_000)  # a report quotes at most the original message
    hostname: str = ""  # the name it greets with; the machine's FQDN when empty

    @model_validator(mode="after")
    def _listener_installed(self) -> BounceSettings:
        """A listener asked for without its library is a startup error, not bounces silently lost."""
        if self.port and importlib.util.find_spec("aiosmtpd") is None:
            raise ValueError("port is set but aiosmtpd is not installed: install the bounces extra (clarion[bounces])")
        return self


class WebhookSettings(SettingsModel):
    """Custom-channel webhooks (owned by the custom transport)."""

    signing_secret: SecretStr | None = None  # HMAC-SHA256 key for X-Clarion-Signature; unsigned when empty
    timeout: float = 10.0  # per attempt
    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_base: float = 0.5  # first retry waits up to this many seconds (full jitter), doubling each time
    backoff_max: float = 8.0


class TrackingSettings(SettingsModel):
    """Open/click/unsubscribe tracking links (owned by the send pipeline).

    Emails get tracking links and a one-click unsubscribe URL only when both `base_url` and `key` are set.
    """

    # Where recipients reach this Clarion (or the proxy in front of it), e.g. https://mail.example.com.
    base_url: str = ""
    # HMAC key signing the links; every process serving the links must share it. Changing it breaks old links.
    key: str = ""
    open_tracking: bool = True  # add a 1x1 pixel to HTML bodies
    click_tracking: bool = True  # send http(s) links in HTML bodies through a signed redirect

    @model_validator(mode="after")
    def _both_or_neither(self) -> TrackingSettings:
        """One of the two alone would turn tracking off without a word: refuse it at start instead."""
        if bool(self.base_url) != bool(self.key):
            given, missing = ("base_url", "key") if self.base_url else ("key", "base_url")
            raise ValueError(
                f"{given} is set but {missing} is empty: tracking links need both (or neither, to turn tracking off)"
            )
        if self.base_url and not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url {self.base_url!r} must be an http(s) URL recipients can reach")
        return self


class DeliverySettings(SettingsModel):
    # Key for channel secrets at rest (owned by the channels API): 32 random bytes in base64
    # (`openssl rand -base64 32`). Unset: a key file generated once in data_dir (docs/channels.md).
    secret_key: SecretStr | None = None
    # Keys used before a rotation: they still open stored secrets, which are re-sealed under secret_key at start.
    retired_secret_keys: list[SecretStr] = Field(default_factory=list)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    email_api: EmailApiSettings = Field(default_factory=EmailApiSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    bounces: BounceSettings = Field(default_factory=BounceSettings)
    # Dry run: every channel delivers to the log instead of a provider (owned by the send pipeline).
    dry_run: bool = False
