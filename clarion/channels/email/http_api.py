"""Email through SendGrid's v3 Mail Send API (`POST /v3/mail/send`), the HTTP alternative to an SMTP relay.

Wire contract as SendGrid documents it: a Bearer API key; a JSON body with `personalizations` (one recipient per
request here, so each Outbound gets its own result), `from`, `reply_to_list`, `subject`, `content` (text/plain
before text/html), `headers` and `custom_args`; `202 Accepted` with the provider's id in `X-Message-Id`;
`{"errors": [{"message", "field"}]}` on 4xx; 429 with `X-RateLimit-Reset` (epoch seconds) when over the limit.
`custom_args` carry Clarion's message id so that event-webhook reports find their message (see sendgrid_events).

Requests go through the process's guarded client (clarion/outbound/) like every other provider's: libcurl, HTTP/2
where the API offers it, and the same address checks, so a SendGrid stand-in on an inside address needs
`outbound.allow_networks`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from email.utils import getaddresses, parseaddr
from typing import Any

import msgspec

from clarion.channels.config import EmailApiSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, EmailContent, Outbound, RawEmailContent
from clarion.channels.email.mime import InvalidMessage, check_extra_headers
from clarion.channels.retry_after import retry_after_seconds
from clarion.clock import Clock, SystemClock
from clarion.outbound.client import OutboundClient, OutboundError, OutboundTimeout

SEND_PATH = "/v3/mail/send"
MESSAGE_ID_ARG = "clarion_message_id"  # custom_args key echoed back in every event-webhook event
APP_ID_ARG = "clarion_app_id"
ANSWER_BYTES = 1 << 16  # Mail Send answers with headers and, on errors, a small JSON document


def _address(name: str, address: str) -> dict[str, str]:
    """SendGrid's email object."""
    return {"email": address, "name": name} if name else {"email": address}


def mail_send_body(message: Outbound, content: EmailContent) -> dict[str, Any]:
    """The Mail Send request for one recipient."""
    check_extra_headers(content.headers)
    parts = [{"type": "text/plain", "value": content.text}] if content.text is not None else []
    if content.html is not None:
        parts.append({"type": "text/html", "value": content.html})
    headers = dict(content.headers)
    if content.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{content.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    body: dict[str, Any] = {
        "personalizations": [{"to": [_address("", message.address)]}],
        "from": _address(*parseaddr(content.from_address)),
        "subject": content.subject,
        "content": parts or [{"type": "text/plain", "value": " "}],  # SendGrid refuses an empty content list
        "custom_args": {**message.context, MESSAGE_ID_ARG: message.message_id, APP_ID_ARG: message.app_id},
    }
    if content.reply_to:
        body["reply_to_list"] = [_address(name, address) for name, address in getaddresses(list(content.reply_to))]
    if headers:
        body["headers"] = headers
    return body


def _error_text(payload: bytes) -> str:
    """SendGrid's `errors[].message` (with the field it names), or the raw body when it is not that shape."""
    try:
        errors = msgspec.json.decode(payload).get("errors") or []
        texts = [f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message")) for e in errors]
    except (msgspec.DecodeError, AttributeError):
        texts = []
    return "; ".join(texts) or payload.decode(errors="replace")[:500]


class SendGridTransport:
    """The EMAIL transport for SendGrid; one HTTP request per message, at most `connections` in flight."""

    def __init__(self, settings: EmailApiSettings, outbound: OutboundClient, clock: Clock | None = None) -> None:
        self.settings = settings
        self.outbound = outbound
        self.clock = clock or SystemClock()
        self.url = settings.base_url.rstrip("/") + SEND_PATH
        self._headers = (("Authorization", f"Bearer {settings.api_key}"), ("Content-Type", "application/json"))
        self._in_flight = asyncio.Semaphore(settings.connections)

    async def send(self, message: Outbound) -> DeliveryResult:
        content = message.content
        if isinstance(content, RawEmailContent):
            # Mail Send builds the MIME message itself from parts; it has no way to take one whole.
            return DeliveryResult(
                DeliveryStatus.PERMANENT_FAILURE, 400, "SendGrid cannot send RawEmail; raw messages need delivery.smtp"
            )
        if not isinstance(content, EmailContent):
            raise TypeError(f"The SendGrid transport sends EMAIL messages, not {type(content).__name__}")
        try:
            body = msgspec.json.encode(mail_send_body(message, content))
        except InvalidMessage as error:
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, str(error))
        try:
            async with self._in_flight:
                answer = await self.outbound.request(
                    "POST",
                    self.url,
                    body=body,
                    headers=self._headers,
                    timeout=self.settings.timeout_seconds,
                    max_bytes=ANSWER_BYTES,
                    project=message.app_id,
                )
        except OutboundTimeout as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 504, f"SendGrid: {error}")
        except OutboundError as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 503, f"SendGrid unreachable: {error}")
        return self._result(answer.status, answer.headers, answer.body)

    def _result(self, status: int, headers: Mapping[str, str], payload: bytes) -> DeliveryResult:
        if status in (200, 202):
            return DeliveryResult(DeliveryStatus.SUCCESSFUL, 200, "Accepted", headers.get("X-Message-Id"))
        text = _error_text(payload)
        if status == 429:
            return DeliveryResult(DeliveryStatus.THROTTLED, 429, text, retry_after=self._retry_after(headers))
        if status >= 500:
            return DeliveryResult(
                DeliveryStatus.TEMPORARY_FAILURE, status, text, retry_after=self._retry_after(headers)
            )
        return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, status, text)

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Retry-After when given; otherwise SendGrid's X-RateLimit-Reset, an epoch second."""
        now = self.clock.now()
        seconds = retry_after_seconds(headers.get("Retry-After"), now)
        reset = headers.get("X-RateLimit-Reset", "")
        if seconds is None and reset.isdigit():
            seconds = max(0.0, int(reset) - now.timestamp())
        return seconds

    async def close(self) -> None:
        """The guarded client is the process's, which closes it."""
