"""Twilio: SMS through the Messages API, voice through the Calls API with a TwiML `<Say>`.

Both are form-encoded POSTs under `/2010-04-01/Accounts/{AccountSid}/` with HTTP basic auth (account SID and auth
token). Twilio answers 201 with the new resource (its `sid` is the provider message id) or an error document
`{"code", "message", "more_info", "status"}` whose code says more than the HTTP status.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

from clarion.channels.config import TwilioSettings
from clarion.channels.delivery import DeliveryResult, DeliveryStatus, Outbound, SmsContent, VoiceContent
from clarion.channels.sms.exchange import (
    ProviderRequest,
    ProviderResponse,
    UnsendableMessage,
    json_object,
    status_for_http,
)

API_VERSION = "2010-04-01"

# Twilio error codes whose meaning differs from their HTTP status's default (a 400 is otherwise permanent:
# 21211 invalid 'To', 21614 not a mobile number, 21408 region not enabled, ...).
ERROR_STATUSES = {
    21610: DeliveryStatus.OPT_OUT,  # the recipient replied STOP to this sender
    20429: DeliveryStatus.THROTTLED,  # too many requests
    14107: DeliveryStatus.THROTTLED,  # SMS send rate limit exceeded
    20003: DeliveryStatus.TEMPORARY_FAILURE,  # authentication failed: the account's problem, not the recipient's
    20005: DeliveryStatus.TEMPORARY_FAILURE,  # account not active
}

# Twilio's <Say> speaks these built-in voices by their own names; Pinpoint voice ids are Amazon Polly voices.
_TWILIO_VOICES = {"man", "woman", "alice"}


class TwilioProvider:
    def __init__(self, settings: TwilioSettings, status_callback: str = "") -> None:
        self.settings = settings
        self.status_callback = status_callback  # Clarion's status webhook; empty: Twilio sends no callbacks
        token = base64.b64encode(f"{settings.account_sid}:{settings.auth_token}".encode()).decode()
        self._authorization = f"Basic {token}"

    def request_for(self, message: Outbound, to: str, origination: str | None) -> ProviderRequest:
        content = message.content
        form: dict[str, str] = {"To": to}
        if isinstance(content, VoiceContent):
            resource = "Calls.json"
            form |= {"From": origination or "", "Twiml": say_twiml(content)}
        else:
            assert isinstance(content, SmsContent)
            resource = "Messages.json"
            form["Body"] = content.body
            if origination:
                form["From"] = origination
            if self.settings.messaging_service_sid:
                form["MessagingServiceSid"] = self.settings.messaging_service_sid
            if self.status_callback:
                # Clarion's id rides along so the callback finds the message even before the send is logged.
                form["StatusCallback"] = f"{self.status_callback}?{urlencode({'message_id': message.message_id})}"
        account = quote(self.settings.account_sid, safe="")
        return ProviderRequest(
            "POST",
            f"{self.settings.base_url.rstrip('/')}/{API_VERSION}/Accounts/{account}/{resource}",
            {
                "Authorization": self._authorization,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            urlencode(form).encode(),
        )

    def result_of(self, response: ProviderResponse) -> DeliveryResult:
        document = json_object(response.body)
        if 200 <= response.status < 300:
            sid = document.get("sid")
            return DeliveryResult(DeliveryStatus.SUCCESSFUL, response.status, provider_message_id=sid)
        code = document.get("code")
        status = ERROR_STATUSES.get(code) if isinstance(code, int) else None
        if status is None and response.status in (401, 403):
            status = DeliveryStatus.TEMPORARY_FAILURE  # credentials or account: fixable by the operator
        status = status or status_for_http(response.status)
        text = document.get("message") or response.body.decode("utf-8", "replace").strip()[:300]
        message = f"Twilio error {code}: {text}" if code else text or f"Twilio answered HTTP {response.status}"
        return DeliveryResult(status, response.status, message)


def say_twiml(content: VoiceContent) -> str:
    """`<Response><Say>` speaking the body; an SSML body (`<speak>...`) keeps its markup inside `<Say>`."""
    response = ElementTree.Element("Response")
    say = ElementTree.SubElement(response, "Say", {"language": content.language_code})
    if content.voice_id:
        voice = content.voice_id
        known = voice in _TWILIO_VOICES or "." in voice
        say.set("voice", voice if known else f"Polly.{voice}")
    body = content.body.strip()
    if body.startswith("<speak"):
        try:
            speak = ElementTree.fromstring(body)
        except ElementTree.ParseError as error:
            raise UnsendableMessage(f"The voice message body is not well-formed SSML: {error}") from None
        say.text = speak.text
        say.extend(list(speak))
    else:
        say.text = content.body
    return ElementTree.tostring(response, encoding="unicode")
