"""The EMAIL channel's transports: an SMTP relay through a connection pool (smtp.py, with DKIM and MIME in
dkim.py and mime.py) or SendGrid's HTTP API (http_api.py, its event webhook in sendgrid_events.py).

The operator picks one in `delivery.smtp` / `delivery.email_api` (docs/configuration.md); the project's email
channel record (FromAddress, Identity) is Pinpoint's and does not choose the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion.channels.config import DeliverySettings
from clarion.channels.delivery import Transport
from clarion.channels.email.http_api import SendGridTransport
from clarion.channels.email.smtp import SmtpTransport
from clarion.clock import Clock
from clarion.outbound.client import OutboundClient


def open_transport(
    settings: DeliverySettings,
    channel: Mapping[str, Any],
    outbound: OutboundClient | None = None,
    clock: Clock | None = None,
) -> Transport:
    """SMTP when a relay host is configured, else the configured HTTP provider through the process's guarded client
    `outbound`. Without either this raises, and the registry answers the project's email sends as the channel being
    unusable, with this message."""
    if settings.smtp.host:
        return SmtpTransport(settings.smtp, clock)
    if settings.email_api.provider == "sendgrid":
        if outbound is None:
            raise ValueError("the SendGrid transport sends through the process's outbound client; none was given")
        return SendGridTransport(settings.email_api, outbound, clock)
    raise ValueError("no email provider is configured: set delivery.smtp.host or delivery.email_api.provider")
