"""Any SMS or voice gateway with an HTTP API, described in settings rather than code (GenericHttpSettings).

The URL, header values and the strings of the body template carry placeholders; each message fills them in.
Placeholders are replaced inside decoded values, never in encoded text, so a message body with quotes or
ampersands cannot break the JSON or form encoding around it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from clarion.channels.config import GenericHttpSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, SmsContent, VoiceContent
from clarion.channels.sms.exchange import (
    ProviderRequest,
    ProviderResponse,
    json_document,
    json_path,
    status_for_http,
)

PLACEHOLDERS = ("to", "from", "body", "message_id", "app_id", "message_type", "language_code", "voice_id")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ERROR_TEXT_LIMIT = 300


class GenericHttpProvider:
    def __init__(self, settings: GenericHttpSettings) -> None:
        self.settings = settings

    def request_for(self, message: Outbound, to: str, origination: str | None) -> ProviderRequest:
        values = placeholder_values(message, to, origination)
        settings = self.settings
        url = _PLACEHOLDER.sub(lambda match: quote(values[match[1]], safe=""), settings.url)
        headers = {name: fill(value, values) for name, value in settings.headers.items()}
        body: bytes | None = None
        if settings.body_format == "json":
            body = json.dumps(fill(settings.body, values), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        elif settings.body_format == "form":
            body = urlencode({name: fill(str(value), values) for name, value in settings.body.items()}).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return ProviderRequest(settings.method.upper(), url, headers, body)

    def result_of(self, response: ProviderResponse) -> DeliveryResult:
        status = self.settings.statuses.get(response.status) or status_for_http(response.status)
        document = json_document(response.body)
        if status is DeliveryStatus.SUCCESSFUL:
            found = json_path(document, self.settings.message_id_path) if self.settings.message_id_path else None
            return DeliveryResult(status, response.status, provider_message_id=None if found is None else str(found))
        return DeliveryResult(status, response.status, self._error_text(response, document))

    def _error_text(self, response: ProviderResponse, document: Any) -> str:
        if self.settings.error_message_path:
            found = json_path(document, self.settings.error_message_path)
            if found is not None:
                return str(found)[:_ERROR_TEXT_LIMIT]
        text = response.body.decode("utf-8", "replace").strip()
        return text[:_ERROR_TEXT_LIMIT] or f"The provider answered HTTP {response.status}"


def placeholder_values(message: Outbound, to: str, origination: str | None) -> dict[str, str]:
    values = dict.fromkeys(PLACEHOLDERS, "") | {
        "to": to,
        "from": origination or "",
        "message_id": message.message_id,
        "app_id": message.app_id,
    }
    content = message.content
    if isinstance(content, SmsContent):
        values |= {"body": content.body, "message_type": content.message_type}
    elif isinstance(content, VoiceContent):
        values |= {"body": content.body, "language_code": content.language_code, "voice_id": content.voice_id or ""}
    return values


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """The template with placeholders replaced in every string it holds, keys included."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda match: values[match[1]], template)
    if isinstance(template, dict):
        return {fill(key, values): fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template
