"""Email through SendGrid's v3 Mail Send API (`POST /v3/mail/send`), the HTTP alternative to an SMTP relay.

Wire contract as SendGrid documents it: a Bearer API key; a JSON body with `personalizations` (one recipient per
request here, so each Outbound gets its own result), `from`, `reply_to_list`, `subject`, `content` (text/plain
before text/html), `headers` and `custom_args`; `202 Accepted` with the provider's id in `X-Message-Id`;
`{"errors": [{"message", "field"}]}` on 4xx; 429 with `X-RateLimit-Reset` (epoch seconds) when over the limit.
`custom_args` carry Clarion's message id so that event-webhook reports find their message (see sendgrid_events).
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import getaddresses, parseaddr
from typing import Any

import aiohttp
import msgspec

from clarion.channels.config import EmailApiSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, EmailContent, Outbound, RawEmailContent
from clarion.channels.email.mime import InvalidMessage, check_extra_headers
from clarion.channels.retry_after import retry_after_seconds
from clarion.clock import Clock, SystemClock

SEND_PATH = "/v3/mail/send"
MESSAGE_ID_ARG = "clarion_message_id"  # custom_args key echoed back in every event-webhook event
APP_ID_ARG = "clarion_app_id"


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
    """The EMAIL transport for SendGrid; one HTTP request per message over a kept-alive connection pool."""

    def __init__(self, settings: EmailApiSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.url = settings.base_url.rstrip("/") + SEND_PATH
        self._session: aiohttp.ClientSession | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.connections),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                headers={"Authorization": f"Bearer {self.settings.api_key}"},
                json_serialize=lambda value: msgspec.json.encode(value).decode(),
            )
        return self._session

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
            body = mail_send_body(message, content)
        except InvalidMessage as error:
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, 400, str(error))
        try:
            async with self._session_for_loop().post(self.url, json=body) as response:
                payload = await response.read()
                return self._result(response.status, response.headers, payload)
        except (TimeoutError, aiohttp.ClientError) as error:
            return DeliveryResult(DeliveryStatus.TEMPORARY_FAILURE, 503, f"SendGrid unreachable: {error!r}")

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
        if self._session is not None:
            await self._session.close()
            self._session = None
